package isa

import (
	"fmt"
	"sort"
	"strings"
)

// generatedFrom names the source of the generated files in their banners.
const generatedFrom = "export/isa/table.go"

// cName turns table names into the upper-case parts of C macro names.
func cName(s string) string { return strings.ToUpper(s) }

// kindDesc describes a field's kind and, where it has one, its memory space
// or value names, for the C comments and the Markdown tables.
func kindDesc(s *OpSpec, f *Field) string {
	switch f.Kind {
	case Addr:
		if f.Space == "" {
			for _, g := range s.Fields {
				if g.Name == spaceField {
					return "addr " + strings.Join(g.Enum, "/") + ", per " + spaceField
				}
			}
		}
		return "addr " + f.Space
	case Enum:
		names := make([]string, len(f.Enum))
		for i, e := range f.Enum {
			names[i] = fmt.Sprintf("%d=%s", i, e)
		}
		return "enum " + strings.Join(names, ", ")
	}
	return f.Kind.String()
}

// sortedSpaces lists the memory spaces in a fixed order for the generated
// files.
func sortedSpaces() []string {
	names := make([]string, 0, len(spaces))
	for n := range spaces {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// CHeader returns the C99 header vitc_isa.h: the instruction size, flags,
// opcodes, and the bit offset and width of every field, so that the
// accelerator's control logic and host tools decode exactly what Encode
// writes.
func CHeader() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	p("/* Code generated from %s by \"go generate ./export/isa\"; DO NOT EDIT. */\n\n", generatedFrom)
	p("/*\n")
	p(" * vitc_isa.h: instruction set of the vitc Vision-Transformer accelerator.\n")
	p(" *\n")
	p(" * Every instruction is %d bytes, little-endian: bit i is bit (i %% 8) of\n", Size)
	p(" * byte (i / 8). Bits 0..7 hold the opcode, bits 8..15 the flags, and the\n")
	p(" * fields follow from bit %d in the order listed below, each LSB first.\n", fieldsLSB)
	p(" * All bits after an opcode's last field (VITC_<OP>_END) are zero.\n")
	p(" *\n")
	p(" * Read a field with\n")
	p(" *     vitc_isa_field(instr, VITC_GEMM_ROWS_LSB, VITC_GEMM_ROWS_BITS)\n")
	p(" */\n\n")
	p("#ifndef VITC_ISA_H\n#define VITC_ISA_H\n\n")
	p("#include <stdint.h>\n\n")

	p("#define VITC_ISA_INSTR_BYTES %d\n", Size)
	p("#define VITC_ISA_OPCODE_LSB 0\n#define VITC_ISA_OPCODE_BITS 8\n")
	p("#define VITC_ISA_FLAGS_LSB 8\n#define VITC_ISA_FLAGS_BITS 8\n")
	p("#define VITC_ISA_FIELDS_LSB %d\n\n", fieldsLSB)

	p("/* Flags: the instruction does not start before every earlier instruction\n")
	p(" * of the named queue has finished. The other flag bits are reserved (0). */\n")
	p("#define VITC_FLAG_WAIT_LOAD 0x%02xu\n", uint8(WaitLoad))
	p("#define VITC_FLAG_WAIT_COMPUTE 0x%02xu\n", uint8(WaitCompute))
	p("#define VITC_FLAG_WAIT_STORE 0x%02xu\n", uint8(WaitStore))
	p("#define VITC_FLAG_RESERVED_MASK 0x%02xu\n\n", uint8(^flagsValid))

	p("/* Queues; each opcode belongs to one (VITC_<OP>_QUEUE). */\n")
	for _, q := range []Queue{QueueLoad, QueueCompute, QueueStore} {
		p("#define VITC_QUEUE_%s %d\n", cName(q.String()), q)
	}
	p("\n")

	p("/* Memory spaces of address fields:\n")
	for _, sp := range sortedSpaces() {
		p(" *   %-4s  %s\n", sp, spaces[sp])
	}
	p(" */\n\n")

	p("/* Register file: %d x uint32_t, r0..r%d. */\n", NumRegs, NumRegs-1)
	p("#define VITC_NUM_REGS %d\n\n", NumRegs)

	p("/* Dim fields: %d bits. Bit 16 clear: the value is bits 0..15.\n", dimBits)
	p(" * Bit 16 set: the value is register bits 0..3; bits 4..15 are zero. */\n")
	p("#define VITC_DIM_BITS %d\n", dimBits)
	p("#define VITC_DIM_REG_FLAG 0x%xu\n", dimRegFlag)
	p("#define VITC_DIM_IS_REG(v) (((v) & VITC_DIM_REG_FLAG) != 0)\n")
	p("#define VITC_DIM_REG(v) ((unsigned)((v) & 0x%xu))\n", NumRegs-1)
	p("#define VITC_DIM_IMM(v) ((unsigned)((v) & 0x%xu))\n\n", dimImmMax)

	p("/* Opcodes. */\n")
	for i := range Table {
		s := &Table[i]
		p("#define VITC_OP_%s 0x%02x\n", cName(s.Name), uint8(s.Op))
	}

	for i := range Table {
		l := index.byOp[Table[i].Op]
		s := l.spec
		op := cName(s.Name)
		p("\n%s", cComment(fmt.Sprintf("%s (0x%02x, %s queue): %s", s.Name, uint8(s.Op), s.Queue, s.Doc)))
		p("#define VITC_%s_QUEUE VITC_QUEUE_%s\n", op, cName(s.Queue.String()))
		for j := range s.Fields {
			f := &s.Fields[j]
			fn := op + "_" + cName(f.Name)
			p("%s", cComment(fmt.Sprintf("%s.%s (%s, bits %d..%d): %s", s.Name, f.Name, kindDesc(s, f), l.lsb[j], l.lsb[j]+f.Bits-1, f.Doc)))
			p("#define VITC_%s_LSB %d\n", fn, l.lsb[j])
			p("#define VITC_%s_BITS %d\n", fn, f.Bits)
			for v, e := range f.Enum {
				p("#define VITC_%s_%s %d\n", fn, cName(e), v)
			}
		}
		p("#define VITC_%s_END %d\n", op, l.end)
	}

	p(`
/* Returns bits lsb..lsb+bits-1 of an instruction (bits <= 64). */
static inline uint64_t vitc_isa_field(const uint8_t instr[32], unsigned lsb, unsigned bits)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < bits; i++) {
		unsigned b = lsb + i;
		v |= (uint64_t)((instr[b >> 3] >> (b & 7u)) & 1u) << i;
	}
	return v;
}

#endif /* VITC_ISA_H */
`)
	return b.String()
}

// cComment wraps text into a C block comment of lines at most 78 columns
// wide, so that the header reads well in an editor next to the HDL.
func cComment(text string) string {
	const width = 78
	var b strings.Builder
	line := "/*"
	for _, w := range strings.Fields(text) {
		if len(line)+1+len(w) > width-3 && line != "/*" && line != " *" {
			b.WriteString(line + "\n")
			line = " *"
		}
		line += " " + w
	}
	b.WriteString(line + " */\n")
	return b.String()
}
