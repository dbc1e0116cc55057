package pipeline

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"vitc/blockprune"
	"vitc/export/hw"
	"vitc/tokenprune"
	"vitc/vit"
)

// Hold is where a run's closed loop held the pruning schedules: the first
// step whose structure (the pruner's current masks, with the heads they
// kill, and the current token keep rate) met the target, and what it
// measured there.
type Hold struct {
	Step    int     `json:"step"`
	Steps   int     `json:"steps"` // the run's total
	Density float64 `json:"density"`
	// TokenKeep is the rate held: the highest that still meets the target
	// with the step's masks, at least ScheduledKeep, the schedule's rate
	// at the step.
	TokenKeep      float64 `json:"token_keep"`
	ScheduledKeep  float64 `json:"token_keep_scheduled"`
	FLOPsReduction float64 `json:"flops_reduction"`
	Speedup        float64 `json:"modelled_speedup,omitempty"`
	Cycles         int64   `json:"cycles,omitempty"`
}

// value is what the target is about: the speed-up, or the FLOPs reduction.
func (h *Hold) value(p *PrunePlan) float64 {
	if p.TargetSpeedup > 0 {
		return h.Speedup
	}
	return h.FLOPsReduction
}

// Line is the line printed when the loop holds.
func (h *Hold) Line(p *PrunePlan) string {
	got := fmt.Sprintf("%.2f× fewer FLOPs", h.FLOPsReduction)
	if p.TargetSpeedup > 0 {
		got = fmt.Sprintf("modelled %.2f× (%.2f× fewer FLOPs)", h.Speedup, h.FLOPsReduction)
	}
	return fmt.Sprintf("target %s met at step %d of %d: density %.3f, keep %.3f (scheduled %.3f), %s; holding both there",
		p.Target, h.Step, h.Steps, h.Density, h.TokenKeep, h.ScheduledKeep, got)
}

// closedLoop closes the loop between a pruning target and training. The
// planner assumes every head survives, but training kills heads (all their
// qkv blocks or all the proj blocks reading them), so a run that follows
// the plan to its end overshoots the target and prunes more than it needs.
// While the density and keep schedules ramp, closedLoop measures the
// structure the current masks and keep rate leave, the same way the report
// measures the trained model, and the first time it meets the target holds
// both schedules there (blockprune.Pruner.Hold, tokenprune.KeepSchedule.HoldAt),
// at the highest keep rate that still meets it with the step's masks. It
// can only stop the ramps early, so the run lands between the target and
// the target plus one step's change of structure, less what the keep rate
// gives back; a ramp that ends short of the target (no heads died) ends as
// the plan does.
type closedLoop struct {
	plan   *PrunePlan
	hw     hw.Config
	batch  int
	block  int
	cfg    vit.Config // the student's: its token layers
	pruner *blockprune.Pruner
	keep   *tokenprune.KeepSchedule
	log    io.Writer // where the hold line goes (nil: nowhere)

	refFLOPs  float64
	refCycles int64
	last      string // the structure last measured
	measured  float64

	held    *Hold
	checks  int
	seconds float64
	err     error // a structure the cycle model could not take: the loop gives up
}

// newClosedLoop is the loop of a run with a target, or nil for a run whose
// density and keep were set by hand (or planned before plans recorded
// their target).
func newClosedLoop(pr *Prune, cfg vit.Config, pruner *blockprune.Pruner, keep *tokenprune.KeepSchedule) *closedLoop {
	p := pr.Target
	if p == nil || p.TargetFLOPs <= 0 && p.TargetSpeedup <= 0 {
		return nil
	}
	h := hw.Default()
	if pr.HW != nil {
		h = *pr.HW
	}
	return &closedLoop{plan: p, hw: h, batch: max(pr.HWBatch, 1), block: pr.Blocks.Block, cfg: cfg,
		pruner: pruner, keep: keep, refFLOPs: float64(denseSoftmax(cfg).FLOPs())}
}

// Name identifies the component in metrics and saved state.
func (l *closedLoop) Name() string { return "target_loop" }

// BeforeStep runs after the pruner's and the keep schedule's (components()
// adds it after them), so it sees the masks and rate this step trains
// with. It measures only when the structure changed: the kept blocks,
// heads and neurons per layer, or the tokens each block sees.
func (l *closedLoop) BeforeStep(step, total int) {
	if l.held != nil || l.err != nil {
		return
	}
	st := l.pruner.Structure()
	cfg, dens := st.Config(l.cfg, l.block)
	cfg.TokenKeep = l.keep.KeepRate()
	tokens := make([]int, cfg.Depth)
	for i := range tokens {
		_, tokens[i] = cfg.TokensAt(i)
	}
	sig := fmt.Sprint(st, tokens)
	if sig == l.last {
		return
	}
	l.last = sig
	t0 := time.Now()
	defer func() { l.seconds += time.Since(t0).Seconds() }()
	rate := cfg.TokenKeep
	meas := l.measurer(cfg, dens)
	h, met, err := meas(rate)
	if err != nil {
		l.fail(err)
		return
	}
	l.checks++
	l.measured = h.value(l.plan)
	if !met {
		return
	}
	// Met: the density stays here. The token counts move in whole tokens,
	// and a head that died this step can carry the structure well past the
	// target; keep the most tokens that still meet it.
	h.Step, h.Steps, h.Density, h.ScheduledKeep = step, total, l.pruner.Density(), rate
	for _, r := range l.keepsAbove(cfg) {
		hr, ok, err := meas(r)
		if err != nil {
			l.fail(err)
			return
		}
		l.checks++
		if ok {
			hr.Step, hr.Steps, hr.Density, hr.ScheduledKeep = h.Step, h.Steps, h.Density, h.ScheduledKeep
			h = hr
			break
		}
	}
	l.measured = h.value(l.plan)
	l.pruner.Hold()
	if err := l.keep.HoldAt(h.TokenKeep); err != nil {
		l.fail(err)
		return
	}
	l.held = h
	if l.log != nil {
		fmt.Fprintln(l.log, h.Line(l.plan))
	}
}

