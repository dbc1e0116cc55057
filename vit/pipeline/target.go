package pipeline

import (
	"errors"
	"fmt"
	"math"
	"math/rand"
	"strings"

	"vitc/export"
	"vitc/export/hw"
	"vitc/export/sim"
	"vitc/tokenprune"
	"vitc/vit"
)

// Target is what a planned prune run must reach, against the dense
// softmax model of the student's shape. Exactly one of FLOPs and Speedup is
// set.
type Target struct {
	// FLOPs is the analytical FLOPs reduction (vit.Config.SparseFLOPs).
	FLOPs float64
	// Speedup is the cycle model's speed-up on HW.
	Speedup float64
	HW      hw.Config
	// Batch is the throughput setting the speed-up is modelled at: the
	// images per load of the weights, run in lockstep groups (export
	// CompileOptions.Batch; 0 or 1: one image at a time, the latency).
	Batch int
	// Block is the pruning block side; LayerSets, when set, are the token
	// pruning layers the planner may choose from (default: the FCCM'24
	// positions scaled to the depth, and the same one block earlier).
	Block     int
	LayerSets [][]int
}

// PrunePlan is the pruning settings a planner chose and what they are
// predicted to give. One density serves every kind of pruned matrix (qkv
// and proj blocks, MLP neurons): blockprune has one target density.
type PrunePlan struct {
	Target string `json:"target"`
	// TargetFLOPs or TargetSpeedup is the target as a number, for the
	// run's closed loop (closedLoop).
	TargetFLOPs    float64            `json:"target_flops,omitempty"`
	TargetSpeedup  float64            `json:"target_speedup,omitempty"`
	Density        float64            `json:"density"`
	KindDensity    map[string]float64 `json:"kind_density"` // kept fraction per kind once rounded to whole blocks and neurons
	TokenKeep      float64            `json:"token_keep"`
	TokenLayers    []int              `json:"token_layers"`
	TokensPerLayer []int              `json:"tokens_per_layer"` // tokens each block's MLP sees
	FLOPsReduction float64            `json:"flops_reduction"`
	Speedup        float64            `json:"modelled_speedup,omitempty"`
	// SpeedupLatency is the same structure's speed-up at batch 1, when
	// Batch is larger (a bundle exported for latency runs at it).
	SpeedupLatency float64 `json:"modelled_speedup_latency,omitempty"`
	CyclesDense    int64   `json:"cycles_dense_softmax,omitempty"`
	Cycles         int64   `json:"cycles,omitempty"`
	HW             string  `json:"hw,omitempty"`
	Batch          int     `json:"hw_batch,omitempty"` // the throughput setting of the cycles
	Candidates     int     `json:"candidates"`         // settings evaluated
	// Held is where the run's closed loop held the density and keep
	// schedules because the structure met the target (nil: it did not
	// before the ramps ended, or the plan is not a run's yet). Checks
	// structures were measured, in CheckSeconds; LoopError says why the
	// loop gave up, if it did.
	Held         *Hold   `json:"held,omitempty"`
	Checks       int     `json:"loop_checks,omitempty"`
	CheckSeconds float64 `json:"loop_seconds,omitempty"`
	LoopError    string  `json:"loop_error,omitempty"`
}

// Lines is the plan as printed before training, one line each.
func (p *PrunePlan) Lines() []string {
	out := []string{fmt.Sprintf("plan for %s (%d settings evaluated):", p.Target, p.Candidates),
		fmt.Sprintf("  density      %.3f (kept: qkv blocks %.3f, proj blocks %.3f, MLP neurons %.3f, every layer)",
			p.Density, p.KindDensity["qkv"], p.KindDensity["proj"], p.KindDensity["mlp"]),
		fmt.Sprintf("  tokens       keep %.3g after blocks %v; tokens per block %v", p.TokenKeep, p.TokenLayers, p.TokensPerLayer),
		fmt.Sprintf("  predicted    %.2f× fewer FLOPs than the dense softmax model", p.FLOPsReduction)}
	if p.Speedup > 0 {
		out[3] += fmt.Sprintf(", %.2f× modelled speed-up on %s at batch %d (%d → %d cycles per image)", p.Speedup, p.HW, max(p.Batch, 1), p.CyclesDense, p.Cycles)
		if p.SpeedupLatency > 0 {
			out[3] += fmt.Sprintf(", %.2f× at batch 1", p.SpeedupLatency)
		}
	}
	return out
}

