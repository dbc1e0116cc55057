// Package blockprune is hardware-aware static weight pruning for a ViT
// (the FCCM'24 design, after "Block Pruning for Faster Transformers"): a
// learnable score per b×b block of each attention matrix and per MLP
// neuron, a top-k binarizer with straight-through gradients to the scores,
// a cubic density schedule, and the final compaction that removes dead
// heads and pruned neurons from the stored weights.
//
// Blocks of attn.qkv stay inside one head's rows; blocks of attn.proj run
// over its input columns, so a head's output columns can vanish. A head is
// dead when all its qkv blocks are pruned (its output is then the constant
// value bias, which compaction folds into attn.proj's bias) or all its proj
// columns are (its output is unused). MLP neurons are fc1 rows together
// with the matching fc2 columns.
package blockprune

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"vitc/autograd"
	"vitc/vit"
)

// Options configure block pruning.
type Options struct {
	Block   int     `json:"block"`   // block side b; must divide the head dimension
	Density float64 `json:"density"` // target fraction of blocks (and of MLP neurons) kept
	// Warmup and Ramp are fractions of the training steps: density stays 1
	// during the warm-up, then falls along a cubic to Density over the ramp,
	// and holds.
	Warmup float64 `json:"warmup"`
	Ramp   float64 `json:"ramp"`
}

// DefaultOptions are `vitc prune`'s defaults.
var DefaultOptions = Options{Block: 16, Density: 0.5, Warmup: 0.1, Ramp: 0.6}

// Validate checks the options against a model config.
func (o Options) Validate(c vit.Config) error {
	switch {
	case o.Block <= 0 || c.HeadDim()%o.Block != 0:
		return fmt.Errorf("block size %d must divide the head dimension %d (dim %d / %d heads)", o.Block, c.HeadDim(), c.Dim, c.Heads)
	case !(o.Density > 0 && o.Density <= 1):
		return fmt.Errorf("density %g must be in (0, 1]", o.Density)
	case o.Warmup < 0 || o.Ramp < 0 || o.Warmup+o.Ramp > 1:
		return fmt.Errorf("density schedule warm-up %g and ramp %g must be fractions adding up to at most 1", o.Warmup, o.Ramp)
	case c.LayerHeads != nil || c.LayerHidden != nil:
		return fmt.Errorf("the model is already compacted: prune its dense teacher instead")
	}
	return nil
}

// DensityAt is the cubic schedule: 1 during the warm-up, then
// target + (1−target)·(1−t)³ as t runs from 0 to 1 over the ramp, then the
// target. The last step (total−1) always gets the target.
func (o Options) DensityAt(step, total int) float64 {
	if total <= 1 || step >= total-1 {
		return o.Density
	}
	f := float64(step) / float64(total-1)
	switch {
	case f < o.Warmup:
		return 1
	case o.Ramp == 0 || f >= o.Warmup+o.Ramp:
		return o.Density
	}
	t := (f - o.Warmup) / o.Ramp
	return o.Density + (1-o.Density)*math.Pow(1-t, 3)
}

// kind is what a score vector prunes.
type kind int

const (
	qkvBlocks  kind = iota // blocks of attn.qkv, inside one head's rows
	projBlocks             // blocks of attn.proj
	neurons                // fc1 rows with their fc2 columns
)

// group is one score vector and the weights it masks.
type group struct {
	name   string // the masked weight's parameter name (fc1's for neurons)
	kind   kind
	layer  int
	scores *autograd.Param // one score per block or neuron
	rows   int             // block grid rows (neurons: 1)
	cols   int             // block grid columns (neurons: hidden)
	keep   []bool          // the current mask, per block or neuron
	order  []int           // scratch for ranking the scores
	// blockOf maps each element of the masked weight(s) to its score.
	weights []*autograd.Param
	blockOf [][]int32
}

func (g *group) density() float64 {
	n := 0
	for _, k := range g.keep {
		if k {
			n++
		}
	}
	return float64(n) / float64(len(g.keep))
}

// Pruner owns the scores and masks of one model being pruned.
type Pruner struct {
	opts    Options
	model   *vit.Model
	groups  []*group
	byParam map[string][]*group // weight name → groups masking it (with index into weights)
	density float64             // the current target
	frozen  bool                // masks are final: the target is reached
	held    bool                // Hold made the current density the final one
}

