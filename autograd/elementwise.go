package autograd

// Add returns a + b for tensors of the same shape (residual connections).
func Add(tp *Tape, a, b *Tensor) *Tensor {
	if a.Len() != b.Len() {
		panic("autograd: Add of different sizes")
	}
	y := tp.Output([]*Tensor{a, b}, a.Shape...)
	for i, v := range a.Data {
		y.Data[i] = v + b.Data[i]
	}
	tp.Record(y, func() {
		for _, in := range []*Tensor{a, b} {
			if in.needsGrad {
				g := tp.GradOf(in)
				for i, v := range y.Grad {
					g[i] += v
				}
			}
		}
	})
	return y
}

// Scale returns c·x.
func Scale(tp *Tape, x *Tensor, c float32) *Tensor {
	y := tp.Output([]*Tensor{x}, x.Shape...)
	for i, v := range x.Data {
		y.Data[i] = c * v
	}
	tp.Record(y, func() {
		g := tp.GradOf(x)
		for i, v := range y.Grad {
			g[i] += c * v
		}
	})
	return y
}

// Mask returns w ⊙ mask where mask is a fixed 0/1 array; the gradient to w is
// masked the same way. Block pruning builds on it.
func Mask(tp *Tape, w *Tensor, mask []float32) *Tensor {
	y := tp.Output([]*Tensor{w}, w.Shape...)
	for i, v := range w.Data {
		y.Data[i] = v * mask[i]
	}
	tp.Record(y, func() {
		g := tp.GradOf(w)
		for i, v := range y.Grad {
			g[i] += v * mask[i]
		}
	})
	return y
}
