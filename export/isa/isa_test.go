package isa

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// randArg returns a random valid value for f.
func randArg(rng *rand.Rand, f *Field) uint64 {
	switch f.Kind {
	case Reg:
		return uint64(rng.IntN(NumRegs))
	case Dim:
		if rng.IntN(2) == 0 {
			return DimReg(rng.IntN(NumRegs))
		}
		return DimImm(rng.IntN(dimImmMax + 1))
	case Enum:
		return uint64(rng.IntN(len(f.Enum)))
	}
	return rng.Uint64() & mask(f.Bits)
}

// maxArg returns the largest valid value for f.
func maxArg(f *Field) uint64 {
	switch f.Kind {
	case Dim:
		return DimImm(dimImmMax)
	case Enum:
		return uint64(len(f.Enum) - 1)
	}
	return mask(f.Bits)
}

func randInstr(rng *rand.Rand, s *OpSpec) Instr {
	args := make([]uint64, len(s.Fields))
	for i := range s.Fields {
		args[i] = randArg(rng, &s.Fields[i])
	}
	return New(s.Op, Flags(rng.IntN(int(flagsValid)+1)), args...)
}

// refEncode is a deliberately naive encoder, one bit at a time straight from
// the rules in the package doc, to check the word-based packing against.
func refEncode(in Instr) [Size]byte {
	var b [Size]byte
	at := 0
	set := func(v uint64, n int) {
		for i := 0; i < n; i++ {
			if v>>i&1 != 0 {
				b[at/8] |= 1 << (at % 8)
			}
			at++
		}
	}
	set(uint64(in.Op), 8)
	set(uint64(in.Flags), 8)
	s, _ := Lookup(in.Op)
	for i, f := range s.Fields {
		set(in.Args[i], f.Bits)
	}
	return b
}

func mustEncode(t *testing.T, in Instr) [Size]byte {
	t.Helper()
	b, err := in.Encode()
	if err != nil {
		t.Fatalf("Encode(%v): %v", in, err)
	}
	return b
}

func TestTableRules(t *testing.T) {
	if err := validateTable(Table); err != nil {
		t.Fatal(err)
	}
	ops := map[Opcode]bool{}
	names := map[string]bool{}
	for _, s := range Table {
		if ops[s.Op] {
			t.Errorf("opcode 0x%02x used twice", uint8(s.Op))
		}
		ops[s.Op] = true
		if names[s.Name] {
			t.Errorf("name %s used twice", s.Name)
		}
		names[s.Name] = true
		fields := map[string]bool{}
		total := 0
		for _, f := range s.Fields {
			if fields[f.Name] {
				t.Errorf("%s: field %s used twice", s.Name, f.Name)
			}
			fields[f.Name] = true
			total += f.Bits
		}
		if total > 240 {
			t.Errorf("%s: fields use %d bits, more than the 240 after opcode and flags", s.Name, total)
		}
	}
}

// TestOpcodeConstants pins the binary values and mnemonics, which programs
// already written depend on.
func TestOpcodeConstants(t *testing.T) {
	want := []struct {
		op    Opcode
		name  string
		queue Queue
		value uint8
	}{
		{OpLoad, "load", QueueLoad, 0x01}, {OpStore, "store", QueueStore, 0x02},
		{OpSetr, "setr", QueueCompute, 0x03}, {OpGemm, "gemm", QueueCompute, 0x04},
		{OpSpgemm, "spgemm", QueueCompute, 0x05}, {OpMatmul, "matmul", QueueCompute, 0x06},
		{OpColsum, "colsum", QueueCompute, 0x07}, {OpCenter, "center", QueueCompute, 0x08},
		{OpRequant, "requant", QueueCompute, 0x09}, {OpAdd, "add", QueueCompute, 0x0a},
		{OpLayerNorm, "layernorm", QueueCompute, 0x0b}, {OpGelu, "gelu", QueueCompute, 0x0c},
		{OpSoftmax, "softmax", QueueCompute, 0x0d}, {OpDivrow, "divrow", QueueCompute, 0x0e},
		{OpClsscore, "clsscore", QueueCompute, 0x0f}, {OpTopk, "topk", QueueCompute, 0x10},
		{OpFuse, "fuse", QueueCompute, 0x11}, {OpSync, "sync", QueueCompute, 0x12},
		{OpFinish, "finish", QueueCompute, 0x13},
	}
	if len(Table) != len(want) {
		t.Fatalf("table has %d opcodes, want %d", len(Table), len(want))
	}
	for _, w := range want {
		s, ok := Lookup(w.op)
		if !ok {
			t.Errorf("Lookup(0x%02x) failed", w.value)
			continue
		}
		if uint8(w.op) != w.value || s.Name != w.name || s.Queue != w.queue || w.op.String() != w.name {
			t.Errorf("opcode 0x%02x: got %s (0x%02x) on %v, want %s on %v", uint8(w.op), s.Name, uint8(s.Op), s.Queue, w.name, w.queue)
		}
		if byName, ok := ByName(w.name); !ok || byName != s {
			t.Errorf("ByName(%q) = %v, %v; want the entry of Lookup", w.name, byName, ok)
		}
	}
	if _, ok := Lookup(0); ok {
		t.Error("Lookup(0) succeeded; opcode 0 is reserved")
	}
	if _, ok := ByName("nop"); ok {
		t.Error(`ByName("nop") succeeded`)
	}
	if got := Opcode(0x2a).String(); got != "op(0x2a)" {
		t.Errorf("Opcode(0x2a).String() = %q", got)
	}
}

