package isa

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strings"
)

// words is an instruction as four little-endian 64-bit words. Because the
// bytes are little-endian too, bit i of the instruction is bit i%64 of word
// i/64, so a field that straddles two words takes two shifts rather than a
// loop over its bits.
type words [instrBits / 64]uint64

func mask(n int) uint64 {
	if n >= 64 {
		return ^uint64(0)
	}
	return 1<<n - 1
}

// put ORs v, which must fit in n bits, into bits lsb..lsb+n-1.
func (w *words) put(lsb, n int, v uint64) {
	i, s := lsb/64, lsb%64
	w[i] |= v << s
	if s+n > 64 {
		w[i+1] |= v >> (64 - s)
	}
}

// get returns bits lsb..lsb+n-1.
func (w *words) get(lsb, n int) uint64 {
	i, s := lsb/64, lsb%64
	v := w[i] >> s
	if s+n > 64 {
		v |= w[i+1] << (64 - s)
	}
	return v & mask(n)
}

// firstSet returns the lowest set bit at or above lsb, or -1.
func (w *words) firstSet(lsb int) int {
	for i := lsb / 64; i < len(w); i++ {
		x := w[i]
		if i == lsb/64 {
			x &^= mask(lsb % 64)
		}
		if x != 0 {
			return i*64 + bits.TrailingZeros64(x)
		}
	}
	return -1
}

// checkValue reports why v is not a valid value of f, or returns "".
func checkValue(f *Field, v uint64) string {
	switch f.Kind {
	case Dim:
		return dimErr(v)
	case Enum:
		if v >= uint64(len(f.Enum)) {
			return fmt.Sprintf("enum value %d out of range (%s)", v, strings.Join(f.Enum, ", "))
		}
	default:
		if v&^mask(f.Bits) != 0 {
			return fmt.Sprintf("value 0x%x does not fit in %d bits", v, f.Bits)
		}
	}
	return ""
}

// Encode returns the binary form of in. It fails when the opcode is unknown,
// the argument count is wrong, a value does not fit its field or is not a
// valid Dim or Enum value, or a reserved flag bit is set.
func (in Instr) Encode() ([Size]byte, error) {
	b, err := in.encode()
	if err != nil {
		return b, fmt.Errorf("isa: %w", err)
	}
	return b, nil
}

// encode is Encode without the package prefix on errors, so that
// EncodeProgram can put the instruction index in front.
func (in Instr) encode() ([Size]byte, error) {
	var out [Size]byte
	l := index.byOp[in.Op]
	if l == nil {
		return out, fmt.Errorf("unknown opcode 0x%02x", uint8(in.Op))
	}
	s := l.spec
	if in.Flags&^flagsValid != 0 {
		return out, fmt.Errorf("%s: reserved flag bits 0x%02x set", s.Name, uint8(in.Flags&^flagsValid))
	}
	if len(in.Args) != len(s.Fields) {
		return out, fmt.Errorf("%s: %d args, want %d", s.Name, len(in.Args), len(s.Fields))
	}
	var w words
	w.put(0, 8, uint64(in.Op))
	w.put(8, 8, uint64(in.Flags))
	for i := range s.Fields {
		f := &s.Fields[i]
		v := in.Args[i]
		if msg := checkValue(f, v); msg != "" {
			return out, fmt.Errorf("%s: field %s: %s", s.Name, f.Name, msg)
		}
		w.put(l.lsb[i], f.Bits, v)
	}
	for i, x := range w {
		binary.LittleEndian.PutUint64(out[i*8:], x)
	}
	return out, nil
}

// Decode parses one instruction. It accepts only the canonical encoding:
// the opcode is known, reserved flag bits and the bits after the last field
// are zero, and every Dim and Enum value is valid. Hence Encode of the result
// gives back b exactly.
func Decode(b []byte) (Instr, error) {
	in, err := decode(b)
	if err != nil {
		return Instr{}, fmt.Errorf("isa: %w", err)
	}
	return in, nil
}

func decode(b []byte) (Instr, error) {
	if len(b) != Size {
		return Instr{}, fmt.Errorf("instruction is %d bytes, want %d", len(b), Size)
	}
	var w words
	for i := range w {
		w[i] = binary.LittleEndian.Uint64(b[i*8:])
	}
	op := Opcode(w.get(0, 8))
	l := index.byOp[op]
	if l == nil {
		return Instr{}, fmt.Errorf("instruction has unknown opcode 0x%02x", uint8(op))
	}
	s := l.spec
	flags := Flags(w.get(8, 8))
	if flags&^flagsValid != 0 {
		return Instr{}, fmt.Errorf("%s: reserved flag bits 0x%02x set", s.Name, uint8(flags&^flagsValid))
	}
	if bit := w.firstSet(l.end); bit >= 0 {
		return Instr{}, fmt.Errorf("%s: padding bit %d set (fields end at bit %d)", s.Name, bit, l.end)
	}
	in := Instr{Op: op, Flags: flags}
	if len(s.Fields) > 0 {
		in.Args = make([]uint64, len(s.Fields))
	}
	for i := range s.Fields {
		f := &s.Fields[i]
		v := w.get(l.lsb[i], f.Bits)
		if msg := checkValue(f, v); msg != "" {
			return Instr{}, fmt.Errorf("%s: field %s: %s", s.Name, f.Name, msg)
		}
		in.Args[i] = v
	}
	return in, nil
}

// EncodeProgram encodes the instructions back to back.
func EncodeProgram(p []Instr) ([]byte, error) {
	out := make([]byte, 0, len(p)*Size)
	for i, in := range p {
		b, err := in.encode()
		if err != nil {
			return nil, fmt.Errorf("isa: instruction %d: %w", i, err)
		}
		out = append(out, b[:]...)
	}
	return out, nil
}

// DecodeProgram decodes a sequence of instructions.
func DecodeProgram(b []byte) ([]Instr, error) {
	if len(b)%Size != 0 {
		return nil, fmt.Errorf("isa: program is %d bytes, not a multiple of %d", len(b), Size)
	}
	p := make([]Instr, 0, len(b)/Size)
	for i := 0; i < len(b); i += Size {
		in, err := decode(b[i : i+Size])
		if err != nil {
			return nil, fmt.Errorf("isa: instruction %d: %w", i/Size, err)
		}
		p = append(p, in)
	}
	return p, nil
}