// keepLadder is the token keep rates a planner tries (1: no token pruning).
var keepLadder = []float64{1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4}

// PlannedConfig is cfg pruned as a plan predicts before training: token
// pruning at keep after layers, ⌈density·hidden⌉ MLP units per block, and
// the kept fraction of qkv and proj blocks (whole blocks, at least one) as
// SparseFLOPs' density. Heads are all kept: which ones die is up to
// training, so the prediction is what the run reaches at least.
func PlannedConfig(cfg vit.Config, block int, density, keep float64, layers []int) (vit.Config, func(int, string) float64) {
	c := cfg
	c.TokenKeep, c.TokenLayers = keep, layers
	if keep >= 1 {
		c.TokenKeep, c.TokenLayers = 0, nil
	}
	c.LayerHidden = make([]int, c.Depth)
	for i := range c.LayerHidden {
		c.LayerHidden[i] = keptCount(density, cfg.Hidden())
	}
	d, b := cfg.Dim, block
	qkv := float64(keptCount(density, 3*d/b*(d/b))) / float64(3*d/b*(d/b))
	proj := float64(keptCount(density, (d/b)*(d/b))) / float64((d/b)*(d/b))
	return c, func(_ int, name string) float64 {
		switch name {
		case "attn.qkv":
			return qkv
		case "attn.proj":
			return proj
		}
		return 1 // the MLP is narrower instead
	}
}

// keptCount is blockprune's top-k size: ⌈density·n⌉, at least one.
func keptCount(density float64, n int) int {
	return min(n, max(1, int(math.Ceil(density*float64(n)-1e-9))))
}

// denseSoftmax is the reference every target is measured against.
func denseSoftmax(cfg vit.Config) vit.Config {
	c := cfg
	c.Attention, c.TokenKeep, c.TokenLayers, c.LayerHeads, c.LayerHidden = "softmax", 0, nil, nil, nil
	return c
}

// candidate is one point of the planner's search.
type candidate struct {
	density, keep float64
	layers        []int
	cfg           vit.Config
	flops         float64 // reduction
	speedup       float64
	cycles        int64
}

// cost is the planner's stand-in for the accuracy a setting costs, until
// per-layer sensitivity is measured: the squared fractions of weights and of
// token work removed, so that it spreads the reduction over both rather
// than pushing either to the extreme, and prunes tokens late rather than
// early (earlier pruning removes more of the blocks' token work).
func (c candidate) cost() float64 {
	var seen, all float64
	for i := 0; i < c.cfg.Depth; i++ {
		_, n := c.cfg.TokensAt(i)
		seen += float64(n)
		all += float64(c.cfg.Tokens())
	}
	return (1-c.density)*(1-c.density) + (1-seen/all)*(1-seen/all)
}

