package autograd

const (
	invSqrt2   = 0.7071067811865476
	invSqrt2Pi = 0.3989422804014327
)

// GELU is the exact (erf) Gaussian error linear unit, torch's default:
// y = x·Φ(x) with Φ(x) = ½(1 + erf(x/√2)), erf to float32 precision. The
// backward pass keeps only x, as torch does, and computes Φ(x) again from
// it: keeping Φ as well would hold a third hidden-sized tensor per block
// for the whole backward pass, where the vectorised erf costs little.
func GELU(tp *Tape, x *Tensor) *Tensor {
	y := tp.Output([]*Tensor{x}, x.Shape...)
	ParallelFor(x.Len(), 4096, func(lo, hi int) {
		geluForward(y.Data[lo:hi], x.Data[lo:hi])
	})
	tp.Record(y, func() {
		dx := tp.GradOf(x)
		dy := y.Grad
		ParallelFor(x.Len(), 4096, func(lo, hi int) {
			geluBackward(dx[lo:hi], dy[lo:hi], x.Data[lo:hi])
		})
	}, x)
	return y
}
