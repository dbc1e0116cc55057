package autograd

import "math"

// CosineSchedule is a linear warm-up from 0 to Base over Warmup steps, then a
// cosine decay to Min at Total steps (timm's CosineLRScheduler per step).
type CosineSchedule struct {
	Base, Min     float64
	Warmup, Total int
}

// At returns the learning rate for step (0-based).
func (s CosineSchedule) At(step int) float64 {
	if step < s.Warmup {
		return s.Base * float64(step+1) / float64(s.Warmup)
	}
	span := s.Total - s.Warmup
	if span <= 0 {
		return s.Base
	}
	t := math.Min(1, float64(step-s.Warmup)/float64(span))
	return s.Min + 0.5*(s.Base-s.Min)*(1+math.Cos(math.Pi*t))
}
