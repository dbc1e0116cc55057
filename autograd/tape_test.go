package autograd

import (
	"math"
	"slices"
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

// chain is a residual stack of depth pre-norm MLP blocks over x (rows, d),
// the shape of a transformer's backward pass without attention, reduced to
// a scalar.
func chain(tp *Tape, x *Tensor, ws []*Tensor, g, b *Tensor) *Tensor {
	for k := 0; k+1 < len(ws); k += 2 {
		h := LayerNorm(tp, x, g, b, 1e-6)
		h = GELU(tp, Linear(tp, h, ws[k], nil))
		x = Residual(tp, x, Linear(tp, h, ws[k+1], nil))
	}
	return Project(tp, x, 7)
}

func chainParams(depth, d int) (x *Tensor, ws []*Tensor, g, b *Tensor) {
	x = randTensor(1, 1, 16, d)
	for k := range depth {
		ws = append(ws, randTensor(int64(10+2*k), 0.3, 4*d, d), randTensor(int64(11+2*k), 0.3, d, 4*d))
	}
	g, b = randTensor(3, 1, d), randTensor(4, 0.1, d)
	return x, ws, g, b
}

// The backward pass releases activations and gradients as it goes: the
// memory it needs beyond the forward pass's activations does not grow with
// depth, and afterwards only what nothing recorded needed is left.
func TestBackwardReleasesAsItGoes(t *testing.T) {
	extra := func(depth int) (forward, backward int64) {
		x, ws, g, b := chainParams(depth, 8)
		tp := NewTape(true)
		loss := chain(tp, x, ws, g, b)
		forward = tp.Memory().LiveBytes
		tp.ResetPeak()
		tp.Backward(loss)
		backward = tp.Memory().PeakBytes - forward
		for _, w := range ws {
			for _, v := range w.Grad {
				if math.IsNaN(float64(v)) {
					t.Fatalf("depth %d: NaN gradient: a closure read a released buffer", depth)
				}
			}
		}
		if left := tp.Memory().LiveBytes; left >= forward/4 {
			t.Errorf("depth %d: %d of the forward pass's %d bytes still held after the backward pass", depth, left, forward)
		}
		return forward, backward
	}
	f2, b2 := extra(2)
	f8, b8 := extra(8)
	if f8 < 3*f2 {
		t.Fatalf("forward activations %d at depth 8, %d at depth 2: the test measures nothing", f8, f2)
	}
	if b8 != b2 {
		t.Errorf("the backward pass needed %d bytes beyond the forward pass at depth 2 and %d at depth 8", b2, b8)
	}
}

// Gradients through the released, pooled buffers are the finite
// differences' (with released buffers poisoned, TestMain).
func TestChainGradient(t *testing.T) {
	x, ws, g, b := chainParams(3, 4)
	checkGrad(t, "chain", func(tp *Tape) *Tensor { return chain(tp, x, ws, g, b) }, append([]*Tensor{x, g, b}, ws...)...)
}

// Residual writes into its branch's buffer, taking nothing from the pool,
// and computes what Add does, gradients included.
func TestResidualReusesTheBranchBuffer(t *testing.T) {
	x, ws, _, _ := chainParams(1, 4)
	run := func(residual bool) (values []float32, grads [][]float32) {
		for _, p := range []*Tensor{x, ws[0], ws[1]} {
			clear(p.Grad)
		}
		tp := NewTape(true)
		h := Linear(tp, x, ws[0], nil)
		r := Linear(tp, h, ws[1], nil)
		before := tp.pool.takes
		var y *Tensor
		if residual {
			y = Residual(tp, x, r)
			if !sameBuffer(y.Data, r.Data) || tp.pool.takes != before {
				t.Error("Residual did not write into its branch's buffer")
			}
		} else {
			y = Add(tp, x, r)
		}
		values = append([]float32(nil), y.Data...)
		tp.Backward(Project(tp, y, 5))
		for _, p := range []*Tensor{x, ws[0], ws[1]} {
			grads = append(grads, append([]float32(nil), p.Grad...))
		}
		return values, grads
	}
	v1, g1 := run(false)
	v2, g2 := run(true)
	if !slices.Equal(v1, v2) {
		t.Errorf("Residual %v, Add %v", v2, v1)
	}
	for i := range g1 {
		if !slices.Equal(g1[i], g2[i]) {
			t.Errorf("gradient %d: Residual %v, Add %v", i, g2[i], g1[i])
		}
	}
	// A branch that something recorded still needs is not overwritten.
	tp := NewTape(true)
	r := Linear(tp, x, ws[0], nil)
	s := GELU(tp, r) // keeps r for its backward pass
	if y := Residual(tp, s, r); sameBuffer(y.Data, r.Data) {
		t.Error("Residual overwrote a tensor the backward pass needs")
	}
}

// A tape sharing another's pool reuses the buffers that tape's pass gave
// back: evaluation between training steps allocates nothing new.
func TestSharedTapeReusesThePool(t *testing.T) {
	x, ws, g, b := chainParams(2, 8)
	tp := NewTape(true)
	tp.Backward(chain(tp, x, ws, g, b))
	tp.Reset()
	allocs := tp.pool.allocs
	inf := tp.Shared(false)
	chain(inf, x, ws, g, b)
	inf.Reset()
	if tp.pool.allocs != allocs {
		t.Errorf("an inference pass on a shared tape allocated %d buffers", tp.pool.allocs-allocs)
	}
}

// The poisoning TestMain turns on shows a closure that reads a tensor it
// did not declare: here a gradient that uses the input after the only
// declared reader has released it.
func TestPoisonShowsUndeclaredReads(t *testing.T) {
	x := randTensor(1, 1, 4, 4)
	w := randTensor(2, 1, 4, 4)
	tp := NewTape(true)
	h := Linear(tp, x, w, nil) // a tape tensor
	sq := tp.Output([]*Tensor{h}, h.Shape...)
	for i, v := range h.Data {
		sq.Data[i] = v * v
	}
	tp.Record(sq, func() { // reads h without declaring it
		g := tp.GradOf(h)
		for i, v := range h.Data {
			g[i] += 2 * v * sq.Grad[i]
		}
	})
	y := Linear(tp, h, w, nil) // declares h, and runs first in backward
	tp.Backward(Project(tp, Add(tp, sq, y), 3))
	if !math.IsNaN(float64(w.Grad[0])) {
		t.Error("an undeclared read of a released buffer went unnoticed")
	}
}
