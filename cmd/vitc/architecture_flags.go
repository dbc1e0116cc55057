package main

import (
	"strings"

	"github.com/spf13/pflag"

	"vitc/vit"
)

// architectureFlags pick a model: a preset and the overrides of its
// architecture, shared by the commands that build a model from scratch.
type architectureFlags struct {
	Model, Attention         string
	Patch, Dim, Depth, Heads int
	MLPRatio                 float64
}

func (a *architectureFlags) bind(f *pflag.FlagSet) {
	f.StringVar(&a.Model, "model", "micro", "model preset: "+strings.Join(vit.PresetNames(), ", "))
	f.StringVar(&a.Attention, "attention", "", "attention kind: softmax or taylor (default: the preset's)")
	f.IntVar(&a.Patch, "patch", 0, "patch size (default: the preset's)")
	f.IntVar(&a.Dim, "dim", 0, "embedding width (default: the preset's)")
	f.IntVar(&a.Depth, "depth", 0, "number of blocks (default: the preset's)")
	f.IntVar(&a.Heads, "heads", 0, "attention heads (default: the preset's)")
	f.Float64Var(&a.MLPRatio, "mlp-ratio", 0, "MLP width / dim (default: the preset's)")
}

func (a *architectureFlags) overrides() vit.Overrides {
	return vit.Overrides{Patch: a.Patch, Dim: a.Dim, Depth: a.Depth, Heads: a.Heads, MLPRatio: a.MLPRatio, Attention: a.Attention}
}