// TestValidateTableRejects checks that each rule the encoder relies on is
// enforced, by breaking a copy of the table one way at a time.
func TestValidateTableRejects(t *testing.T) {
	breakers := []struct {
		name string
		want string
		mod  func(t []OpSpec)
	}{
		{"duplicate opcode", "share opcode", func(t []OpSpec) { t[1].Op = t[0].Op }},
		{"opcode zero", "reserved", func(t []OpSpec) { t[2].Op = 0 }},
		{"duplicate name", "used twice", func(t []OpSpec) { t[1].Name = t[0].Name }},
		{"bad name", "identifier", func(t []OpSpec) { t[0].Name = "Load" }},
		{"duplicate field", "used twice", func(t []OpSpec) { t[3].Fields[1].Name = t[3].Fields[0].Name }},
		{"too wide", "at most 240 fit", func(t []OpSpec) {
			t[4].Fields = append(t[4].Fields, Field{Name: "extra", Bits: 16, Kind: Imm, Doc: "x"})
		}},
		{"reg width", "want 4", func(t []OpSpec) { t[2].Fields[0].Bits = 5 }},
		{"dim width", "want 17", func(t []OpSpec) { t[1].Fields[2].Bits = 16 }},
		{"enum too small", "do not fit", func(t []OpSpec) { t[5].Fields[9].Bits = 1 }},
		{"unknown space", "memory space", func(t []OpSpec) { t[3].Fields[0].Space = "rom" }},
		{"space on imm", "has a memory space", func(t []OpSpec) { t[3].Fields[2].Space = "act" }},
		{"no space enum", "no \"space\" enum", func(t []OpSpec) { t[0].Fields[0].Name = "where" }},
		{"doc newline", "newline", func(t []OpSpec) { t[0].Doc = "a\nb" }},
		{"doc comment end", "*/", func(t []OpSpec) { t[0].Fields[1].Doc = "a */ b" }},
		{"doc not ascii", "ASCII", func(t []OpSpec) { t[0].Doc = "Σ" }},
		{"missing doc", "missing doc", func(t []OpSpec) { t[6].Fields[0].Doc = "" }},
	}
	for _, b := range breakers {
		t.Run(b.name, func(t *testing.T) {
			c := cloneTable(Table)
			b.mod(c)
			err := validateTable(c)
			if err == nil || !strings.Contains(err.Error(), b.want) {
				t.Fatalf("validateTable = %v, want an error containing %q", err, b.want)
			}
		})
	}
}

func cloneTable(t []OpSpec) []OpSpec {
	c := slices.Clone(t)
	for i := range c {
		c[i].Fields = slices.Clone(c[i].Fields)
	}
	return c
}

func TestRoundTripEveryOpcode(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range Table {
		s := &Table[i]
		t.Run(s.Name, func(t *testing.T) {
			for n := 0; n < 200; n++ {
				in := randInstr(rng, s)
				b := mustEncode(t, in)
				if ref := refEncode(in); b != ref {
					t.Fatalf("Encode(%v) =\n% x\nbit-by-bit reference gives\n% x", in, b, ref)
				}
				out, err := Decode(b[:])
				if err != nil {
					t.Fatalf("Decode(Encode(%v)): %v", in, err)
				}
				if !reflect.DeepEqual(out, in) {
					t.Fatalf("Decode(Encode(x)) = %#v, want %#v", out, in)
				}
				if b2 := mustEncode(t, out); b2 != b {
					t.Fatalf("re-encoding changed the bytes:\n% x\n% x", b, b2)
				}
			}
		})
	}
}

