package vit

import (
	"fmt"

	"vitc/datasets"
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
