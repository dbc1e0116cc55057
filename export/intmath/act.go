package intmath

import "unsafe"

// Act is an activation element type: int8, or int16 for bundles exported
// with 16-bit activations (W8A16). Every kernel that reads or writes
// activations is written once over Act; the int16 forms differ only where a
// fixed-point constant would lose the extra bits (LayerNorm's reciprocal)
// or a product would leave int32 (Taylor's dot products), each noted there.
type Act interface{ ~int8 | ~int16 }

// Wide reports whether T is the 16-bit activation type.
func Wide[T Act]() bool {
	var z T
	return unsafe.Sizeof(z) == 2
}

// Sat saturates x to T's range.
func Sat[T Act](x int64) T {
	if Wide[T]() {
		return T(Sat16(x))
	}
	return T(Sat8(x))
}

// Top is the largest code of an activation of bits bits (127 or 32767):
// a calibrated clip maps to it.
func Top(bits int) float64 { return float64(int(1)<<(bits-1) - 1) }

// AddAct is the residual add into T: Sat(round((a·A + b·B) / 2^Shift)).
func AddAct[T Act](p Pair, a, b int64) T {
	v := a*int64(p.A) + b*int64(p.B)
	if p.Shift > 0 {
		v = (v + 1<<(p.Shift-1)) >> p.Shift
	}
	return Sat[T](v)
}

// Requant output types, as the requant instruction's out field numbers them.
const (
	OutI8  = 0
	OutI32 = 1
	OutI16 = 2
)

// RequantTo rescales an int32 accumulator to the output type out (OutI8,
// OutI32 or OutI16), saturating.
func RequantTo(m Multiplier, acc int32, out int) int32 {
	v := m.Apply(int64(acc))
	switch out {
	case OutI32:
		return Sat32(v)
	case OutI16:
		return int32(Sat16(v))
	}
	return int32(Sat8(v))
}

// MatmulShift is the rounding right shift a matmul applies to its sum
// before the int32 result: (s + 2^(shift−1)) >> shift, wrapped to 32 bits
// (shift 0: wrap32(s), the int8 form). An int16 × int16 product reaches
// 2^30, so such matmuls shift the sum back into int32.
func MatmulShift(s int64, shift uint) int32 {
	if shift > 0 {
		s = (s + 1<<(shift-1)) >> shift
	}
	return int32(s)
}

// TaylorDotShift is the right shift of Taylor's q·k̄ and q·k̂ dot products
// for int16 operands, whose sums reach 2^36: the multiplier QK absorbs
// 2^TaylorDotShift.
const TaylorDotShift = 8
