package autograd

import "math"

// GELU is the exact (erf) Gaussian error linear unit, torch's default:
// y = x·Φ(x) with Φ(x) = ½(1 + erf(x/√2)).
func GELU(tp *Tape, x *Tensor) *Tensor {
	y := tp.Output([]*Tensor{x}, x.Shape...)
	ParallelFor(x.Len(), 4096, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v := float64(x.Data[i])
			y.Data[i] = float32(0.5 * v * (1 + math.Erf(v/math.Sqrt2)))
		}
	})
	tp.Record(y, func() {
		dx := tp.GradOf(x)
		dy := y.Grad
		const invSqrt2Pi = 0.3989422804014327
		ParallelFor(x.Len(), 4096, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				v := float64(x.Data[i])
				cdf := 0.5 * (1 + math.Erf(v/math.Sqrt2))
				pdf := invSqrt2Pi * math.Exp(-0.5*v*v)
				dx[i] += dy[i] * float32(cdf+v*pdf)
			}
		})
	})
	return y
}