func TestMaxWidthValues(t *testing.T) {
	for i := range Table {
		s := &Table[i]
		for _, regForm := range []bool{false, true} {
			args := make([]uint64, len(s.Fields))
			for j := range s.Fields {
				args[j] = maxArg(&s.Fields[j])
				if regForm && s.Fields[j].Kind == Dim {
					args[j] = DimReg(NumRegs - 1)
				}
			}
			in := New(s.Op, flagsValid, args...)
			b := mustEncode(t, in)
			if b != refEncode(in) {
				t.Errorf("%s: max values encode as\n% x\nwant\n% x", s.Name, b, refEncode(in))
			}
			out, err := Decode(b[:])
			if err != nil || !reflect.DeepEqual(out, in) {
				t.Errorf("%s: Decode = %v, %v; want %v", s.Name, out, err, in)
			}
		}
	}
}

// TestHandEncoding checks two encodings worked out by hand from the rules,
// so that the encoder and the reference encoder cannot share a mistake.
func TestHandEncoding(t *testing.T) {
	// setr: reg 3 in bits 16..19, value 0x12345678 in bits 20..51. Byte 2 is
	// reg (low nibble) and the value's low nibble 8 (high nibble); bytes
	// 3..6 carry the value shifted right by 4.
	got := mustEncode(t, New(OpSetr, WaitLoad, 3, 0x12345678))
	want := [Size]byte{0x03, 0x01, 0x83, 0x67, 0x45, 0x23, 0x01}
	if got != want {
		t.Errorf("setr.wl r3, 0x12345678:\n got % x\nwant % x", got, want)
	}

	// load: space=wgt(1) at bit 16, dst=0x40 at bit 18 puts bit 24, src=0x9000
	// at bit 50 puts bits 62 and 65 (crossing the first 64-bit word),
	// bytes=0x200 at bit 82 puts bit 91.
	got = mustEncode(t, New(OpLoad, WaitCompute|WaitStore, 1, 0x40, 0x9000, 0x200))
	want = [Size]byte{0: 0x01, 1: 0x06, 2: 0x01, 3: 0x01, 7: 0x40, 8: 0x02, 11: 0x08}
	if got != want {
		t.Errorf("load:\n got % x\nwant % x", got, want)
	}

	// store rows=r5: Dim at bits 80..96 = 0x10005, i.e. byte 10 = 0x05 and
	// bit 96 = byte 12 bit 0.
	got = mustEncode(t, New(OpStore, 0, 0, 0, DimReg(5), 0, 0))
	want = [Size]byte{0: 0x02, 10: 0x05, 12: 0x01}
	if got != want {
		t.Errorf("store rows=r5:\n got % x\nwant % x", got, want)
	}
}