// Plan chooses the density, token keep rate and token layers that reach t
// on cfg (the student's dense config) at the least cost: for each keep rate
// and layer set, the highest density that meets the target (bisection; the
// reduction grows as the density falls), then the cheapest of those.
func (t Target) Plan(cfg vit.Config) (*PrunePlan, error) {
	if err := t.validate(cfg); err != nil {
		return nil, err
	}
	ref := denseSoftmax(cfg)
	refFLOPs := float64(ref.FLOPs())
	var refCycles int64
	if t.Speedup > 0 {
		var err error
		if refCycles, err = structureCycles(ref, t.Block, 1, t.HW, t.Batch); err != nil {
			return nil, err
		}
	}
	n := 0
	eval := func(d, keep float64, layers []int) (candidate, error) {
		n++
		c, dens := PlannedConfig(cfg, t.Block, d, keep, layers)
		cd := candidate{density: d, keep: keep, layers: layers, cfg: c, flops: refFLOPs / float64(c.SparseFLOPs(dens))}
		if t.Speedup > 0 {
			cy, err := structureCycles(c, t.Block, d, t.HW, t.Batch)
			if err != nil {
				return cd, err
			}
			cd.cycles, cd.speedup = cy, float64(refCycles)/float64(cy)
		}
		return cd, nil
	}
	meets := func(c candidate) bool {
		if t.Speedup > 0 {
			return c.speedup >= t.Speedup
		}
		return c.flops >= t.FLOPs
	}
	// Bisection down to a step of this size: finer than one block of the
	// smallest matrix would only repeat evaluations.
	step := 0.005
	if t.Speedup > 0 {
		step = 0.01
	}
	var best, most *candidate // the cheapest that meets the target; the most reduction seen
	for li, layers := range t.layerSets(cfg) {
		if best != nil {
			// Later sets prune tokens earlier, which cost accuracy in every
			// measured run at the same reduction: they serve only targets
			// the sets before them cannot reach.
			break
		}
		for _, keep := range keepLadder {
			if keep == 1 && li > 0 {
				continue // the same model, without token pruning
			}
			lo, err := eval(step, keep, layers)
			if err != nil {
				return nil, err
			}
			if most == nil || lo.flops > most.flops && lo.speedup >= most.speedup {
				c := lo
				most = &c
			}
			if !meets(lo) {
				continue // even the sparsest model falls short
			}
			hiD, loD := 1.0, step
			for hiD-loD > step {
				mid := (hiD + loD) / 2
				c, err := eval(mid, keep, layers)
				if err != nil {
					return nil, err
				}
				if meets(c) {
					loD, lo = mid, c
				} else {
					hiD = mid
				}
			}
			if hi, err := eval(1, keep, layers); err != nil {
				return nil, err
			} else if meets(hi) {
				lo = hi
			}
			if best == nil || lo.cost() < best.cost() {
				best = &lo
			}
		}
	}
	if best == nil {
		got := fmt.Sprintf("%.2f× fewer FLOPs", most.flops)
		if t.Speedup > 0 {
			got = fmt.Sprintf("a %.2f× speed-up", most.speedup)
		}
		return nil, fmt.Errorf("no density and token keep rate reach %s on this model: the most is %s (density %g, keep %g after blocks %v)",
			t.String(), got, most.density, most.keep, most.layers)
	}
	_, dens := PlannedConfig(cfg, t.Block, best.density, best.keep, best.layers)
	p := &PrunePlan{Target: t.String(), TargetFLOPs: t.FLOPs, TargetSpeedup: t.Speedup, Density: best.density, TokenKeep: best.keep, TokenLayers: best.cfg.TokenLayers,
		FLOPsReduction: best.flops, Speedup: best.speedup, Cycles: best.cycles, CyclesDense: refCycles, Candidates: n,
		KindDensity: map[string]float64{"qkv": round3(dens(0, "attn.qkv")), "proj": round3(dens(0, "attn.proj")),
			"mlp": round3(float64(best.cfg.HiddenAt(0)) / float64(cfg.Hidden()))}}
	if t.Speedup > 0 {
		p.HW, p.Batch = t.HW.Name, max(t.Batch, 1)
		if p.Batch > 1 {
			before, err := structureCycles(ref, t.Block, 1, t.HW, 1)
			if err != nil {
				return nil, err
			}
			after, err := structureCycles(best.cfg, t.Block, best.density, t.HW, 1)
			if err != nil {
				return nil, err
			}
			p.SpeedupLatency = float64(before) / float64(after)
		}
	}
	if p.TokenLayers == nil {
		p.TokenKeep = 1
	}
	for i := 0; i < cfg.Depth; i++ {
		_, m := best.cfg.TokensAt(i)
		p.TokensPerLayer = append(p.TokensPerLayer, m)
	}
	return p, nil
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }

func (t Target) String() string {
	if t.Speedup > 0 {
		return fmt.Sprintf("a %g× modelled speed-up on %s", t.Speedup, t.HW.Name)
	}
	return fmt.Sprintf("%g× fewer FLOPs", t.FLOPs)
}

