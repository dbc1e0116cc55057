// Package vit is the DeiT/timm Vision Transformer: configuration and presets,
// the model built on autograd, timm-compatible checkpoints, evaluation and
// the training loop every vitc technique plugs into.
package vit

import (
	"fmt"
	"sort"
	"strings"
)

// Config fixes a ViT architecture. JSON names are the checkpoint metadata
// keys that tools outside Go (tools/torchref) read too.
type Config struct {
	Image     int     `json:"image"`
	Channels  int     `json:"channels"`
	Patch     int     `json:"patch"`
	Dim       int     `json:"dim"`
	Depth     int     `json:"depth"`
	Heads     int     `json:"heads"`
	MLPRatio  float64 `json:"mlp_ratio"`
	Classes   int     `json:"classes"`
	Attention string  `json:"attention"`
}

var presets = map[string]Config{
	"micro":      {Image: 28, Channels: 1, Patch: 4, Dim: 64, Depth: 4, Heads: 4, MLPRatio: 2, Classes: 10, Attention: "softmax"},
	"deit-tiny":  {Image: 224, Channels: 3, Patch: 16, Dim: 192, Depth: 12, Heads: 3, MLPRatio: 4, Classes: 1000, Attention: "softmax"},
	"deit-small": {Image: 224, Channels: 3, Patch: 16, Dim: 384, Depth: 12, Heads: 6, MLPRatio: 4, Classes: 1000, Attention: "softmax"},
}

// PresetNames lists the presets in a stable order.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Preset returns a named configuration.
func Preset(name string) (Config, error) {
	c, ok := presets[name]
	if !ok {
		return Config{}, fmt.Errorf("unknown model preset %q (want %s)", name, strings.Join(PresetNames(), ", "))
	}
	return c, nil
}

// Attention kinds a model can use.
var attentionKinds = []string{"softmax", "taylor"}

// Validate reports the first inconsistency in c.
func (c Config) Validate() error {
	switch {
	case c.Image <= 0 || c.Channels <= 0 || c.Patch <= 0 || c.Dim <= 0 || c.Depth <= 0 || c.Heads <= 0 || c.Classes <= 0:
		return fmt.Errorf("model config %+v: every size must be positive", c)
	case c.Image%c.Patch != 0:
		return fmt.Errorf("patch size %d does not divide image size %d", c.Patch, c.Image)
	case c.Dim%c.Heads != 0:
		return fmt.Errorf("%d heads do not divide dim %d", c.Heads, c.Dim)
	case c.MLPRatio <= 0 || c.Hidden() <= 0:
		return fmt.Errorf("mlp ratio %g gives no hidden units", c.MLPRatio)
	}
	for _, k := range attentionKinds {
		if c.Attention == k {
			return nil
		}
	}
	return fmt.Errorf("unknown attention kind %q (want %s)", c.Attention, strings.Join(attentionKinds, " or "))
}

// Patches is the number of patch tokens; Tokens adds the cls token.
func (c Config) Patches() int { return (c.Image / c.Patch) * (c.Image / c.Patch) }

// Tokens is the sequence length including the cls token.
func (c Config) Tokens() int { return c.Patches() + 1 }

// HeadDim is the per-head width.
func (c Config) HeadDim() int { return c.Dim / c.Heads }

// Hidden is the MLP width, int(dim·ratio) as timm.
func (c Config) Hidden() int { return int(float64(c.Dim) * c.MLPRatio) }
