package autograd

import "math"

// GELU is the exact (erf) Gaussian error linear unit, torch's default:
// y = x·Φ(x) with Φ(x) = ½(1 + erf(x/√2)).
func GELU(tp *Tape, x *Tensor) *Tensor {
	y := tp.Output([]*Tensor{x}, x.Shape...)
	// Φ(x) is kept for the backward pass when recording: erf is the
	// expensive part, and the backward needs it again.
	var cdf []float32
	if y.needsGrad {
		cdf = tp.New(false, x.Len()).Data
	}
	ParallelFor(x.Len(), 4096, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v := float64(x.Data[i])
			phi := 0.5 * (1 + math.Erf(v/math.Sqrt2))
			y.Data[i] = float32(v * phi)
			if cdf != nil {
				cdf[i] = float32(phi)
			}
		}
	})
	tp.Record(y, func() {
		dx := tp.GradOf(x)
		dy := y.Grad
		const invSqrt2Pi = 0.3989422804014327
		ParallelFor(x.Len(), 4096, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				v := float64(x.Data[i])
				pdf := invSqrt2Pi * math.Exp(-0.5*v*v)
				dx[i] += dy[i] * (cdf[i] + float32(v*pdf))
			}
		})
	})
	return y
}
