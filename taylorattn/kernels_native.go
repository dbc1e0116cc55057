//go:build openblas && cgo

package taylorattn

/*
#cgo CFLAGS: -O3
#include <math.h>
#include <stdint.h>
#include <string.h>

// The formulas of kernels.go, written as loops GCC vectorises;
// target_clones picks the AVX2 version at load time where the CPU has it.
// No contraction of a*b + c into one rounding: the Go versions and the
// PyTorch port round twice.
#pragma GCC optimize ("fp-contract=off", "no-trapping-math")

// keep returns v where bit is 1 and +0 where it is 0 (a bitwise and, so
// that whatever v holds off the mask, NaN included, gives 0).
static inline float keep(float v, uint32_t bit) {
	uint32_t b;
	memcpy(&b, &v, 4);
	b &= -bit;
	memcpy(&v, &b, 4);
	return v;
}

// maskbits returns the bits [x[t] > theta] of m ≤ 32 values.
static inline uint32_t maskbits(const float *x, long m, float theta) {
	uint32_t u = 0;
	for (long t = 0; t < m; t++) u |= (uint32_t)(x[t] > theta) << t;
	return u;
}

__attribute__((target_clones("avx2", "default")))
void vitc_fake_quant4(float *restrict dst, const float *restrict x, long ld, long n, long hd) {
	float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, amax = 0;
	for (long i = 0; i < n; i++) {
		const float *r = x + i * ld;
		long c = 0;
		for (; c + 8 <= hd; c += 8)
			for (int l = 0; l < 8; l++) {
				float a = fabsf(r[c + l]);
				acc[l] = a > acc[l] ? a : acc[l];
			}
		for (; c < hd; c++) {
			float a = fabsf(r[c]);
			amax = a > amax ? a : amax;
		}
	}
	for (int l = 0; l < 8; l++) amax = acc[l] > amax ? acc[l] : amax;
	if (amax == 0) {
		for (long i = 0; i < n * hd; i++) dst[i] = 0;
		return;
	}
	float scale = amax / 7;
	for (long i = 0; i < n; i++) {
		const float *r = x + i * ld;
		float *o = dst + i * hd;
		for (long c = 0; c < hd; c++) {
			// round half away from zero, exactly: |t| + ½ is exact in
			// double, and truncation floors it
			float t = r[c] / scale;
			float q = (float)(int)((double)fabsf(t) + 0.5);
			q = t < 0 ? -q : q;
			q = q > 7 ? 7 : q;
			o[c] = q * scale;
		}
	}
}

__attribute__((target_clones("avx2", "default")))
void vitc_quant_asym4(float *restrict dst, const float *restrict x, long ld, long n, long hd, float lo, float scale) {
	for (long i = 0; i < n; i++) {
		const float *r = x + i * ld;
		float *o = dst + i * hd;
		for (long c = 0; c < hd; c++) {
			float t = (r[c] - lo) / scale; // in [0, 15]: x ≥ lo
			// round half to even: 1.5·2²³ leaves no fraction bits
			t = (t + 12582912.0f) - 12582912.0f;
			t = t < 0 ? 0 : t;
			t = t > 15 ? 15 : t;
			float y = t * scale;
			o[c] = y + lo;
		}
	}
}

__attribute__((target_clones("avx2", "default")))
void vitc_min_max(const float *restrict x, long rows, long ld, long width, float *lo, float *hi) {
	float los[8], his[8], l0 = INFINITY, h0 = -INFINITY;
	for (int l = 0; l < 8; l++) {
		los[l] = INFINITY;
		his[l] = -INFINITY;
	}
	for (long i = 0; i < rows; i++) {
		const float *r = x + i * ld;
		long c = 0;
		for (; c + 8 <= width; c += 8)
			for (int l = 0; l < 8; l++) {
				float v = r[c + l];
				los[l] = v < los[l] ? v : los[l];
				his[l] = v > his[l] ? v : his[l];
			}
		for (; c < width; c++) {
			l0 = r[c] < l0 ? r[c] : l0;
			h0 = r[c] > h0 ? r[c] : h0;
		}
	}
	for (int l = 0; l < 8; l++) {
		l0 = los[l] < l0 ? los[l] : l0;
		h0 = his[l] > h0 ? his[l] : h0;
	}
	*lo = l0;
	*hi = h0;
}

__attribute__((target_clones("avx2", "default")))
void vitc_sparse_sv(const float *restrict sm, const uint32_t *restrict mask, const float *restrict v, long ldv,
		float *restrict out, long ldo, long n, long words, long hd, float ag) {
	for (long i = 0; i < n; i++) {
		const float *sr = sm + i * n;
		const uint32_t *mr = mask + i * words;
		float *o = out + i * ldo;
		for (long c = 0; c < hd; c++) o[c] = 0;
		for (long w = 0; w < words; w++)
			for (uint32_t u = mr[w]; u; u &= u - 1) {
				long j = w * 32 + __builtin_ctz(u);
				float a = ag * sr[j];
				const float *vj = v + j * ldv;
				for (long c = 0; c < hd; c++) o[c] += a * vj[c];
			}
	}
}

__attribute__((target_clones("avx2", "default")))
void vitc_sparse_grad_sv(const float *restrict dO, long ldo, const float *restrict v, float *restrict dv, long ldv,
		const float *restrict sm, const uint32_t *restrict mask, float *restrict ds, long n, long words, long hd, float ag) {
	for (long i = 0; i < n; i++) {
		const float *di = dO + i * ldo, *sr = sm + i * n;
		const uint32_t *mr = mask + i * words;
		float *dr = ds + i * n;
		for (long w = 0; w < words; w++)
			for (uint32_t u = mr[w]; u; u &= u - 1) {
				long j = w * 32 + __builtin_ctz(u);
				const float *vj = v + j * ldv;
				float *dvj = dv + j * ldv;
				float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, s = 0;
				long c = 0;
				for (; c + 8 <= hd; c += 8)
					for (int l = 0; l < 8; l++) acc[l] += di[c + l] * vj[c + l];
				for (; c < hd; c++) s += di[c] * vj[c];
				for (int l = 0; l < 8; l++) s += acc[l];
				dr[j] = ag * s;
				float a = ag * sr[j];
				for (long c = 0; c < hd; c++) dvj[c] += a * di[c];
			}
	}
}

// The widest head the centring kernels take (Go's versions do the rest).
#define MAXHD 1024

// mean over n rows of hd (row stride ld), each column summed in row order
static inline void col_mean(float *restrict mean, const float *restrict x, long ld, long n, long hd) {
	for (long c = 0; c < hd; c++) mean[c] = 0;
	for (long j = 0; j < n; j++)
		for (long c = 0; c < hd; c++) mean[c] += x[j * ld + c];
	for (long c = 0; c < hd; c++) mean[c] /= (float)n;
}

__attribute__((target_clones("avx2", "default")))
void vitc_centre(float *restrict dst, long ldd, const float *restrict k, long ldk, long n, long hd) {
	float mean[MAXHD];
	col_mean(mean, k, ldk, n, hd);
	for (long j = 0; j < n; j++)
		for (long c = 0; c < hd; c++) dst[j * ldd + c] = k[j * ldk + c] - mean[c];
}

__attribute__((target_clones("avx2", "default")))
void vitc_uncentre_into(float *restrict dk, long ldk, const float *restrict dkh, long ldh, long n, long hd) {
	float mean[MAXHD];
	col_mean(mean, dkh, ldh, n, hd);
	for (long j = 0; j < n; j++)
		for (long c = 0; c < hd; c++) dk[j * ldk + c] += dkh[j * ldh + c] - mean[c];
}

static inline float row_sum(const float *x, long n) {
	float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
	long j = 0;
	for (; j + 8 <= n; j += 8)
		for (int l = 0; l < 8; l++) acc[l] += x[j + l];
	float s = 0;
	for (; j < n; j++) s += x[j];
	for (int l = 0; l < 8; l++) s += acc[l];
	return s;
}

__attribute__((target_clones("avx2", "default")))
long vitc_mask_taylor(const float *restrict z, float *restrict pt, uint32_t *restrict mask, float *restrict den, long n, long words, float theta) {
	long nnz = 0;
	for (long i = 0; i < n; i++) {
		const float *zr = z + i * n;
		float *pr = pt + i * n;
		uint32_t *mr = mask + i * words;
		float s = (float)n + row_sum(zr, n);
		den[i] = s;
		for (long w = 0; w < words; w++) {
			long lo = w * 32, m = n - lo < 32 ? n - lo : 32;
			uint32_t u = maskbits(pr + lo, m, theta);
			mr[w] = u;
			nnz += __builtin_popcount(u);
			for (long t = 0; t < m; t++) pr[lo + t] = keep((zr[lo + t] + 1) / s, (u >> t) & 1);
		}
	}
	return nnz;
}

__attribute__((target_clones("avx2", "default")))
long vitc_mask_keep(const float *restrict pt, float *restrict sm, uint32_t *restrict mask, long n, long words, float theta, double *sum) {
	long nnz = 0;
	double total = 0;
	for (long i = 0; i < n; i++) {
		const float *pr = pt + i * n;
		float *sr = sm + i * n;
		uint32_t *mr = mask + i * words;
		for (long w = 0; w < words; w++) {
			long lo = w * 32, m = n - lo < 32 ? n - lo : 32;
			uint32_t u = maskbits(pr + lo, m, theta);
			mr[w] = u;
			nnz += __builtin_popcount(u);
			for (long t = 0; t < m; t++) sr[lo + t] = keep(pr[lo + t], (u >> t) & 1);
		}
		total += row_sum(sr, n);
	}
	*sum = total;
	return nnz;
}

__attribute__((target_clones("avx2", "default")))
double vitc_sub_masked(const float *restrict p, float *restrict sm, const uint32_t *restrict mask, long n, long words) {
	double total = 0;
	for (long i = 0; i < n; i++) {
		const float *pr = p + i * n;
		float *sr = sm + i * n;
		const uint32_t *mr = mask + i * words;
		for (long w = 0; w < words; w++) {
			long lo = w * 32, m = n - lo < 32 ? n - lo : 32;
			uint32_t u = mr[w];
			for (long t = 0; t < m; t++) sr[lo + t] = keep(pr[lo + t] - sr[lo + t], (u >> t) & 1);
		}
		float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
		long j = 0;
		for (; j + 8 <= n; j += 8)
			for (int l = 0; l < 8; l++) acc[l] += fabsf(sr[j + l]);
		float s = 0;
		for (; j < n; j++) s += fabsf(sr[j]);
		for (int l = 0; l < 8; l++) s += acc[l];
		total += s;
	}
	return total;
}

__attribute__((target_clones("avx2", "default")))
void vitc_score_grad(const float *restrict p, const float *restrict sm, const uint32_t *restrict mask, float *restrict ds, const float *restrict den, long n, long words, float rg) {
	for (long i = 0; i < n; i++) {
		const float *pr = p + i * n, *sr = sm + i * n;
		float *dr = ds + i * n;
		const uint32_t *mr = mask + i * words;
		for (long w = 0; w < words; w++) {
			long lo = w * 32, m = n - lo < 32 ? n - lo : 32;
			uint32_t u = mr[w];
			for (long t = 0; t < m; t++) {
				float sv = sr[lo + t];
				float sg = (float)(sv > 0) - (float)(sv < 0);
				dr[lo + t] = keep(dr[lo + t] + rg * sg, (u >> t) & 1);
			}
		}
		float ca[8] = {0, 0, 0, 0, 0, 0, 0, 0}, ea[8] = {0, 0, 0, 0, 0, 0, 0, 0};
		long j = 0;
		for (; j + 8 <= n; j += 8)
			for (int l = 0; l < 8; l++) {
				ca[l] += pr[j + l] * dr[j + l];
				ea[l] += sr[j + l] * dr[j + l];
			}
		float c = 0, es = 0;
		for (; j < n; j++) {
			c += pr[j] * dr[j];
			es += sr[j] * dr[j];
		}
		for (int l = 0; l < 8; l++) {
			c += ca[l];
			es += ea[l];
		}
		if (!den) {
			for (long j = 0; j < n; j++) dr[j] = pr[j] * (dr[j] - c);
			continue;
		}
		float r = c - es, inv = 1 / den[i];
		for (long j = 0; j < n; j++) {
			float g = dr[j];
			dr[j] = pr[j] * (g - c) + (r - g) * inv;
		}
	}
}
*/
import "C"

