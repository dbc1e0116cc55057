package vit

import (
	"fmt"

	"vitc/datasets"
	"vitc/taylorattn"
)

// Overrides change a preset's architecture; zero values keep the preset's.
type Overrides struct {
	Patch, Dim, Depth, Heads int
	MLPRatio                 float64
	Attention                string
}

// ConfigFor resolves the architecture for training on ds: the preset, with
// image size, channels and classes taken from the data, then the overrides.
func ConfigFor(preset string, ds *datasets.Dataset, o Overrides) (Config, error) {
	cfg, err := Preset(preset)
	if err != nil {
		return Config{}, err
	}
	if ds.H != ds.W {
		return Config{}, fmt.Errorf("images are %dx%d: vitc models take square images", ds.H, ds.W)
	}
	cfg.Image, cfg.Channels, cfg.Classes = ds.H, ds.C, len(ds.Classes)
	if cfg.Image%cfg.Patch != 0 && o.Patch == 0 {
		// A preset's patch rarely divides another dataset's image size;
		// fall back to the largest divisor not above it.
		for p := cfg.Patch; p >= 1; p-- {
			if cfg.Image%p == 0 {
				cfg.Patch = p
				break
			}
		}
	}
	cfg = o.Apply(cfg)
	return cfg, cfg.Validate()
}

// Apply returns cfg with every non-zero override set.
func (o Overrides) Apply(cfg Config) Config {
	set := func(dst *int, v int) {
		if v != 0 {
			*dst = v
		}
	}
	set(&cfg.Patch, o.Patch)
	set(&cfg.Dim, o.Dim)
	set(&cfg.Depth, o.Depth)
	set(&cfg.Heads, o.Heads)
	if o.MLPRatio != 0 {
		cfg.MLPRatio = o.MLPRatio
	}
	if o.Attention != "" {
		cfg.Attention = o.Attention
	}
	return cfg
}

// NewRun prepares a fresh run on ds: a model seeded from opts.Seed (or
// initialised from opts.Init) and normalisation statistics from the
// training split, recorded in the checkpoint's metadata.
func NewRun(opts TrainOptions, ds *datasets.Dataset) (*Run, error) {
	if opts.Epochs <= 0 || opts.Batch <= 0 {
		return nil, fmt.Errorf("epochs (%d) and batch (%d) must be positive", opts.Epochs, opts.Batch)
	}
	if opts.SkipNonFinite < 0 {
		return nil, fmt.Errorf("--skip-nonfinite (%d) must not be negative", opts.SkipNonFinite)
	}
	if ds.Train.Len() == 0 || ds.Test.Len() == 0 {
		return nil, fmt.Errorf("data %q has an empty train or test split", opts.Data)
	}
	m, err := New(opts.Config, opts.Seed)
	if err != nil {
		return nil, err
	}
	if opts.InitScheme != "" && opts.InitScheme != InitTimm { // New's is timm's
		if err := m.Reinit(opts.InitScheme, opts.Seed); err != nil {
			return nil, err
		}
	}
	if opts.Init != "" {
		if err := m.LoadWeightsFrom(opts.Init); err != nil {
			return nil, err
		}
	}
	stats := datasets.ComputeStats(ds)
	meta := Meta{Dataset: opts.Data, NormMean: stats.Mean, NormStd: stats.Std, ClassNames: ds.Classes}
	r := &Run{Opts: opts, Model: m, Meta: meta, Data: ds}
	return r, r.attachSparse()
}

// attachSparse adds Taylor attention's sparse training branch when the
// options ask for it: as the model's attention hook, a loss term and a
// schedule hook.
func (r *Run) attachSparse() error {
	if r.Model.Attention != "taylor" || r.Opts.Sparse.Weight == 0 {
		return nil
	}
	if err := r.Opts.Sparse.Validate(); err != nil {
		return err
	}
	sp := taylorattn.NewSparse(r.Opts.Sparse, r.Model.Depth)
	r.Model.AttentionHook = sp.Apply
	r.Terms = append(r.Terms, sp)
	r.Hooks = append(r.Hooks, sp)
	return nil
}

// ResumeRun rebuilds a run from a saved state with the same data.
func ResumeRun(rp *ResumePoint) (*Run, error) {
	ds, err := datasets.Load(rp.State.Opts.Data, rp.State.Opts.Seed)
	if err != nil {
		return nil, err
	}
	r := &Run{Opts: rp.State.Opts, Model: rp.Model, Meta: rp.Meta, Data: ds}
	r.Resume(rp.State, rp.Optimizer)
	return r, r.attachSparse()
}
