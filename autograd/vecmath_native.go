//go:build openblas && cgo

package autograd

/*
#cgo CFLAGS: -O3
#cgo LDFLAGS: -lm
#include <math.h>
#include <stdint.h>
// No floating-point traps: GCC then turns the branches of these loops into
// selects and vectorises them (the values are the same).
#pragma GCC optimize ("no-trapping-math")
// No fused multiply-adds in the AVX-512 clones: the same roundings as the Go
// loops and the AVX2 clones.
#pragma GCC optimize ("fp-contract=off")

// The same formulas as exp32 and erf32 in fastmath.go, written without
// branches so that GCC vectorises the loops; target_clones picks the AVX2
// version at load time where the CPU has it. exp is only needed here for
// arguments ≤ 0 (softmax of x − max, and −x²/2), so there is no overflow
// case.
static inline float vitc_exp_nonpos(float x) {
	const float log2e = 1.44269504088896341f, ln2hi = 0.693359375f, ln2lo = -2.12194440e-4f;
	const float round = 12582912.0f;
	float xc = x < -87.33654f ? -87.33654f : x;
	float n = (xc * log2e + round) - round;
	float r = xc - n * ln2hi - n * ln2lo;
	float r2 = r * r;
	float p01 = 5.0000001201e-1f + 1.6666665459e-1f * r;
	float p23 = 4.1665795894e-2f + 8.3334519073e-3f * r;
	float p45 = 1.3981999507e-3f + 1.9875691500e-4f * r;
	float p = p01 + r2 * (p23 + r2 * p45);
	float y = p * r2 + r + 1.0f;
	union { uint32_t u; float f; } s;
	s.u = (uint32_t)((int32_t)n + 127) << 23;
	y *= s.f;
	return x < -87.33654f ? 0.0f : (x != x ? x : y);
}

static inline float vitc_erf(float x) {
	float xc = x < -4.0f ? -4.0f : (x > 4.0f ? 4.0f : x);
	float x2 = xc * xc, x4 = x2 * x2, x8 = x4 * x4;
	float p01 = -1.60960333262415e-02f + -2.95459980854025e-03f * x2;
	float p23 = -7.34990630326855e-04f + -5.69250639462346e-05f * x2;
	float p45 = -2.10102402082508e-06f + 2.77068142495902e-08f * x2;
	float p = xc * (p01 + x4 * p23 + x8 * (p45 + x4 * -2.72614225801306e-10f));
	float q01 = -1.42647390514189e-02f + -7.37332916720468e-03f * x2;
	float q23 = -1.68282697438203e-03f + -2.13374055278905e-04f * x2;
	float q = q01 + x4 * q23 + x8 * -1.45660718464996e-05f;
	return x != x ? x : p / q;
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void vitc_softmax_rows(float *p, long rows, long cols) {
	for (long i = 0; i < rows; i++) {
		float *row = p + i * cols;
		// Eight partial maxima: the same maximum, in vector lanes.
		float mxs[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
		long k = 0;
		for (; k + 8 <= cols; k += 8)
			for (int l = 0; l < 8; l++) mxs[l] = row[k + l] > mxs[l] ? row[k + l] : mxs[l];
		float mx = -INFINITY;
		for (; k < cols; k++) mx = row[k] > mx ? row[k] : mx;
		for (int l = 0; l < 8; l++) mx = mxs[l] > mx ? mxs[l] : mx;
		for (long j = 0; j < cols; j++) row[j] = vitc_exp_nonpos(row[j] - mx);
		// Eight partial sums: a vectorisable order of summation.
		float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
		long j = 0;
		for (; j + 8 <= cols; j += 8)
			for (int l = 0; l < 8; l++) acc[l] += row[j + l];
		float s = 0;
		for (; j < cols; j++) s += row[j];
		for (int l = 0; l < 8; l++) s += acc[l];
		float inv = 1.0f / s;
		for (long j = 0; j < cols; j++) row[j] *= inv;
	}
}

// Inlined into the cloned loops below (a clone of its own would keep them
// scalar).
static inline float vitc_gelu_cdf(float v) {
	return 0.5f * (1.0f + vitc_erf(v * 0.7071067811865476f));
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void vitc_gelu_forward(float *y, const float *x, long n) {
	for (long i = 0; i < n; i++) y[i] = x[i] * vitc_gelu_cdf(x[i]);
}

// The backward pass computes Φ(x) again, with the forward pass's formula,
// rather than reading a copy the forward pass kept.
__attribute__((target_clones("avx512f", "avx2", "default")))
void vitc_gelu_backward(float *dx, const float *dy, const float *x, long n) {
	const float inv_sqrt2pi = 0.3989422804014327f;
	for (long i = 0; i < n; i++) {
		float v = x[i];
		dx[i] += dy[i] * (vitc_gelu_cdf(v) + v * (inv_sqrt2pi * vitc_exp_nonpos(-0.5f * v * v)));
	}
}

// Row statistics in float64 as the Go loop keeps them, over eight lanes so
// that they vectorise; the float32 results are the same (a float64 sum of
// a row of float32 values rounds, if at all, far below float32's last bit).
__attribute__((target_clones("avx512f", "avx2", "default")))
void vitc_layernorm_rows(float *y, const float *x, const float *g, const float *b, float *mean, float *rstd,
		long rows, long d, double eps) {
	for (long i = 0; i < rows; i++) {
		const float *row = x + i * d;
		double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
		long k = 0;
		for (; k + 8 <= d; k += 8)
			for (int l = 0; l < 8; l++) acc[l] += (double)row[k + l];
		double s = 0;
		for (; k < d; k++) s += (double)row[k];
		for (int l = 0; l < 8; l++) s += acc[l];
		double mu = s / (double)d;
		double sq[8] = {0, 0, 0, 0, 0, 0, 0, 0};
		k = 0;
		for (; k + 8 <= d; k += 8)
			for (int l = 0; l < 8; l++) {
				double dv = (double)row[k + l] - mu;
				sq[l] += dv * dv;
			}
		double ss = 0;
		for (; k < d; k++) {
			double dv = (double)row[k] - mu;
			ss += dv * dv;
		}
		for (int l = 0; l < 8; l++) ss += sq[l];
		double r = 1.0 / sqrt(ss / (double)d + eps);
		float mu32 = (float)mu, r32 = (float)r;
		mean[i] = mu32;
		rstd[i] = r32;
		float *out = y + i * d;
		for (long j = 0; j < d; j++) out[j] = (row[j] - mu32) * r32 * g[j] + b[j];
	}
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void vitc_add_rows(float *y, const float *b, long m, long n) {
	for (long i = 0; i < m; i++) {
		float *row = y + i * n;
		for (long j = 0; j < n; j++) row[j] += b[j];
	}
}

__attribute__((target_clones("avx512f", "avx2", "default")))
void vitc_add_into(float *y, const float *x, long n) {
	for (long i = 0; i < n; i++) y[i] = x[i] + y[i];
}
*/
import "C"

