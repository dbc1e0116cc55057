package vit

import (
	"fmt"
	"math"
	"strings"

	"vitc/autograd"
)

// initWeights follows timm: trunc_normal(.02) for Linear weights and
// pos_embed, zero biases, unit LayerNorm gains, normal(1e-6) cls_token, and
// torch's default (kaiming-uniform) Conv2d init for the patch projection.
func (m *Model) initWeights(seed int64) {
	rng := autograd.NewRNG(seed, 0x1a17)
	for _, p := range m.Params.List() {
		switch {
		case p.Name == "cls_token" || p.Name == "dist_token":
			for i := range p.Data {
				p.Data[i] = float32(rng.Normal() * 1e-6)
			}
		case p.Name == "pos_embed":
			rng.TruncNormal(p.Data, .02)
		case p.Name == "patch_embed.proj.weight" || p.Name == "patch_embed.proj.bias":
			bound := 1 / math.Sqrt(float64(m.Channels*m.Patch*m.Patch))
			for i := range p.Data {
				p.Data[i] = float32((2*rng.Float64() - 1) * bound)
			}
		case isNormWeight(p.Name):
			for i := range p.Data {
				p.Data[i] = 1
			}
		case len(p.Shape) == 2:
			rng.TruncNormal(p.Data, .02)
		}
	}
}

// Initialisation schemes of a fresh model (TrainOptions.InitScheme).
const (
	// InitTimm is timm's: trunc_normal(.02) Linear weights, made for large
	// models on long schedules; small models learn slowly from it.
	InitTimm = "timm"
	// InitTorch is what a plain PyTorch model gets from its modules'
	// constructors: U(±1/√fan_in) Linear and Conv2d weights and biases,
	// unit LayerNorm gains, pos_embed randn·0.02 and a zero cls_token.
	InitTorch = "torch"
)

// InitSchemes lists the schemes Reinit knows.
var InitSchemes = []string{InitTorch, InitTimm}

// Reinit draws fresh weights for m under the named scheme ("" is timm's,
// what New gives), seeded.
func (m *Model) Reinit(scheme string, seed int64) error {
	switch scheme {
	case "", InitTimm:
		for _, p := range m.Params.List() {
			clear(p.Data) // initWeights leaves biases as Add made them
		}
		m.initWeights(seed)
	case InitTorch:
		m.initTorch(seed)
	default:
		return fmt.Errorf("unknown init scheme %q (want %s)", scheme, strings.Join(InitSchemes, " or "))
	}
	return nil
}

// initTorch follows torch's module defaults (kaiming_uniform(a=√5) is
// U(±1/√fan_in)), which is what the reference PyTorch loop trains from: on
// small data at few epochs it learns far faster than timm's init.
func (m *Model) initTorch(seed int64) {
	rng := autograd.NewRNG(seed, 0x7a4c)
	uniform := func(x []float32, fanIn int) {
		bound := 1 / math.Sqrt(float64(fanIn))
		for i := range x {
			x[i] = float32((2*rng.Float64() - 1) * bound)
		}
	}
	ps := m.Params
	for _, p := range ps.List() {
		switch {
		case p.Name == "cls_token":
			clear(p.Data)
		case p.Name == "pos_embed":
			for i := range p.Data {
				p.Data[i] = float32(rng.Normal() * .02)
			}
		case isNormWeight(p.Name):
			for i := range p.Data {
				p.Data[i] = 1
			}
		case isNormBias(p.Name):
			clear(p.Data)
		case strings.HasSuffix(p.Name, ".weight"): // Linear (out, in) or Conv2d (D, C, p, p)
			uniform(p.Data, p.Len()/p.Shape[0])
		case strings.HasSuffix(p.Name, ".bias"): // fan_in of its weight
			w, _ := ps.Get(strings.TrimSuffix(p.Name, ".bias") + ".weight")
			uniform(p.Data, w.Len()/w.Shape[0])
		}
	}
}

func isNormBias(name string) bool {
	return isNormWeight(strings.TrimSuffix(name, ".bias") + ".weight")
}

func isNormWeight(name string) bool {
	for _, s := range []string{"norm1.weight", "norm2.weight", "norm.weight"} {
		if len(name) >= len(s) && name[len(name)-len(s):] == s {
			return true
		}
	}
	return false
}
