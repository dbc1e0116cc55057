package taylorattn

import (
	"encoding/json"
	"fmt"
	"math"

	"vitc/autograd"
)

// SparseOptions configure the sparse branch.
type SparseOptions struct {
	Weight    float64 `json:"weight"`    // α at the start; 0 turns the branch off
	Threshold float64 `json:"threshold"` // θ on the predicted attention
	Reg       float64 `json:"reg"`       // λ on mean|S|
	Anneal    float64 `json:"anneal"`    // final fraction of training over which α falls to 0
	// Formulation is what S is: FormulationVitc ("" too, as runs saved
	// before there was a choice) or FormulationViTALiTy.
	Formulation string `json:"formulation,omitempty"`
}

// DefaultSparse are the sparse branch's settings when it is turned on. α = 0.3
// was the best of 0, 0.3 and 1 on the embedded set with a 10-epoch budget
// (97.0 %, 97.5 % and 90.4 % against softmax's 99.0 %; see README). α = 1
// trains against nearly softmax attention but is evaluated on the low-rank
// part alone. On real data α = 0.3 cost points and time (docs/recipes.md), so
// `vitc train`'s recipes set Weight 0: plain Taylor training.
var DefaultSparse = SparseOptions{Weight: 0.3, Threshold: 0.002, Reg: 0.1, Anneal: 0.3}

// Validate checks the options' ranges.
func (o SparseOptions) Validate() error {
	switch {
	case o.Weight < 0:
		return fmt.Errorf("sparse branch weight %g must be ≥ 0", o.Weight)
	case o.Threshold < 0 || o.Threshold >= 1:
		return fmt.Errorf("sparse branch threshold %g must be in [0, 1)", o.Threshold)
	case o.Reg < 0:
		return fmt.Errorf("sparse branch regulariser weight %g must be ≥ 0", o.Reg)
	case o.Anneal < 0 || o.Anneal > 1:
		return fmt.Errorf("sparse branch anneal fraction %g must be in [0, 1]", o.Anneal)
	}
	return checkFormulation(o.Formulation)
}

// Sparse runs the correction in every layer during training. It plugs into
// a training run at four points: the model's attention (Attention adds α·S·V
// to each layer's output), the loss (λ·mean over layers of mean|S|), the
// schedule (α annealing) and the epoch's metrics; its epoch sums are its
// saved state.
type Sparse struct {
	opts  SparseOptions
	alpha float64
	regs  []*autograd.Tensor // this step's mean|S| per layer
	// sums over the epoch, per layer, for metrics.jsonl
	density, reg []float64
	steps        int
}

// NewSparse prepares the branch for a model of depth layers.
func NewSparse(o SparseOptions, depth int) *Sparse {
	return &Sparse{opts: o, alpha: o.Weight, regs: make([]*autograd.Tensor, depth),
		density: make([]float64, depth), reg: make([]float64, depth)}
}

// Alpha is the current weight of the correction.
func (s *Sparse) Alpha() float64 { return s.alpha }

// Active reports whether the branch runs this step.
func (s *Sparse) Active() bool { return s.alpha > 0 }

// Attention adds α·S·V to a layer's low-rank output while training (a
// vit.AttentionHook); an inference pass is left alone.
func (s *Sparse) Attention(tp *autograd.Tape, layer int, qkv *autograd.Tensor, heads int, res autograd.AttentionResult) autograd.AttentionResult {
	if !tp.Grad() || !s.Active() {
		return res
	}
	extra, absMean, density := Correction(tp, qkv, heads, s.opts.Formulation, float32(s.alpha), float32(s.opts.Threshold))
	s.regs[layer] = absMean
	s.density[layer] += density
	s.reg[layer] += float64(absMean.Data[0])
	if layer == len(s.regs)-1 {
		s.steps++
	}
	res.Out = autograd.Add(tp, res.Out, extra)
	return res
}

// BeforeStep holds α until the final Anneal fraction of training, then
// lowers it linearly to 0 at the last step.
func (s *Sparse) BeforeStep(step, total int) {
	clear(s.regs)
	start := float64(total) * (1 - s.opts.Anneal)
	switch {
	case float64(step) < start:
		s.alpha = s.opts.Weight
	default:
		span := float64(total) - start
		s.alpha = s.opts.Weight * math.Max(0, 1-(float64(step)-start+1)/span)
	}
}

// Name identifies the component in metrics and saved state.
func (s *Sparse) Name() string { return "taylor_sparse" }

// sparseState is what a resumed run needs to report the same epoch sums.
type sparseState struct {
	Alpha   float64   `json:"alpha"`
	Density []float64 `json:"density"`
	Reg     []float64 `json:"reg"`
	Steps   int       `json:"steps"`
}

// MarshalState saves α and the epoch's running sums.
func (s *Sparse) MarshalState() ([]byte, error) {
	return json.Marshal(sparseState{Alpha: s.alpha, Density: s.density, Reg: s.reg, Steps: s.steps})
}

// UnmarshalState restores what MarshalState saved.
func (s *Sparse) UnmarshalState(b []byte) error {
	var st sparseState
	if err := json.Unmarshal(b, &st); err != nil {
		return err
	}
	if len(st.Density) != len(s.density) || len(st.Reg) != len(s.reg) {
		return fmt.Errorf("saved for %d layers, the model has %d", len(st.Density), len(s.density))
	}
	s.alpha, s.steps = st.Alpha, st.Steps
	copy(s.density, st.Density)
	copy(s.reg, st.Reg)
	return nil
}

// Loss is λ times the mean over layers of mean|S|, or nil when inactive.
func (s *Sparse) Loss(tp *autograd.Tape) *autograd.Tensor {
	if s.opts.Reg == 0 || s.regs[0] == nil {
		return nil
	}
	w := make([]float32, len(s.regs))
	for i := range w {
		w[i] = float32(s.opts.Reg / float64(len(s.regs)))
	}
	return autograd.WeightedSum(tp, s.regs, w)
}

// EpochMetrics reports per-layer mask density and mean|S| averaged over the
// epoch's steps, and the current α; it resets the sums.
func (s *Sparse) EpochMetrics() map[string]any {
	dens := make([]float64, len(s.density))
	reg := make([]float64, len(s.reg))
	if s.steps > 0 {
		for i := range dens {
			dens[i] = s.density[i] / float64(s.steps)
			reg[i] = s.reg[i] / float64(s.steps)
		}
	}
	clear(s.density)
	clear(s.reg)
	s.steps = 0
	return map[string]any{"sparse_alpha": s.alpha, "sparse_mask_density": dens, "sparse_abs_mean": reg}
}
