package tokenprune

import (
	"fmt"
	"math"
)

// Schedule lowers the keep rate during training: pruning a freshly
// initialised or freshly loaded model at the target rate from the first step
// discards tokens on the strength of attention maps that mean nothing yet, so
// the rate starts at 1 (no pruning), holds there for a warm-up, then falls to
// Target along a cubic curve and stays there.
//
// Warmup and Ramp are fractions of the total number of training steps.
type Schedule struct {
	Target float64 `json:"target"`
	Warmup float64 `json:"warmup"`
	Ramp   float64 `json:"ramp"`
}

// DefaultSchedule is the schedule used unless the user overrides it: no
// pruning for the first 10% of training, then a ramp over the next half, so
// the model trains at the target rate for the last 40%.
func DefaultSchedule(target float64) Schedule {
	return Schedule{Target: target, Warmup: 0.1, Ramp: 0.5}
}

// scheduleSlack lets fractions such as 0.3 + 0.7, which do not sum to exactly
// 1 in binary, pass validation.
const scheduleSlack = 1e-9

// Validate reports a schedule that cannot be followed: Target outside (0, 1],
// a fraction outside [0, 1], or a warm-up and ramp that together exceed the
// run.
func (s Schedule) Validate() error {
	// Written as negated ranges so that NaN fails every check.
	if !(s.Target > 0 && s.Target <= 1) {
		return fmt.Errorf("token keep rate %v is outside (0, 1]", s.Target)
	}
	if !(s.Warmup >= 0 && s.Warmup <= 1) {
		return fmt.Errorf("token keep schedule: warm-up fraction %v is outside [0, 1]", s.Warmup)
	}
	if !(s.Ramp >= 0 && s.Ramp <= 1) {
		return fmt.Errorf("token keep schedule: ramp fraction %v is outside [0, 1]", s.Ramp)
	}
	if s.Warmup+s.Ramp > 1+scheduleSlack {
		return fmt.Errorf("token keep schedule: warm-up %v plus ramp %v exceed the whole run (1)", s.Warmup, s.Ramp)
	}
	return nil
}

// At returns the keep rate for step (0-based) of a run of total steps.
// Progress is measured as step/(total−1), so the last step counts as the end
// of training and gets exactly Target; a run of one step is all end and gets
// Target too. Steps outside [0, total−1] are clamped.
func (s Schedule) At(step, total int) float64 {
	if total <= 1 {
		return s.Target
	}
	f := math.Min(math.Max(float64(step)/float64(total-1), 0), 1)
	if f <= s.Warmup {
		return 1
	}
	// Clamped to 1 so that a warm-up and ramp that exceed the run by
	// rounding error still reach Target at the last step.
	end := math.Min(s.Warmup+s.Ramp, 1)
	if f >= end {
		return s.Target
	}
	t := 1 - (f-s.Warmup)/(end-s.Warmup)
	return s.Target + (1-s.Target)*t*t*t
}

// KeepSchedule follows a Schedule in a training run: before each step it
// sets the token keep rate of the training forward pass (it is a
// vit.KeepRate), and it reports the rate in each epoch's metrics. The rate
// is a function of the step until Hold fixes it, so there is no state to
// save: whoever holds it (a closed loop) saves the held rate and holds it
// again on resume. Prune runs saved before holds existed resume unchanged.
type KeepSchedule struct {
	Schedule
	rate float64
	held bool
}

// NewKeepSchedule starts at keep rate 1 (no pruning) until the first step.
func NewKeepSchedule(s Schedule) *KeepSchedule { return &KeepSchedule{Schedule: s, rate: 1} }

// Name identifies the component in metrics.
func (k *KeepSchedule) Name() string { return "token_keep" }

// BeforeStep sets the rate for the coming step.
func (k *KeepSchedule) BeforeStep(step, total int) {
	if !k.held {
		k.rate = k.At(step, total)
	}
}

// KeepRate is the current rate.
func (k *KeepSchedule) KeepRate() float64 { return k.rate }

// Hold makes the current rate the final one: later steps keep it instead of
// following the schedule to Target. A closed loop calls it when the
// structure already meets what the run is for.
func (k *KeepSchedule) Hold() { k.held = true }

// HoldAt is Hold at a given rate, from this step on: a closed loop may keep
// more tokens than the schedule has reached when fewer pruned still meet
// its target.
func (k *KeepSchedule) HoldAt(rate float64) error {
	if !(rate > 0 && rate <= 1) {
		return fmt.Errorf("token keep rate %v is outside (0, 1]", rate)
	}
	k.rate, k.held = rate, true
	return nil
}

// Held reports whether Hold fixed the rate.
func (k *KeepSchedule) Held() bool { return k.held }

// Final is the rate the trained model keeps: the held rate, else Target.
func (k *KeepSchedule) Final() float64 {
	if k.held {
		return k.rate
	}
	return k.Target
}

// EpochMetrics reports the rate at the epoch's last step.
func (k *KeepSchedule) EpochMetrics() map[string]any { return map[string]any{"token_keep": k.rate} }
