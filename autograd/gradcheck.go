package autograd

import "math"

// GradCheck compares the tape's gradients of a scalar function with central
// finite differences for every element of the given inputs. f builds the
// function on the tape it is handed and returns the scalar. It returns the
// largest |analytic − numeric| over all elements, divided by the largest
// analytic gradient magnitude of that input: float32 arithmetic limits
// finite-difference precision, and this keeps tiny gradients from being
// judged on rounding noise.
func GradCheck(f func(tp *Tape) *Tensor, inputs []*Tensor, h float64) float64 {
	tp := NewTape(true)
	for _, in := range inputs {
		in.needsGrad = true
		in.Grad = make([]float32, in.Len())
	}
	loss := f(tp)
	tp.Backward(loss)
	analytic := make([][]float32, len(inputs))
	for i, in := range inputs {
		analytic[i] = append([]float32(nil), in.Grad...)
	}
	eval := func() float64 {
		t := NewTape(false)
		return float64(f(t).Data[0])
	}
	worst := 0.0
	for i, in := range inputs {
		scale := 1e-3
		for _, g := range analytic[i] {
			scale = math.Max(scale, math.Abs(float64(g)))
		}
		for j := range in.Data {
			orig := in.Data[j]
			in.Data[j] = orig + float32(h)
			up := eval()
			in.Data[j] = orig - float32(h)
			down := eval()
			in.Data[j] = orig
			numeric := (up - down) / (2 * h)
			err := math.Abs(numeric-float64(analytic[i][j])) / scale
			worst = math.Max(worst, err)
		}
	}
	return worst
}

// Project reduces x to the scalar Σ x_i·w_i with fixed random weights w
// drawn from seed, so a gradient check of a tensor-valued op sees every
// output element through a different weight.
func Project(tp *Tape, x *Tensor, seed int64) *Tensor {
	w := make([]float32, x.Len())
	NewRNG(seed, 99).TruncNormal(w, 1)
	y := tp.Output([]*Tensor{x}, 1)
	var s float64
	for i, v := range x.Data {
		s += float64(v) * float64(w[i])
	}
	y.Data[0] = float32(s)
	tp.Record(y, func() {
		g := tp.GradOf(x)
		for i := range g {
			g[i] += w[i] * y.Grad[0]
		}
	})
	return y
}
