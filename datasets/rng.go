package datasets

import (
	"math"
	"math/bits"
)

// rng is splitmix64. It is used instead of math/rand so that every random
// stream in this package is a pure function of the values it was seeded
// from: an epoch's permutation or a sample's augmentation can then be
// recomputed in isolation, which is what makes mid-epoch resume exact.
type rng struct{ s uint64 }

// mix is the splitmix64 finaliser, a strong 64-bit bijective hash.
func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// newRNG derives an independent stream from a tuple of values. Each value
// is folded through the hash so that (a, b) and (b, a) give unrelated
// streams and small consecutive inputs do not give correlated ones.
func newRNG(vals ...uint64) rng {
	h := uint64(0x9e3779b97f4a7c15)
	for _, v := range vals {
		h = mix(h ^ mix(v+0x9e3779b97f4a7c15))
	}
	return rng{s: h}
}

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return mix(r.s)
}

// intn returns a value in [0, n) using Lemire's multiply-shift; the bias
// (at most n/2^64) is far below anything a training run could notice.
func (r *rng) intn(n int) int {
	if n <= 0 {
		return 0
	}
	hi, _ := bits.Mul64(r.next(), uint64(n))
	return int(hi)
}

// float returns a value in [0, 1) with 53 random bits.
func (r *rng) float() float64 {
	return float64(r.next()>>11) / (1 << 53)
}

// uniform returns a value in [lo, hi).
func (r *rng) uniform(lo, hi float64) float64 {
	return lo + (hi-lo)*r.float()
}

// noise returns an approximately standard normal deviate: the sum of four
// 16-bit uniforms (Irwin-Hall), rescaled to unit variance. Pixel noise
// needs a bell shape, not exact tails, and this costs one draw instead of
// the log, sqrt and sincos of Box-Muller, which dominated generation time.
func (r *rng) noise() float64 {
	v := r.next()
	s := v&0xffff + v>>16&0xffff + v>>32&0xffff + v>>48
	// Each term is uniform on [0, 65535]: mean 2*65535, variance
	// 4*(65536^2-1)/12.
	return (float64(s) - 2*65535) * (math.Sqrt(3) / 65536)
}