// measurer returns how the structure of cfg (the current masks' config,
// with their block densities dens) measures at a keep rate: as the report
// measures the trained model, the FLOPs reduction and, for a speed-up
// target, the cycle model's speed-up of the compacted model.
func (l *closedLoop) measurer(cfg vit.Config, dens func(int, string) float64) func(rate float64) (*Hold, bool, error) {
	var compact *vit.Model
	return func(rate float64) (*Hold, bool, error) {
		c := cfg
		c.TokenKeep = rate
		h := &Hold{TokenKeep: rate, FLOPsReduction: l.refFLOPs / float64(c.SparseFLOPs(dens))}
		if l.plan.TargetSpeedup <= 0 {
			return h, h.FLOPsReduction >= l.plan.TargetFLOPs, nil
		}
		if compact == nil {
			var err error
			if compact, err = l.compact(); err != nil {
				return nil, false, err
			}
		}
		compact.TokenKeep = rate
		cy, err := ModelledCycles(compact, l.hw, l.batch)
		if err != nil {
			return nil, false, err
		}
		h.Cycles, h.Speedup = cy, float64(l.refCycles)/float64(cy)
		return h, h.Speedup >= l.plan.TargetSpeedup, nil
	}
}

// keepsAbove are the keep rates above cfg's that prune fewer tokens, one
// per distinct set of token counts (the lowest rate giving it), from the
// fewest tokens pruned (rate 1) down.
func (l *closedLoop) keepsAbove(cfg vit.Config) []float64 {
	tokens := func(rate float64) string {
		c := cfg
		c.TokenKeep = rate
		out := make([]int, c.Depth)
		for i := range out {
			_, out[i] = c.TokensAt(i)
		}
		return fmt.Sprint(out)
	}
	var rates []float64
	prev := tokens(cfg.TokenKeep)
	for i := 1; ; i++ {
		r := min(1, cfg.TokenKeep+0.005*float64(i))
		if t := tokens(r); t != prev {
			rates, prev = append(rates, r), t
		}
		if r == 1 {
			break
		}
	}
	slices.Reverse(rates)
	return rates
}

func (l *closedLoop) fail(err error) {
	l.err = err
	if l.log != nil {
		fmt.Fprintf(l.log, "target loop: cannot measure this structure (%v); following the plan to its end\n", err)
	}
}

// compact is the current structure as the report measures the trained
// model: compacted, with its real weights and block masks. It also fixes
// the reference count the first time.
func (l *closedLoop) compact() (*vit.Model, error) {
	if l.refCycles == 0 {
		if l.plan.CyclesDense > 0 && l.plan.Batch == l.batch && l.plan.HW == l.hw.Name {
			l.refCycles = l.plan.CyclesDense // the planner's, computed the same way
		} else {
			c, err := structureCycles(denseSoftmax(l.cfg), l.block, 1, l.hw, l.batch)
			if err != nil {
				return nil, err
			}
			l.refCycles = c
		}
	}
	m, _, err := l.pruner.Compact()
	return m, err
}

// EpochMetrics implements training.EpochReporter: the last measured
// speed-up (or FLOPs reduction) and whether the schedules are held.
func (l *closedLoop) EpochMetrics() map[string]any {
	return map[string]any{"target_measured": l.measured, "target_held": l.held != nil}
}

// loopState is the loop's saved state.
type loopState struct {
	Held    *Hold   `json:"held,omitempty"`
	Checks  int     `json:"checks"`
	Seconds float64 `json:"seconds"`
}

// MarshalState saves where the loop held (if it did) and its measuring
// cost. The pruner saves its held density and masks itself; the keep
// schedule has no state, so the loop holds it again on restore.
func (l *closedLoop) MarshalState() ([]byte, error) {
	return json.Marshal(loopState{Held: l.held, Checks: l.checks, Seconds: l.seconds})
}

// UnmarshalState restores what MarshalState saved, and holds the keep
// schedule at the saved rate. A resumed run that has not held measures its
// structure again at its first step.
func (l *closedLoop) UnmarshalState(b []byte) error {
	var st loopState
	if err := json.Unmarshal(b, &st); err != nil {
		return err
	}
	if st.Held != nil {
		if !l.pruner.Held() {
			return fmt.Errorf("the loop held at step %d, but the pruner's saved state is not held", st.Held.Step)
		}
		if err := l.keep.HoldAt(st.Held.TokenKeep); err != nil {
			return err
		}
	}
	l.held, l.checks, l.seconds = st.Held, st.Checks, st.Seconds
	return nil
}

// result is the plan as the report records it: with where the loop held
// and what measuring cost.
func (l *closedLoop) result() *PrunePlan {
	p := *l.plan
	p.Held, p.Checks, p.CheckSeconds = l.held, l.checks, l.seconds
	if l.err != nil {
		p.LoopError = l.err.Error()
	}
	return &p
}
