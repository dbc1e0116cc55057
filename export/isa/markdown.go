package isa

import (
	"fmt"
	"strings"
)

// Markdown returns the ISA reference (docs/isa.md): the encoding rules, then
// one section per opcode with its fields and their bit positions.
func Markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	p("<!-- Code generated from %s by \"go generate ./export/isa\"; DO NOT EDIT. -->\n\n", generatedFrom)
	p("# Accelerator instruction set\n\n")
	p("The instruction set of vitc's FPGA Vision-Transformer accelerator. ")
	p("This page, the C header `export/isa/vitc_isa.h` and the Go encoder and ")
	p("decoder (`vitc/export/isa`) are all generated from, or driven by, the one ")
	p("table in `%s`; change the table and run `go generate ./export/isa`.\n\n", generatedFrom)

	p("## Encoding\n\n")
	p("- Every instruction is %d bytes (%d bits), little-endian: bit *i* of the ", Size, instrBits)
	p("instruction is bit *i* mod 8 of byte *i* / 8.\n")
	p("- Bits 0..7 hold the opcode and bits 8..15 the flags.\n")
	p("- The fields start at bit %d and are packed in the order listed for the ", fieldsLSB)
	p("opcode, each with its own width, least significant bit first. They take ")
	p("at most %d bits.\n", maxFieldBits)
	p("- Every bit after the last field is zero. A decoder rejects anything else, ")
	p("so each instruction has exactly one encoding.\n")
	p("- Opcode 0 is not an instruction, so zeroed memory never decodes as a program.\n\n")

	p("## Queues and flags\n\n")
	p("Every opcode belongs to one of three in-order queues: `load`, `compute` ")
	p("and `store`. The queues run concurrently, and the flags are the only ")
	p("ordering between them: a wait flag holds the instruction back until every ")
	p("earlier instruction of that queue has finished.\n\n")
	p("| bit | flag | disassembly suffix | waits for |\n|---|---|---|---|\n")
	for _, f := range flagNames {
		p("| %d | `%s` | `.%s` | %s queue |\n", flagBit(f.flag), flagGoName(f.flag), f.name, Queue(flagBit(f.flag)))
	}
	p("| 3..7 | reserved | | must be zero |\n\n")
	p("A disassembled instruction shows its flags as suffixes in the order above, ")
	p("e.g. `gemm.wl.ws`.\n\n")

	p("## Field kinds\n\n")
	p("| kind | width | meaning | disassembly |\n|---|---|---|---|\n")
	p("| imm | any | unsigned immediate | decimal: `64` |\n")
	p("| addr | any | byte address in a memory space (below) | `act:0x1a0` |\n")
	p("| reg | %d | register index 0..%d | `r3` |\n", regBits, NumRegs-1)
	p("| dim | %d | a dimension: an immediate (bit 16 clear, value in bits 0..15) ", dimBits)
	p("or a register (bit 16 set, register index in bits 0..3, bits 4..15 zero), ")
	p("so that shapes can follow token counts that are only known at run time | `64` or `r3` |\n")
	p("| enum | any | a value with a name; it must be less than the number of names | the name |\n\n")
	p("Memory spaces of addresses:\n\n")
	for _, sp := range sortedSpaces() {
		p("- `%s`: %s\n", sp, spaces[sp])
	}
	p("\nAn address field names its space in the table below; `load`'s `dst` is ")
	p("in the space its `%s` field selects.\n\n", spaceField)

	p("## Register file\n\n")
	p("%d registers `r0`..`r%d` of 32 bits each. `setr` writes one, `topk` writes ", NumRegs, NumRegs-1)
	p("the token count that remains after pruning, and dim fields in register ")
	p("form read them when the instruction issues.\n\n")

	p("## Opcodes\n\n")
	p("| value | name | queue | summary |\n|---|---|---|---|\n")
	for i := range Table {
		s := &Table[i]
		p("| 0x%02x | [`%s`](#%s) | %s | %s |\n", uint8(s.Op), s.Name, s.Name, s.Queue, mdText(firstSentence(s.Doc)))
	}
	for i := range Table {
		l := index.byOp[Table[i].Op]
		s := l.spec
		p("\n### %s\n\n", s.Name)
		p("Opcode 0x%02x, %s queue.\n\n%s\n\n", uint8(s.Op), s.Queue, mdText(s.Doc))
		if len(s.Fields) == 0 {
			p("No fields: bits %d..%d are zero.\n", fieldsLSB, instrBits-1)
			continue
		}
		p("| field | bits | kind | meaning |\n|---|---|---|---|\n")
		for j := range s.Fields {
			f := &s.Fields[j]
			p("| `%s` | %d..%d | %s | %s |\n", f.Name, l.lsb[j], l.lsb[j]+f.Bits-1, kindDesc(s, f), mdText(f.Doc))
		}
		p("\nBits %d..%d are zero.\n", l.end, instrBits-1)
	}
	return b.String()
}

func flagBit(f Flags) int {
	for i := 0; i < 8; i++ {
		if f == 1<<i {
			return i
		}
	}
	return -1
}

func flagGoName(f Flags) string {
	switch f {
	case WaitLoad:
		return "WaitLoad"
	case WaitCompute:
		return "WaitCompute"
	case WaitStore:
		return "WaitStore"
	}
	return fmt.Sprintf("Flags(0x%02x)", uint8(f))
}

// firstSentence shortens a doc for the opcode summary table.
func firstSentence(doc string) string {
	if i := strings.Index(doc, ". "); i >= 0 {
		return doc[:i+1]
	}
	return doc
}

// mdText escapes the characters of a table doc that Markdown would read as
// markup: the '*' of products such as a*b would otherwise start emphasis.
var mdText = strings.NewReplacer(`\`, `\\`, "*", `\*`).Replace