func TestEncodeErrors(t *testing.T) {
	for i := range Table {
		s := &Table[i]
		valid := make([]uint64, len(s.Fields))
		for j := range s.Fields {
			valid[j] = maxArg(&s.Fields[j])
		}
		for j, f := range s.Fields {
			bad := slices.Clone(valid)
			switch f.Kind {
			case Enum:
				bad[j] = uint64(len(f.Enum))
			case Dim:
				bad[j] = 1 << dimBits
			default:
				bad[j] = 1 << f.Bits
			}
			_, err := Instr{Op: s.Op, Args: bad}.Encode()
			if err == nil || !strings.Contains(err.Error(), "field "+f.Name+":") {
				t.Errorf("%s: %s=0x%x: Encode error %v, want one naming the field", s.Name, f.Name, bad[j], err)
			}
			if f.Kind == Dim {
				bad[j] = DimReg(2) | 1<<4
				if _, err := (Instr{Op: s.Op, Args: bad}).Encode(); err == nil || !strings.Contains(err.Error(), "bits 4..15") {
					t.Errorf("%s: %s=0x%x: Encode error %v, want bad register form", s.Name, f.Name, bad[j], err)
				}
			}
		}
	}
	cases := []struct {
		in   Instr
		want string
	}{
		{Instr{Op: 0x2a}, "isa: unknown opcode 0x2a"},
		{Instr{Op: OpSync, Flags: 0x08}, "isa: sync: reserved flag bits 0x08 set"},
		{Instr{Op: OpSetr, Args: []uint64{1}}, "isa: setr: 1 args, want 2"},
		{Instr{Op: OpFinish, Args: []uint64{1}}, "isa: finish: 1 args, want 0"},
		{Instr{Op: OpMatmul, Args: []uint64{0, 0, 0, 0, 0, 0, 1, 1, 1, 3, 0, 0, 0}}, "isa: matmul: field layout: enum value 3 out of range (nn, tn, nt)"},
		{Instr{Op: OpSetr, Args: []uint64{16, 0}}, "isa: setr: field reg: value 0x10 does not fit in 4 bits"},
	}
	for _, c := range cases {
		if _, err := c.in.Encode(); err == nil || err.Error() != c.want {
			t.Errorf("Encode(%#v) error = %v, want %q", c.in, err, c.want)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	valid := mustEncode(t, New(OpMatmul, WaitLoad, 0x100, 64, 0x200, 64, 0x300, 64, DimReg(1), DimImm(64), DimReg(1), 2, 0, 0, 0))
	mod := func(f func(b *[Size]byte)) []byte {
		b := valid
		f(&b)
		return b[:]
	}
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"unknown opcode", mod(func(b *[Size]byte) { b[0] = 0x2a }), "isa: instruction has unknown opcode 0x2a"},
		{"opcode zero", make([]byte, Size), "isa: instruction has unknown opcode 0x00"},
		{"opcode after table", mod(func(b *[Size]byte) { b[0] = 0x14 }), "unknown opcode 0x14"},
		{"short", valid[:Size-1], "isa: instruction is 31 bytes, want 32"},
		{"long", append(valid[:], 0), "isa: instruction is 33 bytes, want 32"},
		{"enum out of range", mod(func(b *[Size]byte) { setBit(b, matmulLSB("layout"), true); setBit(b, matmulLSB("layout")+1, true) }),
			"isa: matmul: field layout: enum value 3 out of range (nn, tn, nt)"},
		{"dim register form with high bits", mod(func(b *[Size]byte) { setBit(b, matmulLSB("m")+4, true) }),
			"isa: matmul: field m: register-form dim 0x10011 has bits 4..15 set"},
	}
	for bit := 3; bit < 8; bit++ {
		cases = append(cases, struct {
			name string
			in   []byte
			want string
		}{fmt.Sprintf("reserved flag bit %d", bit), mod(func(b *[Size]byte) { b[1] |= 1 << bit }), fmt.Sprintf("isa: matmul: reserved flag bits 0x%02x set", 1<<bit)})
	}
	for _, c := range cases {
		_, err := Decode(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Decode error %v, want %q", c.name, err, c.want)
		}
	}
}

func matmulLSB(name string) int {
	l := index.byOp[OpMatmul]
	for i, f := range l.spec.Fields {
		if f.Name == name {
			return l.lsb[i]
		}
	}
	panic(name)
}

func setBit(b *[Size]byte, bit int, on bool) {
	if on {
		b[bit/8] |= 1 << (bit % 8)
	} else {
		b[bit/8] &^= 1 << (bit % 8)
	}
}

// TestDecodeRejectsPadding sets each padding bit of every opcode in turn.
func TestDecodeRejectsPadding(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range Table {
		s := &Table[i]
		l := index.byOp[s.Op]
		valid := mustEncode(t, randInstr(rng, s))
		for bit := l.end; bit < instrBits; bit++ {
			b := valid
			setBit(&b, bit, true)
			_, err := Decode(b[:])
			want := fmt.Sprintf("isa: %s: padding bit %d set", s.Name, bit)
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("%s: Decode with bit %d set: error %v, want %q", s.Name, bit, err, want)
			}
		}
		// The bit just before the padding belongs to the last field (or the
		// flags) and must not be mistaken for padding.
		if l.end > fieldsLSB {
			b := valid
			setBit(&b, l.end-1, !(b[(l.end-1)/8]>>((l.end-1)%8)&1 == 1))
			if _, err := Decode(b[:]); err != nil && strings.Contains(err.Error(), "padding") {
				t.Errorf("%s: last field bit %d reported as padding: %v", s.Name, l.end-1, err)
			}
		}
	}
}