func (t Target) validate(cfg vit.Config) error {
	switch {
	case (t.FLOPs > 0) == (t.Speedup > 0):
		return errors.New("pruning target: set exactly one of the FLOPs reduction and the speed-up")
	case t.FLOPs > 0 && !(t.FLOPs >= 1 && !math.IsInf(t.FLOPs, 0)), t.Speedup > 0 && !(t.Speedup >= 1 && !math.IsInf(t.Speedup, 0)):
		return fmt.Errorf("pruning target %s: want a finite factor of at least 1", t.String())
	case t.Block <= 0 || cfg.HeadDim()%t.Block != 0:
		return fmt.Errorf("pruning target: block size %d must divide the head dimension %d", t.Block, cfg.HeadDim())
	case cfg.LayerHeads != nil || cfg.LayerHidden != nil || len(cfg.TokenLayers) > 0:
		return errors.New("pruning target: plan from the dense model, not a pruned one")
	}
	if t.Speedup > 0 {
		if err := t.HW.Validate(); err != nil {
			return err
		}
	}
	for _, l := range t.LayerSets {
		c := cfg
		c.TokenKeep, c.TokenLayers = 0.5, l
		if len(l) == 0 {
			return errors.New("pruning target: an empty set of token pruning layers")
		}
		if err := c.Validate(); err != nil {
			return fmt.Errorf("pruning target: %w", err)
		}
	}
	return nil
}

// layerSets are the token pruning layers tried: the given ones, else the
// FCCM'24 positions scaled to the depth and the same positions one block
// earlier (more token work removed, at more accuracy risk).
func (t Target) layerSets(cfg vit.Config) [][]int {
	if t.LayerSets != nil {
		return t.LayerSets
	}
	def := tokenprune.Layers(cfg.Depth)
	sets := [][]int{def}
	var early []int
	for _, l := range def {
		l = max(l-1, 0)
		if len(early) == 0 || l > early[len(early)-1] {
			early = append(early, l)
		}
	}
	if fmt.Sprint(early) != fmt.Sprint(def) {
		sets = append(sets, early)
	}
	return sets
}

// structureCycles is the cycle model's count for a model of cfg's
// structure with a density fraction of the qkv and proj blocks kept (side
// block, chosen at random, seeded). The cycle model depends only on
// structure (shapes, stored tiles, token counts), so random weights give
// the trained model's count.
func structureCycles(cfg vit.Config, block int, density float64, h hw.Config, batch int) (int64, error) {
	m, err := vit.New(cfg, 1)
	if err != nil {
		return 0, err
	}
	if density < 1 {
		rng := rand.New(rand.NewSource(1))
		for _, p := range m.Params.List() {
			if !strings.HasSuffix(p.Name, "attn.qkv.weight") && !strings.HasSuffix(p.Name, "attn.proj.weight") {
				continue
			}
			out, in := p.Shape[0], p.Shape[1] // (out, in)
			rows, cols := out/block, in/block
			for _, bl := range rng.Perm(rows * cols)[keptCount(density, rows*cols):] {
				r, c := bl/cols, bl%cols
				for i := r * block; i < (r+1)*block; i++ {
					clear(p.Data[i*in+c*block : i*in+(c+1)*block])
				}
			}
		}
	}
	return ModelledCycles(m, h, batch)
}

// ModelledCycles compiles m for h (calibrated on random images: the
// cycles do not depend on the values) with the weights resident across a
// batch of this many images (0 or 1: reloaded per image), and runs the cycle
// model: the cycles per image, over the batch (sim.Amortise).
func ModelledCycles(m *vit.Model, h hw.Config, batch int) (int64, error) {
	chw := m.Channels * m.Image * m.Image
	rng := rand.New(rand.NewSource(2))
	imgs := make([]float32, 3*chw)
	for i := range imgs {
		imgs[i] = float32(rng.NormFloat64())
	}
	qm, err := export.Quantize(m, imgs, 2)
	if err != nil {
		return 0, err
	}
	cp, err := export.CompileWith(qm, h, export.CompileOptions{Batch: batch})
	if err != nil {
		return 0, err
	}
	r, err := sim.NewRunner(cp.SimProgram(h))
	if err != nil {
		return 0, err
	}
	in := qm.QuantizeInput(imgs[2*chw:])
	_, first, err := r.Run(in)
	if err != nil || cp.Batch <= 1 {
		return first.Cycles, err
	}
	_, steady, err := r.Run(in)
	if err != nil {
		return 0, err
	}
	return sim.Amortise(h, first, steady, cp.Batch).Cycles, nil
}
