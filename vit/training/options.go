package training

import (
	"encoding/json"
	"fmt"
	"math"
	"path"
	"strings"
	"time"

	"vitc/datasets"
	"vitc/internal/jsonkeys"
	"vitc/vit"
)

// Options are the loop's settings. They are saved with the run's state, so
// a resumed run repeats them exactly. What techniques add is not here: each
// component carries its own options (see vitc/vit/pipeline).
type Options struct {
	// Recipe names the recipe the settings came from (informational: the
	// fields below are what the run uses).
	Recipe         string     `json:"recipe,omitempty"`
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
	// AugmentShift is the augmentation's largest shift in pixels
	// (datasets.LoaderOptions.Shift: 0 is H/8, negative none).
	AugmentShift int `json:"augment_shift,omitempty"`
	// AugmentCropScale, when positive, augments by random-resized crops
	// with area fractions in [AugmentCropScale, 1] instead of shifts.
	AugmentCropScale float64 `json:"augment_crop_scale,omitempty"`
	Seed             int64   `json:"seed"`
	// InitScheme initialises a fresh model: vit.InitTorch or vit.InitTimm
	// ("", as in states saved before the option, is timm's).
	InitScheme string `json:"init_scheme,omitempty"`
	// DataOptions resize and split the data (saved so a resumed run reads
	// the same images).
	DataOptions datasets.Options `json:"data_options,omitzero"`
	// LayerDecay, in (0, 1), scales each layer's learning rate by
	// LayerDecay^(depth+1−layer), timm's layer-wise decay for fine-tuning:
	// the head trains at the full rate, the embedding at the smallest (0:
	// off).
	LayerDecay float64 `json:"layer_decay,omitempty"`
	// Freeze lists parameter-name patterns (path.Match syntax, e.g.
	// "blocks.[0-3].*") whose parameters do not train; LinearProbe freezes
	// all but the head.
	Freeze      []string `json:"freeze,omitempty"`
	LinearProbe bool     `json:"linear_probe,omitempty"`
	// CheckpointEvery saves resumable state this often inside an epoch, so
	// a killed run loses at most this much work (0: only at epoch ends).
	// JSON has it in seconds, checkpoint_every_s (MarshalJSON).
	CheckpointEvery time.Duration `json:"-"`
	// Engine names what runs the forward and backward passes ("native",
	// as "" in states saved before the option, or "gorgonia"); saved so a
	// resumed run keeps it. The pipeline turns it into Run.Engine.
	Engine string `json:"engine,omitempty"`
	// SkipNonFinite is how many batches with a non-finite loss or gradient
	// the run may skip (no update) before it stops; 0 stops at the first.
	SkipNonFinite int `json:"skip_nonfinite,omitempty"`
	// Recompute runs each block again in the backward pass instead of
	// keeping its activations (vit.Pass.Recompute): less memory, about
	// one more forward pass of time, and the same results bit for bit.
	// The native engine only.
	Recompute bool `json:"recompute,omitempty"`
	// MaxSteps, when positive, ends each epoch after that many batches, as
	// if the training split were that long: for measuring a run's memory
	// and speed on a large set in a few minutes, not for training.
	MaxSteps int `json:"max_steps_per_epoch,omitempty"`
}

// MarshalJSON writes the options with CheckpointEvery in seconds, as
// checkpoint_every_s: encoding/json would write a time.Duration in
// nanoseconds.
func (o Options) MarshalJSON() ([]byte, error) {
	type plain Options
	return json.Marshal(struct {
		plain
		CheckpointEvery float64 `json:"checkpoint_every_s"`
	}{plain(o), o.CheckpointEvery.Seconds()})
}

// UnmarshalJSON reads what MarshalJSON writes, and the options of states
// saved before: checkpoint_every in nanoseconds, and the data options
// under their Go field names.
func (o *Options) UnmarshalJSON(b []byte) error {
	type plain Options
	var v struct {
		plain
		Seconds *float64 `json:"checkpoint_every_s"`
		Nanos   *int64   `json:"checkpoint_every"`
	}
	if err := jsonkeys.UnmarshalLegacy(b, &v); err != nil {
		return err
	}
	*o = Options(v.plain)
	switch {
	case v.Seconds != nil:
		o.CheckpointEvery = time.Duration(math.Round(*v.Seconds * float64(time.Second)))
	case v.Nanos != nil:
		o.CheckpointEvery = time.Duration(*v.Nanos)
	}
	return nil
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
	case !(o.AugmentCropScale >= 0 && o.AugmentCropScale <= 1):
		return fmt.Errorf("crop scale %g must be in [0, 1] (0: shift augmentation)", o.AugmentCropScale)
	case !(o.LayerDecay >= 0 && o.LayerDecay <= 1):
		return fmt.Errorf("layer decay %g must be in [0, 1] (0: off)", o.LayerDecay)
	case o.MaxSteps < 0:
		return fmt.Errorf("steps per epoch (%d) must not be negative", o.MaxSteps)
	case o.Recompute && o.Engine != "" && o.Engine != "native":
		return fmt.Errorf("recomputation runs on the native engine only, not %s", o.Engine)
	}
	for _, f := range o.Freeze {
		if _, err := path.Match(f, ""); err != nil {
			return fmt.Errorf("freeze pattern %q: %v", f, err)
		}
	}
	return nil
}

// ParamGroups sets each parameter's learning-rate scale from the options:
// layer-wise decay, then freezing. It returns how many values stay
// trainable, and refuses a freeze pattern that matches nothing (a typo
// would otherwise train everything) or a run with nothing left to train.
func ParamGroups(m *vit.Model, o Options) (trainable int, err error) {
	ps := m.Params.List()
	if o.LayerDecay > 0 && o.LayerDecay < 1 {
		top := m.Depth + 1
		for _, p := range ps {
			p.LRScale = math.Pow(o.LayerDecay, float64(top-m.LayerID(p.Name)))
		}
	}
	for _, f := range o.Freeze {
		hit := false
		for _, p := range ps {
			if ok, _ := path.Match(f, p.Name); ok {
				p.Freeze()
				hit = true
			}
		}
		if !hit {
			return 0, fmt.Errorf("freeze pattern %q matches no parameter", f)
		}
	}
	if o.LinearProbe {
		for _, p := range ps {
			if !strings.HasPrefix(p.Name, "head.") {
				p.Freeze()
			}
		}
	}
	for _, p := range ps {
		if p.LRScale != 0 {
			trainable += p.Len()
		}
	}
	if trainable == 0 {
		return 0, fmt.Errorf("every parameter is frozen: nothing to train")
	}
	return trainable, nil
}
