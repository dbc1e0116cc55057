package autograd

import "math"

// AdamW is Adam with decoupled weight decay (Loshchilov & Hutter), matching
// torch.optim.AdamW: p ← p·(1 − lr·wd), then the bias-corrected Adam step.
type AdamW struct {
	Beta1, Beta2, Eps, WeightDecay float64
	Step                           int
	M, V                           map[string][]float32
}

// NewAdamW returns an optimizer with torch's default betas and eps.
func NewAdamW(weightDecay float64) *AdamW {
	return &AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: weightDecay,
		M: map[string][]float32{}, V: map[string][]float32{}}
}

// Update applies one step with learning rate lr·p.LRScale to every
// parameter; a parameter with LRScale 0 is frozen and skipped.
func (o *AdamW) Update(ps *Params, lr float64) {
	o.Step++
	bc1 := 1 - math.Pow(o.Beta1, float64(o.Step))
	bc2 := 1 - math.Pow(o.Beta2, float64(o.Step))
	b1, b2 := float32(o.Beta1), float32(o.Beta2)
	rbc2 := float32(1 / math.Sqrt(bc2))
	eps := float32(o.Eps)
	for _, p := range ps.List() {
		if p.LRScale == 0 {
			continue
		}
		lr := lr * p.LRScale
		stepSize := float32(lr / bc1)
		m, ok := o.M[p.Name]
		if !ok {
			m = make([]float32, p.Len())
			o.M[p.Name] = m
			o.V[p.Name] = make([]float32, p.Len())
		}
		v := o.V[p.Name]
		decay := float32(1)
		if p.Decay {
			decay = float32(1 - lr*o.WeightDecay)
		}
		data, grad := p.Data, p.Grad
		ParallelFor(len(data), 1<<14, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				g := grad[i]
				m[i] = b1*m[i] + (1-b1)*g
				v[i] = b2*v[i] + (1-b2)*g*g
				denom := float32(math.Sqrt(float64(v[i])))*rbc2 + eps
				data[i] = data[i]*decay - stepSize*m[i]/denom
			}
		})
	}
}
