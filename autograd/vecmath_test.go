package autograd

import (
	"math"
	"testing"
)

// The native kernels (openblas build) must agree with the Go ones, which
// fastmath_test.go checks against the float64 library functions.
func TestNativeKernelsMatchGo(t *testing.T) {
	if vecmathName == "Go" {
		t.Skip("pure-Go build: no native kernels to compare")
	}
	rng := NewRNG(3, 4)
	const rows, cols = 37, 53 // not multiples of the vector width
	x := make([]float32, rows*cols)
	for i := range x {
		x[i] = float32(rng.Normal()) * 6
	}
	x[5] = float32(math.Inf(-1)) // a masked logit
	x[cols+1] = 1e4              // a row dominated by one logit
	want := append([]float32(nil), x...)
	softmaxRowsGo(want, rows, cols)
	got := append([]float32(nil), x...)
	softmaxRows(got, rows, cols)
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); d > 1e-6 {
			t.Fatalf("softmax element %d: native %v, Go %v", i, got[i], want[i])
		}
	}

	y1, y2 := make([]float32, len(x)), make([]float32, len(x))
	x[5] = -3
	geluForwardGo(y1, x)
	geluForward(y2, x)
	for i := range x {
		if math.Abs(float64(y1[i]-y2[i])) > 1e-6*(1+math.Abs(float64(x[i]))) {
			t.Fatalf("gelu(%v): native %v, Go %v", x[i], y2[i], y1[i])
		}
	}
	dy := make([]float32, len(x))
	for i := range dy {
		dy[i] = float32(rng.Normal())
	}
	d1, d2 := make([]float32, len(x)), make([]float32, len(x))
	geluBackwardGo(d1, dy, x)
	geluBackward(d2, dy, x)
	for i := range x {
		if math.Abs(float64(d1[i]-d2[i])) > 1e-5*(1+math.Abs(float64(d1[i]))) {
			t.Fatalf("gelu backward at %v: native %v, Go %v", x[i], d2[i], d1[i])
		}
	}
}

// LayerNorm rows, bias rows and the residual add: the native loops keep the
// Go loops' formulas (float64 statistics), so they agree to float32's last
// bit or so; the statistics are checked too, as the backward pass reads them.
func TestNativeRowKernelsMatchGo(t *testing.T) {
	if vecmathName == "Go" {
		t.Skip("pure-Go build: no native kernels to compare")
	}
	rng := NewRNG(5, 6)
	for _, d := range []int{1, 7, 64, 197, 768} {
		const rows = 9
		x, g, b := make([]float32, rows*d), make([]float32, d), make([]float32, d)
		for i := range x {
			x[i] = float32(rng.Normal())*3 + 2
		}
		for j := range g {
			g[j], b[j] = float32(rng.Normal()), float32(rng.Normal())
		}
		x[0] = 1e3 // an outlier in the first row
		y1, y2 := make([]float32, len(x)), make([]float32, len(x))
		m1, m2, r1, r2 := make([]float32, rows), make([]float32, rows), make([]float32, rows), make([]float32, rows)
		layerNormRowsGo(y1, x, g, b, m1, r1, rows, d, 1e-6)
		layerNormRows(y2, x, g, b, m2, r2, rows, d, 1e-6)
		near := func(what string, a, b []float32) {
			t.Helper()
			for i := range a {
				if math.Abs(float64(a[i]-b[i])) > 1e-6*(1+math.Abs(float64(a[i]))) {
					t.Fatalf("d=%d %s[%d]: native %v, Go %v", d, what, i, b[i], a[i])
				}
			}
		}
		near("layernorm", y1, y2)
		near("mean", m1, m2)
		near("rstd", r1, r2)

		z1, z2 := append([]float32(nil), x...), append([]float32(nil), x...)
		addRowsGo(z1, b, rows, d)
		addRows(z2, b, rows, d)
		near("add rows", z1, z2)
		addIntoGo(z1, x)
		addInto(z2, x)
		near("add", z1, z2)
	}
}