import "unsafe"

func init() {
	softmaxRows = func(p []float32, rows, cols int) {
		if rows*cols == 0 {
			return
		}
		C.vitc_softmax_rows((*C.float)(unsafe.Pointer(&p[0])), C.long(rows), C.long(cols))
	}
	geluForward = func(y, x []float32) {
		if len(x) == 0 {
			return
		}
		C.vitc_gelu_forward((*C.float)(unsafe.Pointer(&y[0])), (*C.float)(unsafe.Pointer(&x[0])), C.long(len(x)))
	}
	geluBackward = func(dx, dy, x []float32) {
		if len(x) == 0 {
			return
		}
		C.vitc_gelu_backward((*C.float)(unsafe.Pointer(&dx[0])), (*C.float)(unsafe.Pointer(&dy[0])),
			(*C.float)(unsafe.Pointer(&x[0])), C.long(len(x)))
	}
	layerNormRows = func(y, x, g, b, mean, rstd []float32, rows, d int, eps float64) {
		if rows*d == 0 {
			return
		}
		C.vitc_layernorm_rows(fp(y), fp(x), fp(g[:d]), fp(b[:d]), fp(mean), fp(rstd), C.long(rows), C.long(d), C.double(eps))
	}
	addRows = func(y, b []float32, m, n int) {
		if m*n == 0 {
			return
		}
		_ = y[m*n-1]
		C.vitc_add_rows(fp(y), fp(b[:n]), C.long(m), C.long(n))
	}
	addInto = func(y, x []float32) {
		if len(x) == 0 {
			return
		}
		_ = y[len(x)-1]
		C.vitc_add_into(fp(y), fp(x), C.long(len(x)))
	}
	vecmathName = "C (vectorised)"
}

// fp passes a slice's first element to C.
func fp(s []float32) *C.float { return (*C.float)(unsafe.Pointer(&s[0])) }
