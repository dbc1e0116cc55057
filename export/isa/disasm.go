package isa

import (
	"fmt"
	"strconv"
	"strings"
)

// String returns one line of disassembly, such as
//
//	gemm.wl dst=act:0x100 src=act:0x0 src_stride=64 rows=r1 k=64 n=192 wgt=wgt:0x2000 bias=wgt:0x8000
//
// Wait flags become the suffixes .wl, .wc and .ws. String never panics:
// values that Encode would reject are still shown, marked with '?', so a
// broken instruction can be printed while debugging it.
func (in Instr) String() string {
	var sb strings.Builder
	s, ok := Lookup(in.Op)
	if ok {
		sb.WriteString(s.Name)
	} else {
		fmt.Fprintf(&sb, "op(0x%02x)", uint8(in.Op))
	}
	for _, f := range flagNames {
		if in.Flags&f.flag != 0 {
			sb.WriteString("." + f.name)
		}
	}
	if r := in.Flags &^ flagsValid; r != 0 {
		fmt.Fprintf(&sb, ".?0x%02x", uint8(r))
	}
	if !ok || len(in.Args) != len(s.Fields) {
		for _, v := range in.Args {
			fmt.Fprintf(&sb, " ?0x%x", v)
		}
		return sb.String()
	}
	for i := range s.Fields {
		f := &s.Fields[i]
		sb.WriteString(" " + f.Name + "=")
		sb.WriteString(formatArg(s, f, in.Args, in.Args[i]))
	}
	return sb.String()
}

func formatArg(s *OpSpec, f *Field, args []uint64, v uint64) string {
	if checkValue(f, v) != "" {
		return fmt.Sprintf("?0x%x", v)
	}
	switch f.Kind {
	case Addr:
		return fmt.Sprintf("%s:0x%x", addrSpace(s, f, args), v)
	case Reg:
		return "r" + strconv.FormatUint(v, 10)
	case Dim:
		if v&dimRegFlag != 0 {
			return "r" + strconv.FormatUint(v&(NumRegs-1), 10)
		}
		return strconv.FormatUint(v, 10)
	case Enum:
		return f.Enum[v]
	}
	return strconv.FormatUint(v, 10)
}

// addrSpace names the memory space of an Addr field, reading the opcode's
// space enum when the table leaves Space empty.
func addrSpace(s *OpSpec, f *Field, args []uint64) string {
	if f.Space != "" {
		return f.Space
	}
	for i, g := range s.Fields {
		if g.Name == spaceField && i < len(args) && args[i] < uint64(len(g.Enum)) {
			return g.Enum[args[i]]
		}
	}
	return "?"
}

// Disassemble lists a program, one instruction per line, each preceded by
// its index so that errors and traces naming an index can be matched up.
func Disassemble(p []Instr) string {
	var sb strings.Builder
	for i, in := range p {
		fmt.Fprintf(&sb, "%5d  %s\n", i, in)
	}
	return sb.String()
}
