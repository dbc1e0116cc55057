package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vitc/blockprune"
	"vitc/datasets"
	"vitc/export/hw"
	"vitc/tokenprune"
	"vitc/vit"
	"vitc/vit/training"
)

// loopRig is a Taylor micro model on 8×8 digits being pruned to a plan,
// with its two schedules and the closed loop, driven step by step without
// training. The block scores are set so that every head loses its qkv and
// proj blocks evenly, except head 0 of layer i, whose proj blocks go first
// once i blocks of head 1 are gone: one head dies per layer, early in the
// ramp and one layer at a time (as heads die in training), and the plan's
// endpoint overshoots.
type loopRig struct {
	cfg    vit.Config
	plan   *PrunePlan
	prune  *Prune
	pruner *blockprune.Pruner
	keep   *tokenprune.KeepSchedule
	loop   *closedLoop
}

func newLoopRig(t *testing.T, target Target) *loopRig {
	t.Helper()
	cfg := microDigits()
	cfg.Attention = "taylor"
	plan, err := target.Plan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.TokenKeep, cfg.TokenLayers = plan.TokenKeep, plan.TokenLayers
	m, err := vit.New(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	h := target.HW
	pr := &Prune{Blocks: blockprune.Options{Block: target.Block, Density: plan.Density, Warmup: 0.1, Ramp: 0.6},
		Tokens: tokenprune.DefaultSchedule(plan.TokenKeep), Target: plan, HW: &h, HWBatch: target.Batch}
	pruner, err := blockprune.New(m, pr.Blocks)
	if err != nil {
		t.Fatal(err)
	}
	hd, cols := cfg.HeadDim()/target.Block, cfg.Dim/target.Block // blocks per head; block columns
	for i := 0; i < cfg.Depth; i++ {
		// qkv: block row r belongs to head (r/hd)%heads; rank rows round
		// robin over the heads.
		qkv, _ := m.Params.Get(blockName(i, "attn.qkv.weight.block_scores"))
		for r := 0; r < 3*cfg.Dim/target.Block; r++ {
			for c := 0; c < cols; c++ {
				head, within := (r/hd)%cfg.Heads, (r/hd/cfg.Heads)*hd+r%hd
				qkv.Data[r*cols+c] = float32(1000 - (within*cols+c)*cfg.Heads - head)
			}
		}
		// proj: column c reads head c/hd.
		proj, _ := m.Params.Get(blockName(i, "attn.proj.weight.block_scores"))
		for r := 0; r < cols; r++ {
			for c := 0; c < cols; c++ {
				proj.Data[r*cols+c] = float32(1000 - r*cols - c)
				switch {
				case c/hd == 0:
					proj.Data[r*cols+c] = -1
				case c/hd == 1 && r < i:
					proj.Data[r*cols+c] = -2
				}
			}
		}
	}
	keep := tokenprune.NewKeepSchedule(pr.Tokens)
	return &loopRig{cfg: cfg, plan: plan, prune: pr, pruner: pruner, keep: keep,
		loop: newClosedLoop(pr, m.Config, pruner, keep)}
}

func blockName(i int, name string) string { return fmt.Sprintf("blocks.%d.%s", i, name) }

// step runs the step's hooks in the order a run has them, with check
// called after the schedules and before the loop.
func (r *loopRig) step(s, total int, check func()) {
	r.pruner.BeforeStep(s, total)
	r.keep.BeforeStep(s, total)
	if check != nil {
		check()
	}
	r.loop.BeforeStep(s, total)
}

// measured is the structure's FLOPs reduction and, with speedup, its cycle
// model speed-up, computed as the report computes them for a trained model:
// compacted, against the dense softmax model of the same shape.
func (r *loopRig) measured(t *testing.T, speedup bool) (flops, sp float64) {
	t.Helper()
	c, ext, err := r.pruner.Compact()
	if err != nil {
		t.Fatal(err)
	}
	c.TokenKeep = r.keep.KeepRate()
	ref := denseSoftmax(r.cfg)
	flops = float64(ref.FLOPs()) / float64(c.SparseFLOPs(ext.DensityOf))
	if speedup {
		h, batch := *r.prune.HW, r.prune.HWBatch
		before, err := structureCycles(ref, r.prune.Blocks.Block, 1, h, batch)
		if err != nil {
			t.Fatal(err)
		}
		after, err := ModelledCycles(c, h, batch)
		if err != nil {
			t.Fatal(err)
		}
		sp = float64(before) / float64(after)
	}
	return flops, sp
}

// The loop holds both schedules at the first step whose structure meets
// the FLOPs target, measured as the report measures the trained model, and
// so lands within 5 % of it where the plan's endpoint, with the dead heads,
// overshoots; the structure stays frozen from there to the end.
func TestClosedLoopHoldsAtFirstStepMeetingFLOPs(t *testing.T) {
	const target, total = 3.4, 300
	r := newLoopRig(t, Target{FLOPs: target, Block: 16})
	first, changes := -1, 0
	var atHold float64
	var last string
	for s := 0; s < total; s++ {
		r.step(s, total, func() {
			if r.loop.held != nil {
				return
			}
			f, _ := r.measured(t, false)
			if sig := structureOf(r); sig != last {
				last = sig
				changes++
			}
			if first < 0 && f >= target {
				first, atHold = s, f
			}
		})
	}
	h := r.loop.held
	if h == nil || first < 0 {
		t.Fatalf("held %+v; first step meeting %g×: %d", h, target, first)
	}
	if h.Step != first || h.Steps != total || h.ScheduledKeep != r.keep.At(first, total) {
		t.Errorf("held at step %d (scheduled keep %v), want step %d (%v)", h.Step, h.ScheduledKeep, first, r.keep.At(first, total))
	}
	// It keeps the most tokens that still meet the target with the step's
	// masks: at least the scheduled rate, and every higher rate that prunes
	// fewer tokens falls short.
	end, _ := r.measured(t, false)
	if end != h.FLOPsReduction || end < target || end > atHold || end > 1.05*target || h.TokenKeep < h.ScheduledKeep {
		t.Errorf("held %.4f× at keep %v (scheduled %v, %.4f× there); the model ends at %.4f×", h.FLOPsReduction, h.TokenKeep, h.ScheduledKeep, atHold, end)
	}
	for k := h.TokenKeep + 0.01; k <= 1.0001; k += 0.01 {
		if f := r.flopsAt(t, min(k, 1)); f >= target && f != end {
			t.Errorf("keep %v still gives %.4f×, but the loop held keep %v", k, f, h.TokenKeep)
		}
	}
	if !(h.Density > r.plan.Density) || r.pruner.Target() != h.Density || r.keep.Final() != h.TokenKeep || h.TokenKeep < r.plan.TokenKeep {
		t.Errorf("held at density %v keep %v (plan %v, %v); pruner target %v, final keep %v",
			h.Density, h.TokenKeep, r.plan.Density, r.plan.TokenKeep, r.pruner.Target(), r.keep.Final())
	}
	// It measured each structure once, not each step (and the keep rates
	// above the held one once).
	if r.loop.checks < changes || r.loop.checks > changes+10 || changes >= first {
		t.Errorf("%d checks for %d structures in the %d steps before the hold", r.loop.checks, changes, first)
	}
	// The plan followed to its end (no loop) prunes further.
	u := newLoopRig(t, Target{FLOPs: target, Block: 16})
	for s := 0; s < total; s++ {
		u.pruner.BeforeStep(s, total)
		u.keep.BeforeStep(s, total)
	}
	if planned, _ := u.measured(t, false); planned <= 1.05*target {
		t.Errorf("the plan's endpoint gives %.3f×, the hold %.3f×: nothing to gain", planned, end)
	}
	if line := h.Line(r.plan); !strings.Contains(line, "target 3.4× fewer FLOPs met at step") {
		t.Errorf("hold line %q", line)
	}
}

// flopsAt is the FLOPs reduction of the current masks at keep rate k.
func (r *loopRig) flopsAt(t *testing.T, k float64) float64 {
	t.Helper()
	c, ext, err := r.pruner.Compact()
	if err != nil {
		t.Fatal(err)
	}
	c.TokenKeep = k
	return float64(denseSoftmax(r.cfg).FLOPs()) / float64(c.SparseFLOPs(ext.DensityOf))
}

// structureOf is what the cycle model and FLOPs count see of the rig: the
// compacted model's shape and block masks, and the tokens at each layer.
func structureOf(r *loopRig) string {
	c, ext, _ := r.pruner.Compact()
	c.TokenKeep = r.keep.KeepRate()
	tokens := make([]int, c.Depth)
	for i := range tokens {
		_, tokens[i] = c.TokensAt(i)
	}
	b, _ := json.Marshal([]any{c.LayerHeads, c.LayerHidden, ext.Masks, tokens})
	return string(b)
}

// The same with a speed-up target: the loop holds at a step whose
// structure meets the target on the cycle model, when the step before did
// not, and prints the hold.
func TestClosedLoopHoldsAtSpeedup(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the cycle model at every change of structure")
	}
	const target, total = 1.4, 200
	r := newLoopRig(t, Target{Speedup: target, Block: 16, HW: hw.Default(), Batch: 1})
	var log bytes.Buffer
	r.loop.log = &log
	for s := 0; s < total; s++ {
		r.step(s, total, nil)
		if r.loop.held != nil && r.loop.held.Step == s {
			// Step s is the one held: its structure meets the target and
			// the step before's does not.
			_, got := r.measured(t, true)
			if got < target || math.Abs(got-r.loop.held.Speedup) > 1e-9 || got > 1.05*target {
				t.Errorf("held at %.3f× (loop says %.3f×) for a %g× target", got, r.loop.held.Speedup, target)
			}
		}
	}
	h := r.loop.held
	if h == nil {
		t.Fatal("the loop never held")
	}
	// The step before the hold: replay the schedules to it.
	prev := newLoopRig(t, Target{Speedup: target, Block: 16, HW: hw.Default(), Batch: 1})
	for s := 0; s < h.Step; s++ {
		prev.pruner.BeforeStep(s, total)
		prev.keep.BeforeStep(s, total)
	}
	if _, sp := prev.measured(t, true); sp >= target {
		t.Errorf("step %d already gave %.3f×, the loop held only at step %d", h.Step-1, sp, h.Step)
	}
	if !strings.Contains(log.String(), "target a 1.4× modelled speed-up on "+hw.Default().Name+" met at step") ||
		!strings.Contains(log.String(), "modelled 1.") || strings.Count(log.String(), "\n") != 1 {
		t.Errorf("hold line %q", log.String())
	}
}

