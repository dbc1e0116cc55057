// Package pipeline is the one place where vitc's techniques are wired into
// a training run. A Spec says what a run is (the loop's options and a Plan
// of techniques); New builds it into a Job (checking a distillation teacher
// first), Job.Train runs it and writes the run directory, and Open(dir)
// rebuilds a saved one to resume. The CLI maps flags to a Spec and calls
// one function. Adding a technique touches its own package and
// components() in build.go (docs/architecture.md).
package pipeline

import (
	"fmt"

	"vitc/blockprune"
	"vitc/export/hw"
	"vitc/internal/jsonkeys"
	"vitc/taylorattn"
	"vitc/tokenprune"
	"vitc/vit"
	"vitc/vit/training"
)

// Kinds of run.
const (
	KindTrain = "train" // train or fine-tune; the model is written every epoch
	KindPrune = "prune" // block and token pruning under distillation; the compacted model is written at the end
)

// Spec is a whole run: the loop's options and the techniques plugged in.
type Spec struct {
	Train training.Options
	Plan  Plan
}

// Plan is which techniques a run uses, with their options. It is saved
// with the run's state, so a resumed run is rebuilt from it exactly.
type Plan struct {
	Kind string `json:"kind"`
	// Init is the checkpoint the weights start from ("": initialised from
	// the seed).
	Init string `json:"init,omitempty"`
	// InitWith says how Init is read and adapted to the data (fine-tuning a
	// published checkpoint). It is not saved: a resumed run takes its
	// model from the saved state.
	InitWith vit.InitOptions `json:"-"`
	// Sparse is Taylor attention's sparse training branch (Weight 0: off).
	Sparse taylorattn.SparseOptions `json:"sparse"`
	// Distill, when set, replaces cross-entropy by distillation from a
	// frozen teacher.
	Distill *Distill `json:"distill,omitempty"`
	// Prune, when set, prunes weight blocks and tokens (KindPrune).
	Prune *Prune `json:"prune,omitempty"`
}

// UnmarshalJSON also reads plans saved before the block and token
// schedules had json tags (their keys were the Go field names).
func (p *Plan) UnmarshalJSON(b []byte) error {
	type plain Plan
	return jsonkeys.UnmarshalLegacy(b, (*plain)(p))
}

// Distill configures knowledge distillation.
type Distill struct {
	Teacher     string  `json:"teacher"` // checkpoint path
	Alpha       float64 `json:"alpha"`
	Temperature float64 `json:"temperature"`
	// Read is how the teacher file is read (a file without vitc metadata:
	// its heads, eps and normalisation), the same way as the run's other
	// checkpoints; saved so a resumed run reads it the same way.
	Read vit.LoadOptions `json:"read,omitzero"`
	// AllowWeakTeacher distils from a teacher that fails the check before
	// training (near chance on the test split, or far below the accuracy
	// its checkpoint records there).
	AllowWeakTeacher bool `json:"allow_weak_teacher,omitempty"`
}

// Prune configures the pruning stage. The token-pruning layers and the
// target keep rate live in the model's config (TokenLayers, TokenKeep).
type Prune struct {
	Blocks blockprune.Options  `json:"blocks"`
	Tokens tokenprune.Schedule `json:"tokens"`
	// MaxDrop is the accuracy drop in points beyond which the run fails
	// its gate (negative: no gate).
	MaxDrop float64 `json:"max_drop"`
	// Target is the plan a pruning target chose Blocks.Density, the keep
	// rate and the token layers by (nil: set by hand).
	Target *PrunePlan `json:"target,omitempty"`
	// HW is the accelerator the report's modelled speed-up is for (nil:
	// vitc's default).
	HW *hw.Config `json:"hw,omitempty"`
	// HWBatch is the throughput setting of the report's modelled speed-up
	// (Target.Batch; 0 or 1: the latency, one image at a time). The
	// report gives the latency figures as well.
	HWBatch int `json:"hw_batch,omitempty"`
	// Int8WeightsFrom, when positive, trains from this fraction of the
	// steps on through the exporter's int8 weight rounding and writes the
	// pruned model's weights on that grid (weightquant); 0: off.
	Int8WeightsFrom float64 `json:"int8_weights_from,omitempty"`
}

// Validate reports a plan that cannot be built, naming the option.
func (p Plan) Validate() error {
	switch p.Kind {
	case KindTrain:
		if p.Prune != nil {
			return fmt.Errorf("a %s run takes no pruning options", p.Kind)
		}
	case KindPrune:
		if p.Prune == nil || p.Distill == nil {
			return fmt.Errorf("a %s run needs pruning options and a teacher", p.Kind)
		}
	default:
		return fmt.Errorf("unknown kind of run %q", p.Kind)
	}
	if pr := p.Prune; pr != nil && !(pr.Int8WeightsFrom >= 0 && pr.Int8WeightsFrom < 1) {
		return fmt.Errorf("int8 weights from %g of the steps: want a fraction in [0, 1)", pr.Int8WeightsFrom)
	}
	if p.Sparse.Weight != 0 {
		if err := p.Sparse.Validate(); err != nil {
			return err
		}
	}
	return nil
}
