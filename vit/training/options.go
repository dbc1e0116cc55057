package training

import (
	"fmt"
	"time"

	"vitc/datasets"
	"vitc/vit"
)

// Options are the loop's settings. They are saved with the run's state, so
// a resumed run repeats them exactly. What techniques add is not here: each
// component carries its own options (see vitc/vit/pipeline).
type Options struct {
	Data           string     `json:"data"`
	Config         vit.Config `json:"config"`
	Epochs         int        `json:"epochs"`
	Batch          int        `json:"batch"`
	LR             float64    `json:"lr"`
	MinLR          float64    `json:"min_lr"`
	WeightDecay    float64    `json:"weight_decay"`
	WarmupEpochs   float64    `json:"warmup_epochs"`
	LabelSmoothing float64    `json:"label_smoothing"`
	ClipNorm       float64    `json:"clip_norm"`
	Augment        bool       `json:"augment"`
	Seed           int64      `json:"seed"`
	// DataOptions resize and split the data (saved so a resumed run reads
	// the same images).
	DataOptions datasets.Options `json:"data_options,omitzero"`
	// CheckpointEvery saves resumable state this often inside an epoch, so
	// a killed run loses at most this much work (0: only at epoch ends).
	CheckpointEvery time.Duration `json:"checkpoint_every"`
	// SkipNonFinite is how many batches with a non-finite loss or gradient
	// the run may skip (no update) before it stops; 0 stops at the first.
	SkipNonFinite int `json:"skip_nonfinite,omitempty"`
}

// Validate reports options the loop cannot run with, naming the option.
func (o Options) Validate() error {
	switch {
	case o.Epochs <= 0:
		return fmt.Errorf("epochs (%d) must be positive", o.Epochs)
	case o.Batch <= 0:
		return fmt.Errorf("batch size (%d) must be positive", o.Batch)
	case o.SkipNonFinite < 0:
		return fmt.Errorf("skip-nonfinite budget (%d) must not be negative", o.SkipNonFinite)
	case !(o.LR >= 0) || !(o.MinLR >= 0):
		return fmt.Errorf("learning rates (%g, min %g) must not be negative", o.LR, o.MinLR)
	case !(o.WarmupEpochs >= 0):
		return fmt.Errorf("warm-up (%g epochs) must not be negative", o.WarmupEpochs)
	}
	return nil
}