// tinyPruneSpec prunes tinySpec's model to a FLOPs target under
// distillation from a dense teacher saved in dir.
func tinyPruneSpec(t *testing.T, dir string, epochs int) (Spec, *datasets.Dataset) {
	t.Helper()
	spec, ds := tinySpec(t, epochs)
	cfg := spec.Train.Config
	teacher, err := vit.New(cfg, 11)
	if err != nil {
		t.Fatal(err)
	}
	st := datasets.ComputeStats(ds)
	path := filepath.Join(dir, "teacher.safetensors")
	if err := teacher.Save(path, vit.Meta{Dataset: "synthetic", NormMean: st.Mean, NormStd: st.Std}); err != nil {
		t.Fatal(err)
	}
	plan, err := Target{FLOPs: 1.6, Block: 4}.Plan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.TokenKeep, cfg.TokenLayers = plan.TokenKeep, plan.TokenLayers
	spec.Train.Config = cfg
	spec.Plan = Plan{Kind: KindPrune, Init: path, Distill: &Distill{Teacher: path, Alpha: 0.9, Temperature: 2, AllowWeakTeacher: true},
		Prune: &Prune{Blocks: blockprune.Options{Block: 4, Density: plan.Density, Warmup: 0.1, Ramp: 0.6},
			Tokens: tokenprune.DefaultSchedule(plan.TokenKeep), MaxDrop: -1, Target: plan}}
	return spec, ds
}

