package autograd

const (
	invSqrt2   = 0.7071067811865476
	invSqrt2Pi = 0.3989422804014327
)

// GELU is the exact (erf) Gaussian error linear unit, torch's default:
// y = x·Φ(x) with Φ(x) = ½(1 + erf(x/√2)), erf to float32 precision.
func GELU(tp *Tape, x *Tensor) *Tensor {
	y := tp.Output([]*Tensor{x}, x.Shape...)
	// Φ(x) is kept for the backward pass when recording: erf is the
	// expensive part, and the backward needs it again.
	var cdf []float32
	if y.needsGrad {
		cdf = tp.New(false, x.Len()).Data
	}
	ParallelFor(x.Len(), 4096, func(lo, hi int) {
		var c []float32
		if cdf != nil {
			c = cdf[lo:hi]
		}
		geluForward(y.Data[lo:hi], c, x.Data[lo:hi])
	})
	tp.Record(y, func() {
		dx := tp.GradOf(x)
		dy := y.Grad
		ParallelFor(x.Len(), 4096, func(lo, hi int) {
			geluBackward(dx[lo:hi], dy[lo:hi], x.Data[lo:hi], cdf[lo:hi])
		})
	})
	return y
}
