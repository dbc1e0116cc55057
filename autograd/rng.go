package autograd

import (
	"math"
	"math/rand/v2"
)

// RNG is a seeded PCG generator whose state can be saved and restored, so a
// seed fixes initialisation and any randomness a training run uses.
type RNG struct {
	pcg *rand.PCG
	r   *rand.Rand
}

// NewRNG returns a generator for (seed, stream); separate streams keep, say,
// initialisation independent of augmentation.
func NewRNG(seed int64, stream uint64) *RNG {
	pcg := rand.NewPCG(uint64(seed), stream)
	return &RNG{pcg: pcg, r: rand.New(pcg)}
}

// Float64 in [0, 1).
func (g *RNG) Float64() float64 { return g.r.Float64() }

// IntN in [0, n).
func (g *RNG) IntN(n int) int { return g.r.IntN(n) }

// Normal returns a standard normal sample.
func (g *RNG) Normal() float64 { return g.r.NormFloat64() }

// TruncNormal fills x with N(0, std²) samples truncated to ±2·std, as
// timm's trunc_normal_(std=std, a=-2std, b=2std).
func (g *RNG) TruncNormal(x []float32, std float64) {
	for i := range x {
		v := g.Normal()
		for math.Abs(v) > 2 {
			v = g.Normal()
		}
		x[i] = float32(v * std)
	}
}

// MarshalBinary saves the generator state.
func (g *RNG) MarshalBinary() ([]byte, error) { return g.pcg.MarshalBinary() }

// UnmarshalBinary restores a saved state.
func (g *RNG) UnmarshalBinary(b []byte) error { return g.pcg.UnmarshalBinary(b) }