// New prepares block pruning of m: it registers the score vectors as
// parameters of m (named "<weight>.block_scores", undecayed), initialised
// to each block's mean |w| so that training starts from magnitude pruning.
// In a training run the Pruner is a component: its View masks the weights
// of the training pass (vit.WeightView), its LiveHeads leaves the heads
// compaction will remove out of token pruning's ranking (vit.HeadFilter),
// BeforeStep follows the density schedule, and its masks are its saved
// state.
func New(m *vit.Model, opts Options) (*Pruner, error) {
	if err := opts.Validate(m.Config); err != nil {
		return nil, err
	}
	p := &Pruner{opts: opts, model: m, byParam: map[string][]*group{}, density: 1}
	d, b := m.Dim, opts.Block
	for i := 0; i < m.Depth; i++ {
		pre := fmt.Sprintf("blocks.%d.", i)
		qkv := mustParam(m, pre+"attn.qkv.weight")   // (3·D, D)
		proj := mustParam(m, pre+"attn.proj.weight") // (D, D)
		fc1 := mustParam(m, pre+"mlp.fc1.weight")    // (hidden, D)
		fc2 := mustParam(m, pre+"mlp.fc2.weight")    // (D, hidden)
		hidden := fc1.Shape[0]
		p.add(&group{name: qkv.Name, kind: qkvBlocks, layer: i, rows: 3 * d / b, cols: d / b,
			weights: []*autograd.Param{qkv}, blockOf: [][]int32{gridIndex(3*d, d, b, b)}})
		p.add(&group{name: proj.Name, kind: projBlocks, layer: i, rows: d / b, cols: d / b,
			weights: []*autograd.Param{proj}, blockOf: [][]int32{gridIndex(d, d, b, b)}})
		p.add(&group{name: fc1.Name, kind: neurons, layer: i, rows: 1, cols: hidden,
			weights: []*autograd.Param{fc1, fc2},
			blockOf: [][]int32{gridIndex(hidden, d, 1, d), gridIndex(d, hidden, d, 1)}})
	}
	return p, nil
}

func mustParam(m *vit.Model, name string) *autograd.Param {
	p, ok := m.Params.Get(name)
	if !ok {
		panic("blockprune: model has no " + name)
	}
	return p
}

// gridIndex maps each element of a (rows, cols) matrix to its (br, bc)
// block in row-major block order: index (r/br)·(cols/bc) + c/bc.
func gridIndex(rows, cols, br, bc int) []int32 {
	idx := make([]int32, rows*cols)
	perRow := cols / bc
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			idx[r*cols+c] = int32((r/br)*perRow + c/bc)
		}
	}
	return idx
}

func (p *Pruner) add(g *group) {
	n := g.rows * g.cols
	g.scores = p.model.Params.Add(g.name+".block_scores", n) // rank 1: no weight decay
	g.keep = make([]bool, n)
	g.order = make([]int, n)
	// Initial score: the block's mean |w| over every weight it masks.
	count := make([]int, n)
	for wi, w := range g.weights {
		for e, bl := range g.blockOf[wi] {
			g.scores.Data[bl] += float32(math.Abs(float64(w.Data[e])))
			count[bl]++
		}
	}
	for i := range g.scores.Data {
		g.scores.Data[i] /= float32(count[i])
		g.keep[i] = true
	}
	p.groups = append(p.groups, g)
	for _, w := range g.weights {
		p.byParam[w.Name] = append(p.byParam[w.Name], g)
	}
}

// BeforeStep implements vit.Hook: it sets the scheduled density and
// recomputes every mask from the current scores until the ramp ends; then
// the masks are final, so the remaining steps only recover accuracy (masks
// that keep swapping blocks never let the weights settle).
func (p *Pruner) BeforeStep(step, total int) {
	if p.held {
		return
	}
	d := p.opts.DensityAt(step, total)
	if d == p.density && d == p.opts.Density && p.frozen {
		return
	}
	p.density = d
	p.UpdateMasks()
	p.frozen = d == p.opts.Density
}

// Hold makes the current density the final one: the masks freeze now, as
// they do when the schedule reaches its target, and the remaining steps
// only recover accuracy. A closed loop calls it when the structure the
// masks leave already meets what the run is for, so that the run prunes no
// more than it needs.
func (p *Pruner) Hold() {
	p.opts.Density = p.density
	p.held, p.frozen = true, true
}

// Held reports whether Hold fixed the density.
func (p *Pruner) Held() bool { return p.held }

// Density is the density of the current masks' schedule: the scheduled
// value of the last step, or the held one.
func (p *Pruner) Density() float64 { return p.density }