func TestPrograms(t *testing.T) {
	p := []Instr{
		New(OpSetr, 0, 1, 197),
		New(OpLoad, 0, 1, 0x2000, 0x10000, 4096),
		New(OpGemm, WaitLoad, 0x100, 0, 64, DimReg(1), 64, 192, 0x2000, 0x8000, 0),
		New(OpStore, WaitCompute, 0x100, 0x20000, DimReg(1), 768, 768),
		New(OpFinish, WaitStore),
	}
	b, err := EncodeProgram(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != len(p)*Size {
		t.Fatalf("program is %d bytes, want %d", len(b), len(p)*Size)
	}
	for i, in := range p {
		one := mustEncode(t, in)
		if !bytes.Equal(b[i*Size:(i+1)*Size], one[:]) {
			t.Errorf("instruction %d differs from its own encoding", i)
		}
	}
	got, err := DecodeProgram(b)
	if err != nil || !reflect.DeepEqual(got, p) {
		t.Fatalf("DecodeProgram = %v, %v; want %v", got, err, p)
	}
	if got, err := DecodeProgram(nil); err != nil || len(got) != 0 {
		t.Errorf("DecodeProgram(nil) = %v, %v", got, err)
	}

	for _, n := range []int{1, Size - 1, Size + 1, 3*Size + 5} {
		if _, err := DecodeProgram(make([]byte, n)); err == nil || !strings.Contains(err.Error(), "not a multiple of 32") {
			t.Errorf("DecodeProgram(%d bytes) error = %v", n, err)
		}
	}

	bad := slices.Clone(b)
	bad[3*Size+Size-1] = 0x80 // padding of the store
	if _, err := DecodeProgram(bad); err == nil || !strings.HasPrefix(err.Error(), "isa: instruction 3: store: padding bit 255") {
		t.Errorf("DecodeProgram with bad instruction 3: error %v", err)
	}
	badP := slices.Clone(p)
	badP[2] = Instr{Op: OpGemm, Args: []uint64{1}}
	if _, err := EncodeProgram(badP); err == nil || err.Error() != "isa: instruction 2: gemm: 1 args, want 9" {
		t.Errorf("EncodeProgram with bad instruction 2: error %v", err)
	}
}

func TestDims(t *testing.T) {
	regs := [NumRegs]uint32{3: 197, 15: 1 << 31}
	for _, c := range []struct {
		v    uint64
		want int
	}{
		{DimImm(0), 0}, {DimImm(64), 64}, {DimImm(65535), 65535},
		{DimReg(3), 197}, {DimReg(0), 0}, {DimReg(15), 1 << 31},
	} {
		if got := ResolveDim(c.v, &regs); got != c.want {
			t.Errorf("ResolveDim(0x%x) = %d, want %d", c.v, got, c.want)
		}
	}
	if DimReg(3) != 0x10003 {
		t.Errorf("DimReg(3) = 0x%x, want 0x10003", DimReg(3))
	}
	for _, f := range []func(){
		func() { DimImm(-1) }, func() { DimImm(65536) }, func() { DimReg(-1) }, func() { DimReg(16) },
	} {
		if !panics(f) {
			t.Error("out-of-range Dim constructor did not panic")
		}
	}
}

func TestNewAndArg(t *testing.T) {
	args := []uint64{0x100, 0, 64, DimReg(1), 64, 192, 0x2000, 0x8000, 0}
	in := New(OpGemm, 0, args...)
	args[0] = 7
	if in.Arg("dst") != 0x100 {
		t.Error("New kept the caller's slice; changing it changed the instruction")
	}
	if in.Arg("rows") != DimReg(1) || in.Arg("bias") != 0x8000 {
		t.Errorf("Arg: rows=0x%x bias=0x%x", in.Arg("rows"), in.Arg("bias"))
	}
	if New(OpSync, 0).Args != nil {
		t.Error("New(OpSync) has non-nil Args; Decode gives nil")
	}
	for name, f := range map[string]func(){
		"too few args":  func() { New(OpGemm, 0, 1, 2) },
		"too many args": func() { New(OpSync, 0, 1) },
		"unknown op":    func() { New(0x7f, 0) },
		"unknown field": func() { in.Arg("nope") },
		"unknown op arg": func() {
			Instr{Op: 0x7f}.Arg("dst")
		},
	} {
		if !panics(f) {
			t.Errorf("%s: no panic", name)
		}
	}
}

func panics(f func()) (p bool) {
	defer func() { p = recover() != nil }()
	f()
	return false
}
