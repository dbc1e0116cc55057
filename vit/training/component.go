package training

import (
	"vitc/autograd"
	"vitc/vit"
)

// Component is one technique plugged into a run. Name keys its metrics and
// its saved state. What else it does, it says by implementing the hook
// interfaces below (as PyTorch Lightning callbacks override hooks); the
// loop looks for each one once, when the run starts. A component that
// implements one of vit's extension interfaces (vit.WeightView,
// vit.AttentionHook, vit.HeadFilter, vit.KeepRate, vit.KeptObserver) is
// installed in the training pass's forward context as that extension.
type Component interface {
	Name() string
}

// StepHook runs before each optimizer step's forward pass: schedules set
// this step's values (density, keep rate, annealed weights). step counts
// from 0; total is the run's number of steps.
type StepHook interface {
	BeforeStep(step, total int)
}

// Objective replaces the run's main loss (cross-entropy with label
// smoothing). A run has at most one.
type Objective interface {
	Objective(tp *autograd.Tape, images *autograd.Tensor, labels []int, logits *autograd.Tensor) *autograd.Tensor
}

// LossTerm adds a scalar to the loss, built from what the component saw in
// this step's forward pass; nil adds nothing this step.
type LossTerm interface {
	Loss(tp *autograd.Tape) *autograd.Tensor
}

// EpochReporter adds columns to metrics.jsonl (under "extra") at each
// epoch's end.
type EpochReporter interface {
	EpochMetrics() map[string]any
}

// Stateful components save what they need to continue exactly where they
// stopped (masks, counters) in the run's state, and restore it on resume.
// Parameters a component registers in the model (e.g. block scores) are
// saved with the model's and need no state of their own.
type Stateful interface {
	MarshalState() ([]byte, error)
	UnmarshalState([]byte) error
}

// extend installs c's model extensions in the pass.
func extend(p *vit.Pass, c Component) {
	if v, ok := c.(vit.WeightView); ok {
		p.Weights = append(p.Weights, v)
	}
	if v, ok := c.(vit.AttentionHook); ok {
		p.Attention = append(p.Attention, v)
	}
	if v, ok := c.(vit.HeadFilter); ok {
		p.Heads = append(p.Heads, v)
	}
	if v, ok := c.(vit.KeepRate); ok {
		p.KeepRate = v
	}
	if v, ok := c.(vit.KeptObserver); ok {
		p.Kept = append(p.Kept, v)
	}
}
