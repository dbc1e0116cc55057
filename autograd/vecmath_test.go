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
