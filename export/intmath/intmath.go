// Package intmath holds the integer arithmetic of vitc's accelerator: the
// requantisation multipliers and the integer LayerNorm, GELU, softmax and
// Taylor normaliser (I-BERT-style). The exporter derives each kernel's
// integer constants from float scales once; the kernels themselves use only
// integer operations, so the simulator, the integer reference model and RTL
// produce the same bits. docs/bundle.md restates every formula.
package intmath

import (
	"fmt"
	"math"
	"math/bits"
)

// Multiplier is a positive real factor r as an int32 mantissa and a right
// shift: x·r ≈ (x·M + 2^(Shift−1)) >> Shift, the gemmlowp form, so that
// requantisation is one multiply, one add and one shift.
type Multiplier struct {
	M     int32
	Shift uint8
}

// MaxShift keeps x·M + rounding inside int64 for |x| < 2^31.
const MaxShift = 62

// NewMultiplier picks M in [2^30, 2^31) and the matching shift. Factors too
// small for MaxShift lose mantissa bits (and may become 0); a factor of
// 2^31 or more, or a negative or non-finite one, is an error.
func NewMultiplier(r float64) (Multiplier, error) {
	if r == 0 {
		return Multiplier{}, nil
	}
	if !(r > 0) || math.IsInf(r, 0) || r >= 1<<31 {
		return Multiplier{}, fmt.Errorf("intmath: scale factor %g cannot be a multiplier", r)
	}
	frac, exp := math.Frexp(r) // r = frac·2^exp, frac in [0.5, 1)
	m := int64(math.Round(frac * (1 << 31)))
	shift := 31 - exp
	if m == 1<<31 {
		m >>= 1
		shift--
	}
	for shift > MaxShift {
		m = (m + 1) >> 1
		shift--
	}
	if shift < 0 {
		return Multiplier{}, fmt.Errorf("intmath: scale factor %g cannot be a multiplier", r)
	}
	return Multiplier{M: int32(m), Shift: uint8(shift)}, nil
}

// Apply returns round(x·M / 2^Shift), halves rounded up. x must fit in
// int32 for the product to fit in int64.
func (m Multiplier) Apply(x int64) int64 {
	p := x * int64(m.M)
	if m.Shift == 0 {
		return p
	}
	return (p + 1<<(m.Shift-1)) >> m.Shift
}

// Real is the factor the multiplier stands for.
func (m Multiplier) Real() float64 { return math.Ldexp(float64(m.M), -int(m.Shift)) }

// Words packs the multiplier as two int32 words (M, shift), its layout in
// parameter tables.
func (m Multiplier) Words() [2]int32 { return [2]int32{m.M, int32(m.Shift)} }

// MultiplierFromWords is the inverse of Words; it refuses a shift out of
// range, which only a corrupt table can hold.
func MultiplierFromWords(w0, w1 int32) (Multiplier, error) {
	if w0 < 0 || w1 < 0 || w1 > MaxShift {
		return Multiplier{}, fmt.Errorf("intmath: invalid multiplier (%d, %d)", w0, w1)
	}
	return Multiplier{M: w0, Shift: uint8(w1)}, nil
}

// Sat8 saturates to int8.
func Sat8(x int64) int8 { return int8(min(max(x, -128), 127)) }

// Sat16 saturates to int16.
func Sat16(x int64) int16 { return int16(min(max(x, -1<<15), 1<<15-1)) }

// Sat32 saturates to int32.
func Sat32(x int64) int32 { return int32(min(max(x, math.MinInt32), math.MaxInt32)) }

// RoundDiv is a/b rounded to nearest, halves away from zero; b > 0.
func RoundDiv(a, b int64) int64 {
	if a >= 0 {
		return (a + b/2) / b
	}
	return -((-a + b/2) / b)
}

// ISqrt is ⌊√x⌋, bit by bit, as a hardware square-root unit computes it.
func ISqrt(x uint64) uint64 {
	if x == 0 {
		return 0
	}
	var r uint64
	bit := uint64(1) << ((bits.Len64(x) - 1) &^ 1)
	for ; bit != 0; bit >>= 2 {
		if x >= r+bit {
			x -= r + bit
			r = r>>1 + bit
		} else {
			r >>= 1
		}
	}
	return r
}

// Pair is two multipliers that share one shift, so that a·Ma + b·Mb is
// rounded once (the residual add).
type Pair struct {
	A, B  int32
	Shift uint8
}

// NewPair encodes ra and rb with a common shift chosen for the larger.
func NewPair(ra, rb float64) (Pair, error) {
	big, err := NewMultiplier(max(ra, rb))
	if err != nil {
		return Pair{}, err
	}
	if ra < 0 || rb < 0 {
		return Pair{}, fmt.Errorf("intmath: negative scale factor in (%g, %g)", ra, rb)
	}
	s := int(big.Shift)
	return Pair{A: int32(math.Round(math.Ldexp(ra, s))), B: int32(math.Round(math.Ldexp(rb, s))), Shift: big.Shift}, nil
}

// Apply returns Sat8(round((a·A + b·B) / 2^Shift)).
func (p Pair) Apply(a, b int64) int8 {
	v := a*int64(p.A) + b*int64(p.B)
	if p.Shift > 0 {
		v = (v + 1<<(p.Shift-1)) >> p.Shift
	}
	return Sat8(v)
}
