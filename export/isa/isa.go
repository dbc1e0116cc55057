// Package isa is the instruction set of vitc's FPGA Vision-Transformer
// accelerator.
//
// One table (Table) describes every opcode and its fields. The encoder,
// decoder and disassembler read it at run time, and `go generate
// ./export/isa` turns it into the C header vitc_isa.h and the reference
// docs/isa.md, so the hardware, the host code and the documentation cannot
// drift apart from the Go compiler that emits programs.
//
// An instruction is Size (32) bytes, little-endian: bit i is bit i%8 of byte
// i/8. Bits 0..7 hold the opcode, bits 8..15 the flags, and the fields follow
// from bit 16 in table order, each LSB first. Every bit after the last field
// is zero. Decode accepts only that canonical form, so a decoded instruction
// re-encodes to the very bytes it came from.
package isa

import (
	"fmt"
	"regexp"
	"strings"
)

// Size is the length of one encoded instruction in bytes.
const Size = 32

const (
	instrBits = Size * 8
	// fieldsLSB is where the first field starts: after the opcode and flag
	// bytes.
	fieldsLSB = 16
	// maxFieldBits is the most bits all fields of one opcode may use.
	maxFieldBits = instrBits - fieldsLSB
)

// Opcode identifies an instruction. Zero is not an opcode, so that zeroed
// memory never decodes as a program.
type Opcode uint8

// The opcodes. Their values are part of the binary format, so they are
// spelled out rather than left to iota.
const (
	OpLoad      Opcode = 0x01
	OpStore     Opcode = 0x02
	OpSetr      Opcode = 0x03
	OpGemm      Opcode = 0x04
	OpSpgemm    Opcode = 0x05
	OpMatmul    Opcode = 0x06
	OpColsum    Opcode = 0x07
	OpCenter    Opcode = 0x08
	OpRequant   Opcode = 0x09
	OpAdd       Opcode = 0x0A
	OpLayerNorm Opcode = 0x0B
	OpGelu      Opcode = 0x0C
	OpSoftmax   Opcode = 0x0D
	OpDivrow    Opcode = 0x0E
	OpClsscore  Opcode = 0x0F
	OpTopk      Opcode = 0x10
	OpFuse      Opcode = 0x11
	OpSync      Opcode = 0x12
	OpFinish    Opcode = 0x13
)

// String returns the opcode's mnemonic, or its value in hex when the table
// does not know it.
func (op Opcode) String() string {
	if s, ok := Lookup(op); ok {
		return s.Name
	}
	return fmt.Sprintf("op(0x%02x)", uint8(op))
}

// Queue is one of the accelerator's three in-order instruction queues.
// Instructions of different queues run concurrently; the wait flags are the
// only ordering between them.
type Queue uint8

// The queues. Flag bit q of an instruction waits for queue q, so these values
// and the Wait flags below must stay in step.
const (
	QueueLoad Queue = iota
	QueueCompute
	QueueStore
)

// String returns the queue's name as the docs and header spell it.
func (q Queue) String() string {
	switch q {
	case QueueLoad:
		return "load"
	case QueueCompute:
		return "compute"
	case QueueStore:
		return "store"
	}
	return fmt.Sprintf("queue(%d)", uint8(q))
}

// Flags is the flag byte of an instruction. Each Wait flag holds the
// instruction back until every earlier instruction of that queue has
// finished; that is how a compute reads only after its load landed, or a
// load reuses a buffer only after the store reading it is done.
type Flags uint8

// The flags; the remaining bits are reserved and must be zero.
const (
	WaitLoad    Flags = 1 << QueueLoad
	WaitCompute Flags = 1 << QueueCompute
	WaitStore   Flags = 1 << QueueStore

	flagsValid = WaitLoad | WaitCompute | WaitStore
)

