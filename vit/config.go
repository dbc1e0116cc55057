// Package vit is the DeiT/timm Vision Transformer: configuration and presets,
// the model built on autograd (one definition, Define, run by executors),
// timm-compatible checkpoints and the one reader of any checkpoint (Open),
// whether data fits a model (FitData), and evaluation. The training loop is
// vit/training; the wiring of techniques into it, vit/pipeline.
package vit

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"vitc/tokenprune"
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
	// LNEps is the LayerNorm epsilon; 0 (files written before it was
	// recorded) means timm's LayerNormEps.
	LNEps float64 `json:"ln_eps,omitempty"`

	// A pruned model (`vitc prune`) records what compaction left of each
	// block and where it prunes tokens; unset, every block has Heads heads
	// and Hidden() MLP units and no token is pruned.
	LayerHeads  []int   `json:"layer_heads,omitempty"`  // heads kept per block
	LayerHidden []int   `json:"layer_hidden,omitempty"` // MLP units kept per block
	TokenKeep   float64 `json:"token_keep,omitempty"`   // patch-token keep rate at TokenLayers
	TokenLayers []int   `json:"token_layers,omitempty"` // blocks after whose attention tokens are pruned

	// A distilled DeiT (timm's dist_token, transformers' DeiT) carries a
	// second learned token after the cls token; DistHead, when it also has
	// the distillation head (head_dist), whose logits are averaged with the
	// head's at inference as DeiT does.
	DistToken bool `json:"dist_token,omitempty"`
	DistHead  bool `json:"dist_head,omitempty"`
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
	if c.LNEps < 0 || c.LNEps > 1 || math.IsNaN(c.LNEps) {
		return fmt.Errorf("LayerNorm eps %g is not in [0, 1]", c.LNEps)
	}
	if !slices.Contains(attentionKinds, c.Attention) {
		return fmt.Errorf("unknown attention kind %q (want %s)", c.Attention, strings.Join(attentionKinds, " or "))
	}
	return c.validatePruning()
}

func (c Config) validatePruning() error {
	if c.LayerHeads != nil && len(c.LayerHeads) != c.Depth || c.LayerHidden != nil && len(c.LayerHidden) != c.Depth {
		return fmt.Errorf("pruned model: %d layer_heads and %d layer_hidden entries for depth %d", len(c.LayerHeads), len(c.LayerHidden), c.Depth)
	}
	for i := 0; i < c.Depth; i++ {
		if h := c.HeadsAt(i); h < 1 || h > c.Heads {
			return fmt.Errorf("pruned model: block %d has %d heads (want 1..%d)", i, h, c.Heads)
		}
		if u := c.HiddenAt(i); u < 1 || u > c.Hidden() {
			return fmt.Errorf("pruned model: block %d has %d MLP units (want 1..%d)", i, u, c.Hidden())
		}
	}
	if c.TokenKeep < 0 || c.TokenKeep > 1 || math.IsNaN(c.TokenKeep) {
		return fmt.Errorf("token keep rate %g is not in [0, 1]", c.TokenKeep)
	}
	for i, l := range c.TokenLayers {
		if l < 0 || l >= c.Depth || i > 0 && l <= c.TokenLayers[i-1] {
			return fmt.Errorf("token pruning layers %v: want ascending block indices below %d", c.TokenLayers, c.Depth)
		}
	}
	if c.DistHead && !c.DistToken {
		return fmt.Errorf("a distillation head needs the distillation token")
	}
	if c.DistToken && c.TokenKeep > 0 && c.TokenKeep < 1 {
		return fmt.Errorf("token pruning keeps one class token: a model with a DeiT distillation token cannot prune tokens")
	}
	return nil
}

// HeadsAt is the number of heads block i has.
func (c Config) HeadsAt(i int) int {
	if c.LayerHeads != nil {
		return c.LayerHeads[i]
	}
	return c.Heads
}

// HiddenAt is the MLP width of block i.
func (c Config) HiddenAt(i int) int {
	if c.LayerHidden != nil {
		return c.LayerHidden[i]
	}
	return c.Hidden()
}

// PrunesTokens reports whether the model prunes tokens after block i.
func (c Config) PrunesTokens(i int) bool {
	return c.TokenKeep > 0 && c.TokenKeep < 1 && slices.Contains(c.TokenLayers, i)
}

// TokensAt is the number of tokens entering block i, and after its token
// pruning (the MLP's count).
func (c Config) TokensAt(i int) (in, out int) {
	n := c.Tokens()
	for l := 0; l <= i; l++ {
		in = n
		if c.PrunesTokens(l) {
			if k := tokenprune.KeepCount(n, c.TokenKeep); k < n-1 {
				n = k + 2 // cls, the kept tokens and one fused token
			}
		}
	}
	return in, n
}

// Patches is the number of patch tokens; Tokens adds the cls token (and a
// DeiT's distillation token).
func (c Config) Patches() int { return (c.Image / c.Patch) * (c.Image / c.Patch) }

// Tokens is the sequence length including the cls token and, in a
// distilled DeiT, the distillation token.
func (c Config) Tokens() int {
	if c.DistToken {
		return c.Patches() + 2
	}
	return c.Patches() + 1
}

// Eps is the LayerNorm epsilon every norm of the model uses.
func (c Config) Eps() float64 {
	if c.LNEps == 0 {
		return LayerNormEps
	}
	return c.LNEps
}

// HeadDim is the per-head width.
func (c Config) HeadDim() int { return c.Dim / c.Heads }

// Hidden is the MLP width, int(dim·ratio) as timm.
func (c Config) Hidden() int { return int(float64(c.Dim) * c.MLPRatio) }