// A pruning run with a target records where its loop held in report.json
// (plan.held), gives the model the held keep rate, and a run interrupted
// before or after the hold and resumed ends exactly as the uninterrupted one.
func TestPruneTargetHoldsAndResumes(t *testing.T) {
	tmp := t.TempDir()
	spec, ds := tinyPruneSpec(t, tmp, 2)
	full, err := New(spec, ds)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	full.Log = &log
	want, err := full.Train(context.Background(), filepath.Join(tmp, "full"), nil)
	if err != nil {
		t.Fatal(err)
	}
	rep := want.Prune
	h := rep.Plan.Held
	if h == nil || rep.Plan.Checks == 0 || h.Step < 2 {
		t.Fatalf("plan in the report: %+v", rep.Plan)
	}
	if rep.TokenKeep != h.TokenKeep && !(h.TokenKeep == 1 && rep.TokenKeep == 1) ||
		math.Abs(rep.FLOPsReduction-h.FLOPsReduction) > 1e-9*h.FLOPsReduction || rep.FLOPsReduction < 1.6 {
		t.Errorf("trained model: %.4f× at keep %g; the loop held at %.4f×, keep %g", rep.FLOPsReduction, rep.TokenKeep, h.FLOPsReduction, h.TokenKeep)
	}
	if !strings.Contains(log.String(), "met at step") {
		t.Errorf("no hold line: %q", log.String())
	}
	raw, err := os.ReadFile(filepath.Join(tmp, "full", "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var js struct {
		Plan struct {
			Held *Hold `json:"held"`
		} `json:"plan"`
	}
	if err := json.Unmarshal(raw, &js); err != nil || js.Plan.Held == nil || *js.Plan.Held != *h {
		t.Errorf("report.json plan.held %+v (%v), want %+v", js.Plan.Held, err, h)
	}
	// 20 steps per epoch; the hold comes in the ramp (steps 4 to 28), and
	// the run stops just before it or after it.
	for _, stopAt := range []int{h.Step - 1, h.Step + 3} {
		dir := filepath.Join(tmp, "stop")
		os.RemoveAll(dir)
		j, err := New(spec, ds)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		if _, err := j.Train(ctx, dir, &cancelAfter{n: stopAt, cancel: cancel}); !errors.Is(err, training.ErrInterrupted) {
			t.Fatalf("stop at %d: got %v, want ErrInterrupted", stopAt, err)
		}
		saved, err := training.ReadSaved(dir)
		if err != nil {
			t.Fatal(err)
		}
		rs, _ := SavedSpec(saved)
		r, p, err := build(rs, ds, saved)
		if err != nil {
			t.Fatal(err)
		}
		resumed := &Job{Spec: rs, Run: r, Resumed: true, parts: p}
		got, err := resumed.Train(context.Background(), dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		gh := got.Prune.Plan.Held
		if gh == nil || gh.Step != h.Step || gh.Density != h.Density || gh.TokenKeep != h.TokenKeep ||
			!bytes.Equal(modelBytes(t, r.Model), modelBytes(t, full.Run.Model)) || got.Prune.PrunedAccuracy != rep.PrunedAccuracy {
			t.Errorf("stopped at step %d and resumed: held %+v, want %+v; same model %v", stopAt, gh, h,
				bytes.Equal(modelBytes(t, r.Model), modelBytes(t, full.Run.Model)))
		}
	}
}
