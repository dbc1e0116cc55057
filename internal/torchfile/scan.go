package torchfile

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// argKind is how a pickle opcode's argument is stored in the stream.
type argKind int8

const (
	argNone  argKind = iota
	argFixed         // n bytes (n in the table)
	argLine          // one newline-terminated line
	argLine2         // two lines (GLOBAL, INST)
	argLen1          // a 1-byte length, then that many bytes
	argLen4          // a 4-byte little-endian length, then that many bytes
	argLen8          // an 8-byte little-endian length, then that many bytes
	argFrame         // an 8-byte frame length; the frame's opcodes follow in line
)

type opArg struct {
	kind argKind
	n    int
}

// pickleOps is every opcode of pickle protocols 0–5 (Python's pickletools
// table) with its argument's form. An opcode not here is refused before
// gopickle sees it (its dispatch table would index out of range on 0xff).
var pickleOps = map[byte]opArg{
	'(': {argNone, 0}, '.': {argNone, 0}, '0': {argNone, 0}, '1': {argNone, 0}, '2': {argNone, 0},
	'N': {argNone, 0}, '}': {argNone, 0}, 'a': {argNone, 0}, 'b': {argNone, 0}, 'd': {argNone, 0},
	'e': {argNone, 0}, 'l': {argNone, 0}, 't': {argNone, 0}, 's': {argNone, 0}, 'u': {argNone, 0},
	']': {argNone, 0}, ')': {argNone, 0}, 'R': {argNone, 0}, 'o': {argNone, 0}, 'Q': {argNone, 0},
	0x88: {argNone, 0}, 0x89: {argNone, 0}, 0x85: {argNone, 0}, 0x86: {argNone, 0}, 0x87: {argNone, 0},
	0x81: {argNone, 0}, 0x8f: {argNone, 0}, 0x90: {argNone, 0}, 0x91: {argNone, 0}, 0x92: {argNone, 0},
	0x93: {argNone, 0}, 0x94: {argNone, 0}, 0x97: {argNone, 0}, 0x98: {argNone, 0},
	'K': {argFixed, 1}, 'h': {argFixed, 1}, 'q': {argFixed, 1}, 0x80: {argFixed, 1}, 0x82: {argFixed, 1},
	'M': {argFixed, 2}, 0x83: {argFixed, 2},
	'J': {argFixed, 4}, 'j': {argFixed, 4}, 'r': {argFixed, 4}, 0x84: {argFixed, 4},
	'G': {argFixed, 8},
	'I': {argLine, 0}, 'L': {argLine, 0}, 'F': {argLine, 0}, 'S': {argLine, 0}, 'V': {argLine, 0},
	'g': {argLine, 0}, 'p': {argLine, 0}, 'P': {argLine, 0},
	'c': {argLine2, 0}, 'i': {argLine2, 0},
	'U': {argLen1, 0}, 'C': {argLen1, 0}, 0x8c: {argLen1, 0}, 0x8a: {argLen1, 0},
	'T': {argLen4, 0}, 'B': {argLen4, 0}, 'X': {argLen4, 0}, 0x8b: {argLen4, 0},
	0x8d: {argLen8, 0}, 0x8e: {argLen8, 0}, 0x96: {argLen8, 0},
	0x95: {argFrame, 0},
}

// maxLine bounds a text argument (a GLOBAL's module or name, a decimal
// number): real ones are a few dozen bytes.
const maxLine = 4096

// scanPickle walks the opcodes of b up to STOP and checks that every
// argument lies inside b. gopickle allocates a buffer of whatever length an
// opcode claims before it reads, so a 20-byte stream claiming 2^40 bytes
// would exhaust memory; after this check no claim exceeds len(b).
func scanPickle(b []byte) error {
	for i := 0; i < len(b); {
		op := b[i]
		a, ok := pickleOps[op]
		if !ok {
			return fmt.Errorf("pickle: unknown opcode 0x%02x at byte %d", op, i)
		}
		i++
		rest := len(b) - i
		var n uint64
		switch a.kind {
		case argNone:
			if op == '.' {
				return nil
			}
		case argFixed:
			n = uint64(a.n)
		case argLine, argLine2:
			lines := 1
			if a.kind == argLine2 {
				lines = 2
			}
			for range lines {
				j := bytes.IndexByte(b[i+int(n):min(len(b), i+int(n)+maxLine)], '\n')
				if j < 0 {
					return fmt.Errorf("pickle: opcode %q at byte %d: no line end within %d bytes", op, i-1, maxLine)
				}
				n += uint64(j + 1)
			}
		case argLen1:
			if rest < 1 {
				return fmt.Errorf("pickle: truncated at byte %d", i)
			}
			n = 1 + uint64(b[i])
		case argLen4:
			if rest < 4 {
				return fmt.Errorf("pickle: truncated at byte %d", i)
			}
			l := binary.LittleEndian.Uint32(b[i:])
			if int32(l) < 0 && op != 'B' && op != 'X' {
				return fmt.Errorf("pickle: negative length at byte %d", i)
			}
			n = 4 + uint64(l)
		case argLen8, argFrame:
			if rest < 8 {
				return fmt.Errorf("pickle: truncated at byte %d", i)
			}
			l := binary.LittleEndian.Uint64(b[i:])
			if l > uint64(rest-8) {
				return fmt.Errorf("pickle: opcode 0x%02x at byte %d claims %d bytes, %d remain", op, i-1, l, rest-8)
			}
			n = 8
			if a.kind == argLen8 {
				n += l
			}
		}
		if n > uint64(rest) {
			return fmt.Errorf("pickle: opcode 0x%02x at byte %d claims %d bytes, %d remain", op, i-1, n, rest)
		}
		i += int(n)
	}
	return fmt.Errorf("pickle: no STOP opcode")
}
