package autograd

import (
	"math"
	"testing"
)

// TestBackwardFromMatchesBackward: seeding an output's gradient g and
// replaying the tape gives the parameter gradients of the scalar Σ y·g,
// which Backward computes from the loss.
func TestBackwardFromMatchesBackward(t *testing.T) {
	rng := NewRNG(1, 2)
	x := NewParamTensor(3, 4)
	w := NewParamTensor(5, 4)
	b := NewParamTensor(5)
	for _, p := range []*Tensor{x, w, b} {
		rng.TruncNormal(p.Data, 1)
	}
	g := make([]float32, 3*5)
	rng.TruncNormal(g, 1)
	grads := func(run func(tp *Tape, y *Tensor)) [][]float32 {
		for _, p := range []*Tensor{x, w, b} {
			clear(p.Grad)
		}
		tp := NewTape(true)
		run(tp, GELU(tp, Linear(tp, x, w, b)))
		return [][]float32{append([]float32(nil), x.Grad...), append([]float32(nil), w.Grad...), append([]float32(nil), b.Grad...)}
	}
	want := grads(func(tp *Tape, y *Tensor) {
		// The scalar Σ y·g, recorded as an op whose backward is g.
		s := tp.Output([]*Tensor{y}, 1)
		var v float64
		for i := range y.Data {
			v += float64(y.Data[i]) * float64(g[i])
		}
		s.Data[0] = float32(v)
		tp.Record(s, func() {
			gy := tp.GradOf(y)
			for i := range gy {
				gy[i] += s.Grad[0] * g[i]
			}
		})
		tp.Backward(s)
	})
	got := grads(func(tp *Tape, y *Tensor) { tp.BackwardFrom(y, g) })
	for i := range want {
		for j := range want[i] {
			if d := math.Abs(float64(got[i][j] - want[i][j])); d > 1e-6*(1+math.Abs(float64(want[i][j]))) {
				t.Fatalf("input %d element %d: %g, want %g", i, j, got[i][j], want[i][j])
			}
		}
	}
}
