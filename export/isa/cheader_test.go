package isa

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCHeaderMacrosUnique guards against two table names that collide once
// upper-cased and joined with '_' (op "a_b" field "c" versus op "a" field
// "b_c"), which C would reject or, worse, silently redefine.
func TestCHeaderMacrosUnique(t *testing.T) {
	h := CHeader()
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#define (\w+)`).FindAllStringSubmatch(h, -1) {
		if seen[m[1]] {
			t.Errorf("macro %s defined twice", m[1])
		}
		seen[m[1]] = true
	}
	for _, want := range []string{"VITC_ISA_INSTR_BYTES", "VITC_OP_GEMM", "VITC_GEMM_DST_LSB", "VITC_GEMM_DST_BITS", "VITC_FLAG_WAIT_LOAD", "VITC_MATMUL_LAYOUT_NT"} {
		if !seen[want] {
			t.Errorf("header lacks %s", want)
		}
	}
	for _, want := range []string{"#define VITC_OP_GEMM 0x04\n", "#define VITC_GEMM_DST_LSB 16\n", "#define VITC_GEMM_DST_BITS 32\n", "#define VITC_ISA_INSTR_BYTES 32\n"} {
		if !strings.Contains(h, want) {
			t.Errorf("header lacks %q", want)
		}
	}
}

// TestCHeaderCompiles builds a C program against the header that decodes
// every field of one random instruction per opcode through the generated
// macros, and checks that it reads the values Go encoded.
func TestCHeaderCompiles(t *testing.T) {
	cc := ""
	for _, name := range []string{"cc", "gcc"} {
		if p, err := exec.LookPath(name); err == nil {
			cc = p
			break
		}
	}
	if cc == "" {
		t.Skip("no C compiler (cc or gcc) on PATH")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "vitc_isa.h"), []byte(CHeader()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.c"), []byte(cProgram()), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "decode")
	out, err := exec.Command(cc, "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", "-o", bin, filepath.Join(dir, "main.c")).CombinedOutput()
	if err != nil {
		t.Fatalf("compiling against the header: %v\n%s", err, out)
	}

	rng := rand.New(rand.NewPCG(5, 6))
	var input, want strings.Builder
	for i := range Table {
		in := randInstr(rng, &Table[i])
		b := mustEncode(t, in)
		input.WriteString(hex.EncodeToString(b[:]) + "\n")
		want.WriteString(cExpected(in) + "\n")
	}
	cmd := exec.Command(bin)
	cmd.Stdin = strings.NewReader(input.String())
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("running the C decoder: %v", err)
	}
	gotLines := strings.Split(string(got), "\n")
	for i, w := range strings.Split(want.String(), "\n") {
		if i >= len(gotLines) || gotLines[i] != w {
			g := ""
			if i < len(gotLines) {
				g = gotLines[i]
			}
			t.Errorf("line %d: C read\n%s\nGo encoded\n%s", i, g, w)
		}
	}
}

// cExpected is what the C program prints for in.
func cExpected(in Instr) string {
	s, _ := Lookup(in.Op)
	line := fmt.Sprintf("%s flags=%d queue=%d", s.Name, in.Flags, s.Queue)
	for i, f := range s.Fields {
		v := in.Args[i]
		line += fmt.Sprintf(" %s=%d", f.Name, v)
		switch f.Kind {
		case Dim:
			if v&dimRegFlag != 0 {
				line += fmt.Sprintf("/r%d", v&(NumRegs-1))
			} else {
				line += fmt.Sprintf("/%d", v)
			}
		case Enum:
			line += "(" + f.Enum[v] + ")"
		}
	}
	return line
}

// cProgram returns a C program that reads hex-encoded instructions, one per
// line, and prints each with cExpected's format, using only the header's
// macros and vitc_isa_field.
func cProgram() string {
	var b strings.Builder
	b.WriteString(`#include <stdio.h>
#include "vitc_isa.h"

static unsigned hexval(int c)
{
	return (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
}

int main(void)
{
	char line[256];

	while (fgets(line, sizeof line, stdin)) {
		uint8_t in[VITC_ISA_INSTR_BYTES];
		unsigned long long v;
		unsigned op, flags, i;

		(void)v;
		for (i = 0; i < VITC_ISA_INSTR_BYTES; i++)
			in[i] = (uint8_t)(hexval(line[2 * i]) << 4 | hexval(line[2 * i + 1]));
		op = (unsigned)vitc_isa_field(in, VITC_ISA_OPCODE_LSB, VITC_ISA_OPCODE_BITS);
		flags = (unsigned)vitc_isa_field(in, VITC_ISA_FLAGS_LSB, VITC_ISA_FLAGS_BITS);
		switch (op) {
`)
	for _, s := range Table {
		op := cName(s.Name)
		fmt.Fprintf(&b, "\t\tcase VITC_OP_%s:\n", op)
		fmt.Fprintf(&b, "\t\t\tprintf(\"%s flags=%%u queue=%%d\", flags, VITC_%s_QUEUE);\n", s.Name, op)
		for _, f := range s.Fields {
			m := "VITC_" + op + "_" + cName(f.Name)
			fmt.Fprintf(&b, "\t\t\tv = vitc_isa_field(in, %s_LSB, %s_BITS);\n", m, m)
			fmt.Fprintf(&b, "\t\t\tprintf(\" %s=%%llu\", v);\n", f.Name)
			switch f.Kind {
			case Dim:
				b.WriteString("\t\t\tif (VITC_DIM_IS_REG(v))\n\t\t\t\tprintf(\"/r%u\", VITC_DIM_REG(v));\n")
				b.WriteString("\t\t\telse\n\t\t\t\tprintf(\"/%u\", VITC_DIM_IMM(v));\n")
			case Enum:
				for _, e := range f.Enum {
					fmt.Fprintf(&b, "\t\t\tif (v == %s_%s)\n\t\t\t\tprintf(\"(%s)\");\n", m, cName(e), e)
				}
			}
		}
		b.WriteString("\t\t\tbreak;\n")
	}
	b.WriteString(`		default:
			printf("unknown opcode %u", op);
		}
		printf("\n");
	}
	return 0;
}
`)
	return b.String()
}
