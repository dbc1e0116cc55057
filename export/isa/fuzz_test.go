package isa

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecode checks that Decode is canonical: whatever it accepts, Encode
// turns back into the same bytes, and whatever it rejects, it rejects with an
// error rather than a panic. The committed corpus under testdata/fuzz holds
// one valid instruction per opcode and a few invalid ones; the seeds added
// here follow the table as it is now.
func FuzzDecode(f *testing.F) {
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range Table {
		b, err := randInstr(rng, &Table[i]).Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := Decode(b)
		if len(b) != Size {
			if err == nil {
				t.Fatalf("Decode accepted %d bytes", len(b))
			}
			return
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "isa: ") {
				t.Fatalf("error without package prefix: %v", err)
			}
			return
		}
		out, err := in.Encode()
		if err != nil {
			t.Fatalf("Decode accepted % x as %v, which Encode rejects: %v", b, in, err)
		}
		if !bytes.Equal(out[:], b) {
			t.Fatalf("Decode is not canonical:\n in % x\nout % x\n(%v)", b, out, in)
		}
		if s := in.String(); strings.Contains(s, "?") {
			t.Fatalf("valid instruction disassembles with a '?' mark: %s", s)
		}
	})
}

// FuzzEncodeRoundTrip builds a valid instruction from arbitrary bytes (the
// opcode picks a table entry, seed supplies the field values, masked to
// their fields) and requires Decode(Encode(x)) == x, with Encode agreeing
// with the bit-by-bit reference encoder.
func FuzzEncodeRoundTrip(f *testing.F) {
	f.Add(byte(OpGemm), byte(WaitLoad), []byte("\x00\x01\x00\x00\xff\xff\xff\xff"))
	f.Add(byte(OpSync), byte(0), []byte(nil))
	f.Fuzz(func(t *testing.T, op, flags byte, seed []byte) {
		s := &Table[int(op)%len(Table)]
		args := make([]uint64, len(s.Fields))
		for i := range s.Fields {
			args[i] = fieldFromSeed(&s.Fields[i], seed, i)
		}
		in := New(s.Op, Flags(flags)&flagsValid, args...)
		b, err := in.Encode()
		if err != nil {
			t.Fatalf("Encode(%v): %v", in, err)
		}
		if ref := refEncode(in); b != ref {
			t.Fatalf("Encode(%v) =\n% x\nreference\n% x", in, b, ref)
		}
		out, err := Decode(b[:])
		if err != nil {
			t.Fatalf("Decode(Encode(%v)): %v", in, err)
		}
		if !reflect.DeepEqual(out, in) {
			t.Fatalf("Decode(Encode(x)) = %#v, want %#v", out, in)
		}
		if Flags(flags)&^flagsValid != 0 {
			in.Flags = Flags(flags)
			if _, err := in.Encode(); err == nil {
				t.Fatalf("Encode accepted reserved flags 0x%02x", flags)
			}
		}
	})
}

// fieldFromSeed takes field i's value from 8 bytes of seed (repeated as
// needed) and makes it valid for f.
func fieldFromSeed(f *Field, seed []byte, i int) uint64 {
	var buf [8]byte
	if len(seed) > 0 {
		for j := range buf {
			buf[j] = seed[(8*i+j)%len(seed)]
		}
	}
	v := binary.LittleEndian.Uint64(buf[:])
	switch f.Kind {
	case Dim:
		v &= mask(dimBits)
		if v&dimRegFlag != 0 {
			v &= dimRegFlag | (NumRegs - 1)
		}
		return v
	case Enum:
		return v % uint64(len(f.Enum))
	}
	return v & mask(f.Bits)
}