// flagNames gives the disassembly suffix of each flag, in the order the
// suffixes are written.
var flagNames = []struct {
	flag Flags
	name string
}{
	{WaitLoad, "wl"},
	{WaitCompute, "wc"},
	{WaitStore, "ws"},
}

// Kind says how a field's bits are interpreted.
type Kind uint8

// The field kinds.
const (
	// Imm is an unsigned immediate of the field's width.
	Imm Kind = iota
	// Addr is a byte address in the memory space named by Field.Space.
	Addr
	// Reg is a register index, 0..15.
	Reg
	// Dim is a dimension given either as an immediate or as a register; see
	// DimImm and DimReg.
	Dim
	// Enum is a small field whose values have names (Field.Enum).
	Enum
)

// String returns the kind's name as the docs and header spell it.
func (k Kind) String() string {
	switch k {
	case Imm:
		return "imm"
	case Addr:
		return "addr"
	case Reg:
		return "reg"
	case Dim:
		return "dim"
	case Enum:
		return "enum"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Field widths fixed by their kind.
const (
	regBits = 4
	dimBits = 17
	// NumRegs is the size of the register file.
	NumRegs = 1 << regBits
	// dimRegFlag marks a register-form Dim; the register index then sits in
	// bits 0..3 and bits 4..15 are zero, which keeps the form canonical.
	dimRegFlag = 1 << 16
	dimImmMax  = dimRegFlag - 1
)

// Memory spaces an Addr field can point into.
var spaces = map[string]string{
	"act":  "on-chip activation buffer",
	"wgt":  "on-chip weight/parameter buffer",
	"dram": "external memory (DRAM)",
}

// spaceField is the name of the Enum field that gives the memory space of an
// Addr field whose Space is empty (load's dst, which may be either buffer).
const spaceField = "space"

// Field is one operand of an instruction.
type Field struct {
	Name string
	Bits int
	Kind Kind
	// Space is the memory space of an Addr field: "act", "wgt" or "dram".
	// It is empty when the instruction's "space" Enum field names it instead.
	Space string
	// Enum lists the names of an Enum field's values; value i is Enum[i].
	Enum []string
	Doc  string
}

// OpSpec describes one opcode.
type OpSpec struct {
	Op     Opcode
	Name   string
	Queue  Queue
	Doc    string
	Fields []Field
}

// layout is what the encoder needs beyond the table: where each field starts.
type layout struct {
	spec *OpSpec
	lsb  []int
	end  int // first bit after the last field; the rest is padding
}

type tableIndex struct {
	byOp   [256]*layout
	byName map[string]*layout
}

// index is built once from Table. An invalid table panics here, at package
// initialisation, rather than producing encodings the hardware disagrees
// with.
var index = mustIndex(Table)

func mustIndex(t []OpSpec) *tableIndex {
	if err := validateTable(t); err != nil {
		panic(err)
	}
	idx := &tableIndex{byName: make(map[string]*layout, len(t))}
	for i := range t {
		s := &t[i]
		l := &layout{spec: s, lsb: make([]int, len(s.Fields))}
		at := fieldsLSB
		for j, f := range s.Fields {
			l.lsb[j] = at
			at += f.Bits
		}
		l.end = at
		idx.byOp[s.Op] = l
		idx.byName[s.Name] = l
	}
	return idx
}

var identRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// validateTable checks the rules the encoder and the generated files rely
// on: unique opcodes, names usable as C identifiers, kinds with their fixed
// widths, enums that fit their bits, addresses with a known space, and
// fields that fit in an instruction.
func validateTable(t []OpSpec) error {
	ops := map[Opcode]string{}
	names := map[string]bool{}
	for _, s := range t {
		if s.Op == 0 {
			return fmt.Errorf("isa: table: %s: opcode 0 is reserved", s.Name)
		}
		if prev, dup := ops[s.Op]; dup {
			return fmt.Errorf("isa: table: %s and %s share opcode 0x%02x", prev, s.Name, uint8(s.Op))
		}
		ops[s.Op] = s.Name
		if !identRE.MatchString(s.Name) {
			return fmt.Errorf("isa: table: opcode 0x%02x: name %q is not a lower-case identifier", uint8(s.Op), s.Name)
		}
		if names[s.Name] {
			return fmt.Errorf("isa: table: name %s used twice", s.Name)
		}
		names[s.Name] = true
		if s.Queue > QueueStore {
			return fmt.Errorf("isa: table: %s: unknown queue %d", s.Name, s.Queue)
		}
		if err := checkDoc(s.Doc); err != nil {
			return fmt.Errorf("isa: table: %s: %v", s.Name, err)
		}
		fields := map[string]bool{}
		total := 0
		for _, f := range s.Fields {
			if !identRE.MatchString(f.Name) {
				return fmt.Errorf("isa: table: %s: field name %q is not a lower-case identifier", s.Name, f.Name)
			}
			if fields[f.Name] {
				return fmt.Errorf("isa: table: %s: field %s used twice", s.Name, f.Name)
			}
			fields[f.Name] = true
			if err := checkField(s, f); err != nil {
				return fmt.Errorf("isa: table: %s: field %s: %v", s.Name, f.Name, err)
			}
			if err := checkDoc(f.Doc); err != nil {
				return fmt.Errorf("isa: table: %s: field %s: %v", s.Name, f.Name, err)
			}
			total += f.Bits
		}
		if total > maxFieldBits {
			return fmt.Errorf("isa: table: %s: fields use %d bits, at most %d fit", s.Name, total, maxFieldBits)
		}
	}
	return nil
}

func checkField(s OpSpec, f Field) error {
	if f.Kind != Enum && f.Enum != nil {
		return fmt.Errorf("%v field has enum names", f.Kind)
	}
	if f.Kind != Addr && f.Space != "" {
		return fmt.Errorf("%v field has a memory space", f.Kind)
	}
	switch f.Kind {
	case Imm, Addr:
		if f.Bits < 1 || f.Bits > 64 {
			return fmt.Errorf("%d bits, want 1..64", f.Bits)
		}
	case Reg:
		if f.Bits != regBits {
			return fmt.Errorf("reg field has %d bits, want %d", f.Bits, regBits)
		}
	case Dim:
		if f.Bits != dimBits {
			return fmt.Errorf("dim field has %d bits, want %d", f.Bits, dimBits)
		}
	case Enum:
		if f.Bits < 1 || f.Bits > 8 {
			return fmt.Errorf("enum field has %d bits, want 1..8", f.Bits)
		}
		if len(f.Enum) == 0 || len(f.Enum) > 1<<f.Bits {
			return fmt.Errorf("%d enum names do not fit in %d bits", len(f.Enum), f.Bits)
		}
		seen := map[string]bool{}
		for _, e := range f.Enum {
			if !identRE.MatchString(e) || seen[e] {
				return fmt.Errorf("enum name %q is not a new lower-case identifier", e)
			}
			seen[e] = true
		}
	default:
		return fmt.Errorf("unknown kind %v", f.Kind)
	}
	if f.Kind != Addr {
		return nil
	}
	if f.Space != "" {
		if _, ok := spaces[f.Space]; !ok {
			return fmt.Errorf("unknown memory space %q", f.Space)
		}
		return nil
	}
	for _, g := range s.Fields {
		if g.Name == spaceField && g.Kind == Enum {
			for _, e := range g.Enum {
				if _, ok := spaces[e]; !ok {
					return fmt.Errorf("%s value %q is not a memory space", spaceField, e)
				}
			}
			return nil
		}
	}
	return fmt.Errorf("address has no Space and %s has no %q enum field", s.Name, spaceField)
}

// checkDoc keeps docs pasteable into a C comment and a Markdown table cell.
func checkDoc(doc string) error {
	switch {
	case doc == "":
		return fmt.Errorf("missing doc")
	case strings.ContainsAny(doc, "\n\r|"), strings.Contains(doc, "*/"):
		return fmt.Errorf("doc %q has a newline, '|' or '*/'", doc)
	}
	for _, r := range doc {
		if r < ' ' || r > '~' {
			return fmt.Errorf("doc %q is not printable ASCII", doc)
		}
	}
	return nil
}

// Lookup returns the table entry of op.
func Lookup(op Opcode) (*OpSpec, bool) {
	if l := index.byOp[op]; l != nil {
		return l.spec, true
	}
	return nil, false
}

// ByName returns the table entry whose mnemonic is name.
func ByName(name string) (*OpSpec, bool) {
	if l := index.byName[name]; l != nil {
		return l.spec, true
	}
	return nil, false
}

// DimImm returns the Dim value for the constant v. It panics when v does not
// fit in 16 bits: a larger value would silently turn into the register form.
func DimImm(v int) uint64 {
	if v < 0 || v > dimImmMax {
		panic(fmt.Sprintf("isa: DimImm(%d): want 0..%d", v, dimImmMax))
	}
	return uint64(v)
}

// DimReg returns the Dim value that reads register r at run time.
func DimReg(r int) uint64 {
	if r < 0 || r >= NumRegs {
		panic(fmt.Sprintf("isa: DimReg(%d): want 0..%d", r, NumRegs-1))
	}
	return dimRegFlag | uint64(r)
}

// ResolveDim returns the dimension v stands for given the register file, as
// the hardware does when the instruction issues. v is assumed valid (as
// Encode and Decode ensure).
func ResolveDim(v uint64, regs *[NumRegs]uint32) int {
	if v&dimRegFlag != 0 {
		return int(regs[v&(NumRegs-1)])
	}
	return int(v & dimImmMax)
}

// dimErr reports why v is not a valid Dim, or returns "" when it is.
func dimErr(v uint64) string {
	switch {
	case v>>dimBits != 0:
		return fmt.Sprintf("dim 0x%x does not fit in %d bits", v, dimBits)
	case v&dimRegFlag != 0 && v&(dimImmMax&^(NumRegs-1)) != 0:
		return fmt.Sprintf("register-form dim 0x%x has bits 4..15 set", v)
	}
	return ""
}

// Instr is one instruction. Args holds one value per field of the opcode, in
// table order.
type Instr struct {
	Op    Opcode
	Flags Flags
	Args  []uint64
}

// New builds an instruction. A wrong number of arguments, or an unknown
// opcode, is a bug in the caller and panics; values are checked by Encode.
func New(op Opcode, flags Flags, args ...uint64) Instr {
	s, ok := Lookup(op)
	if !ok {
		panic(fmt.Sprintf("isa: New: unknown opcode 0x%02x", uint8(op)))
	}
	if len(args) != len(s.Fields) {
		panic(fmt.Sprintf("isa: New: %s takes %d args, got %d", s.Name, len(s.Fields), len(args)))
	}
	// Copied so that a caller reusing its slice cannot change the
	// instruction afterwards; nil when there are no fields, like Decode.
	return Instr{Op: op, Flags: flags, Args: append([]uint64(nil), args...)}
}

// Arg returns the value of the field called name. It panics when the opcode
// has no such field, because field names are fixed at compile time.
func (in Instr) Arg(name string) uint64 {
	s, ok := Lookup(in.Op)
	if !ok {
		panic(fmt.Sprintf("isa: Arg(%q): unknown opcode 0x%02x", name, uint8(in.Op)))
	}
	for i, f := range s.Fields {
		if f.Name == name {
			if i >= len(in.Args) {
				panic(fmt.Sprintf("isa: Arg(%q): %s has only %d args", name, s.Name, len(in.Args)))
			}
			return in.Args[i]
		}
	}
	panic(fmt.Sprintf("isa: Arg(%q): %s has no such field", name, s.Name))
}