// UpdateMasks keeps, in every group, the ⌈density·n⌉ highest-scoring blocks
// (ties to the lower index; at least one).
func (p *Pruner) UpdateMasks() {
	for _, g := range p.groups {
		n := len(g.keep)
		k := min(n, max(1, int(math.Ceil(p.density*float64(n)-1e-9))))
		order := g.order
		for i := range order {
			order[i] = i
		}
		s := g.scores.Data
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(s[b], s[a]) })
		clear(g.keep)
		for _, i := range order[:k] {
			g.keep[i] = true
		}
	}
}

// EpochMetrics implements vit.Hook: the current density target and the
// mean kept fraction per kind.
func (p *Pruner) EpochMetrics() map[string]any {
	sum := map[string]float64{}
	cnt := map[string]int{}
	for _, g := range p.groups {
		k := g.kindName()
		sum[k] += g.density()
		cnt[k]++
	}
	out := map[string]any{"block_density_target": p.density}
	for k, v := range sum {
		out["density_"+k] = v / float64(cnt[k])
	}
	return out
}

func (g *group) kindName() string {
	return [...]string{"qkv", "proj", "mlp"}[g.kind]
}

// Name identifies the component in metrics and saved state.
func (p *Pruner) Name() string { return "blockprune" }

// View is the masked view of a pruned weight (vit.WeightView); x is the
// weight as earlier views left it.
func (p *Pruner) View(tp *autograd.Tape, w *autograd.Param, x *autograd.Tensor) *autograd.Tensor {
	gs := p.byParam[w.Name]
	if len(gs) == 0 {
		return x
	}
	g := gs[0] // one group masks each weight
	wi := slices.Index(g.weights, w)
	return Mask(tp, x, g.scores.Tensor, g.keep, g.blockOf[wi])
}

// prunerState is what a resumed run needs beyond the scores (which are
// model parameters): the schedule's position and the masks, which are final
// once the target density is reached and no longer follow the scores.
type prunerState struct {
	Density float64  `json:"density"`
	Frozen  bool     `json:"frozen"`
	Held    bool     `json:"held,omitempty"` // Density is final (Hold)
	Masks   []string `json:"masks"`          // per group, '1' kept, '0' pruned
}

// MarshalState saves the density, whether the masks are final (and
// whether Hold made them so), and the masks.
func (p *Pruner) MarshalState() ([]byte, error) {
	st := prunerState{Density: p.density, Frozen: p.frozen, Held: p.held}
	for _, g := range p.groups {
		b := make([]byte, len(g.keep))
		for i, k := range g.keep {
			b[i] = bit(k)
		}
		st.Masks = append(st.Masks, string(b))
	}
	return json.Marshal(st)
}

// UnmarshalState restores what MarshalState saved.
func (p *Pruner) UnmarshalState(b []byte) error {
	var st prunerState
	if err := json.Unmarshal(b, &st); err != nil {
		return err
	}
	if len(st.Masks) != len(p.groups) {
		return fmt.Errorf("%d saved masks for %d pruned matrices", len(st.Masks), len(p.groups))
	}
	for gi, g := range p.groups {
		if len(st.Masks[gi]) != len(g.keep) {
			return fmt.Errorf("saved mask of %s has %d blocks, want %d", g.name, len(st.Masks[gi]), len(g.keep))
		}
		for i := range g.keep {
			g.keep[i] = st.Masks[gi][i] == '1'
		}
	}
	p.density, p.frozen, p.held = st.Density, st.Frozen, st.Held
	if p.held {
		p.opts.Density = st.Density
	}
	return nil
}

// Mask is W ⊙ M, where element e of w is kept when keep[block[e]]. The
// gradient reaches w through the mask, and the scores straight through the
// binarizer: dscore[j] += Σ_{e in block j} dY[e]·W[e] (movement pruning).
func Mask(tp *autograd.Tape, w, scores *autograd.Tensor, keep []bool, block []int32) *autograd.Tensor {
	y := tp.Output([]*autograd.Tensor{w, scores}, w.Shape...)
	for e, bl := range block {
		if keep[bl] {
			y.Data[e] = w.Data[e]
		} else {
			y.Data[e] = 0
		}
	}
	tp.Record(y, func() {
		dy := y.Grad
		if w.NeedsGrad() {
			dw := tp.GradOf(w)
			for e, bl := range block {
				if keep[bl] {
					dw[e] += dy[e]
				}
			}
		}
		if scores.NeedsGrad() {
			ds := tp.GradOf(scores)
			for e, bl := range block {
				ds[bl] += dy[e] * w.Data[e]
			}
		}
	}, w)
	return y
}

// Target is the final density: the schedule's target, or the held density.
func (p *Pruner) Target() float64 { return p.opts.Density }
