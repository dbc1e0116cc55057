package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Float32s decodes the tensor's data to float32. F32, F16, BF16 and F64 are
// supported (F64 rounds to nearest); other dtypes are an error rather than a
// silent reinterpretation, since integer tensors in a checkpoint (e.g. index
// buffers) are never weights.
func (t *Tensor) Float32s() ([]float32, error) {
	esize, ok := dtypeSizes[t.DType]
	if !ok {
		return nil, fmt.Errorf("tensor %q: unknown dtype %q", t.Name, t.DType)
	}
	// Tensor is an exported struct, so Data need not have come from Parse.
	count, ok := elementCount(intsToInt64(t.Shape))
	if !ok || count > math.MaxInt64/esize || int64(len(t.Data)) != count*esize {
		return nil, fmt.Errorf("tensor %q: %d data bytes do not match %s shape %v", t.Name, len(t.Data), t.DType, t.Shape)
	}
	b := t.Data
	out := make([]float32, count)
	switch t.DType {
	case "F32":
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	case "F16":
		for i := range out {
			out[i] = HalfToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case "BF16":
		for i := range out {
			out[i] = BFloat16ToFloat32(binary.LittleEndian.Uint16(b[2*i:]))
		}
	case "F64":
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
	default:
		return nil, fmt.Errorf("tensor %q: cannot convert dtype %s to float32 (want F32, F16, BF16 or F64)", t.Name, t.DType)
	}
	return out, nil
}

func intsToInt64(s []int) []int64 {
	out := make([]int64, len(s))
	for i, d := range s {
		if d < 0 {
			// Makes elementCount's result disagree with any data length.
			return []int64{-1}
		}
		out[i] = int64(d)
	}
	return out
}

// HalfToFloat32 converts IEEE 754 binary16 bits to float32, exactly
// (every half value, subnormals included, is representable in float32).
func HalfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // inf or NaN; keep the payload so NaNs stay NaNs
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	case exp != 0: // normal: rebias 15 -> 127
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign) // signed zero
	}
	// Subnormal half: mant * 2^-24, which is normal in float32. Shift the
	// leading one into the implicit bit position.
	e := uint32(127 - 15 + 1)
	for mant&0x400 == 0 {
		mant <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
}

// BFloat16ToFloat32 converts bfloat16 bits to float32: bfloat16 is the top
// half of a float32.
func BFloat16ToFloat32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}
