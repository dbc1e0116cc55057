package autograd

// Add returns a + b for tensors of the same shape.
func Add(tp *Tape, a, b *Tensor) *Tensor {
	if a.Len() != b.Len() {
		panic("autograd: Add of different sizes")
	}
	y := tp.Output([]*Tensor{a, b}, a.Shape...)
	for i, v := range a.Data {
		y.Data[i] = v + b.Data[i]
	}
	recordAdd(tp, y, a, b)
	return y
}

// Residual returns x + r, a residual connection, where the caller never
// uses r again (a branch's output): when nothing recorded needs r's values
// and r's buffer is the tape's, the sum is written into that buffer instead
// of a new one, so the branch output costs no memory of its own. The
// result is the same either way, and r's gradient is still its own.
func Residual(tp *Tape, x, r *Tensor) *Tensor {
	if x.Len() != r.Len() {
		panic("autograd: Residual of different sizes")
	}
	if !r.owned || r.home != tp || r.saves > 0 || r.pinned || x == r || sameBuffer(x.Data, r.Data) {
		return Add(tp, x, r)
	}
	y := &Tensor{Shape: append([]int(nil), x.Shape...), Data: r.Data, home: tp, owned: true,
		needsGrad: tp.needsGrad([]*Tensor{x, r})}
	r.owned = false // the buffer is y's now; r keeps only its shape (and gradient)
	tp.tensors = append(tp.tensors, y)
	addInto(y.Data, x.Data)
	recordAdd(tp, y, x, r)
	return y
}

func sameBuffer(a, b []float32) bool {
	return len(a) > 0 && len(b) > 0 && &a[0] == &b[0]
}

// recordAdd records the backward pass of y = a + b, which needs no values.
func recordAdd(tp *Tape, y, a, b *Tensor) {
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