import (
	"math"
	"unsafe"
)

func init() {
	f := func(x []float32) *C.float { return (*C.float)(unsafe.Pointer(&x[0])) }
	u := func(x []float32) *C.uint32_t { return (*C.uint32_t)(unsafe.Pointer(&x[0])) }
	centre = func(dst []float32, ldd int, k []float32, ldk, n, hd int) {
		if n*hd == 0 || hd > C.MAXHD {
			centreGo(dst, ldd, k, ldk, n, hd)
			return
		}
		_, _ = dst[(n-1)*ldd+hd-1], k[(n-1)*ldk+hd-1]
		C.vitc_centre(f(dst), C.long(ldd), f(k), C.long(ldk), C.long(n), C.long(hd))
	}
	uncentreInto = func(dk []float32, ldk int, dkh []float32, ldh, n, hd int) {
		if n*hd == 0 || hd > C.MAXHD {
			uncentreIntoGo(dk, ldk, dkh, ldh, n, hd)
			return
		}
		_, _ = dk[(n-1)*ldk+hd-1], dkh[(n-1)*ldh+hd-1]
		C.vitc_uncentre_into(f(dk), C.long(ldk), f(dkh), C.long(ldh), C.long(n), C.long(hd))
	}
	fakeQuant4 = func(dst, x []float32, ld, n, hd int) {
		if n*hd == 0 {
			return
		}
		_ = x[(n-1)*ld+hd-1]
		_ = dst[n*hd-1]
		C.vitc_fake_quant4(f(dst), f(x), C.long(ld), C.long(n), C.long(hd))
	}
	quantAsym4 = func(dst, x []float32, ld, n, hd int, lo, scale float32) {
		if n*hd == 0 {
			return
		}
		_ = x[(n-1)*ld+hd-1]
		_ = dst[n*hd-1]
		C.vitc_quant_asym4(f(dst), f(x), C.long(ld), C.long(n), C.long(hd), C.float(lo), C.float(scale))
	}
	maskTaylor = func(z, pt, mask, den []float32, n, words int, theta float32) int {
		if n == 0 {
			return 0
		}
		_, _, _, _ = z[n*n-1], pt[n*n-1], mask[n*words-1], den[n-1]
		return int(C.vitc_mask_taylor(f(z), f(pt), u(mask), f(den), C.long(n), C.long(words), C.float(theta)))
	}
	maskKeep = func(pt, sm, mask []float32, n, words int, theta float32) (int, float64) {
		if n == 0 {
			return 0, 0
		}
		_, _, _ = pt[n*n-1], sm[n*n-1], mask[n*words-1]
		var sum C.double
		nnz := C.vitc_mask_keep(f(pt), f(sm), u(mask), C.long(n), C.long(words), C.float(theta), &sum)
		return int(nnz), float64(sum)
	}
	subMasked = func(p, sm, mask []float32, n, words int) float64 {
		if n == 0 {
			return 0
		}
		_, _, _ = p[n*n-1], sm[n*n-1], mask[n*words-1]
		return float64(C.vitc_sub_masked(f(p), f(sm), u(mask), C.long(n), C.long(words)))
	}
	scoreGrad = func(p, sm, mask, ds, den []float32, n, words int, rg float32) {
		if n == 0 {
			return
		}
		_, _, _, _ = p[n*n-1], sm[n*n-1], mask[n*words-1], ds[n*n-1]
		var dp *C.float
		if den != nil {
			_ = den[n-1]
			dp = f(den)
		}
		C.vitc_score_grad(f(p), f(sm), u(mask), f(ds), dp, C.long(n), C.long(words), C.float(rg))
	}
	minMax = func(x []float32, rows, ld, width int) (float32, float32) {
		if rows*width == 0 {
			return float32(math.Inf(1)), float32(math.Inf(-1))
		}
		_ = x[(rows-1)*ld+width-1]
		var lo, hi C.float
		C.vitc_min_max(f(x), C.long(rows), C.long(ld), C.long(width), &lo, &hi)
		return float32(lo), float32(hi)
	}
	sparseSV = func(sm, mask, v []float32, ldv int, out []float32, ldo, n, words, hd int, ag float32) {
		if n*hd == 0 {
			return
		}
		_, _, _, _ = sm[n*n-1], mask[n*words-1], v[(n-1)*ldv+hd-1], out[(n-1)*ldo+hd-1]
		C.vitc_sparse_sv(f(sm), u(mask), f(v), C.long(ldv), f(out), C.long(ldo), C.long(n), C.long(words), C.long(hd), C.float(ag))
	}
	sparseGradSV = func(do []float32, ldo int, v, dv []float32, ldv int, sm, mask, ds []float32, n, words, hd int, ag float32) {
		if n*hd == 0 {
			return
		}
		_, _, _ = do[(n-1)*ldo+hd-1], v[(n-1)*ldv+hd-1], dv[(n-1)*ldv+hd-1]
		_, _, _ = sm[n*n-1], mask[n*words-1], ds[n*n-1]
		C.vitc_sparse_grad_sv(f(do), C.long(ldo), f(v), f(dv), C.long(ldv), f(sm), u(mask), f(ds), C.long(n), C.long(words), C.long(hd), C.float(ag))
	}
	kernelsName = "C (vectorised)"
	sparseRowsBelow = 0.2
}
