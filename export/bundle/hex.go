package bundle

import (
	"bytes"
	"fmt"
	"math"
)

const hexDigits = "0123456789abcdef"

// HexWords renders data as Verilog $readmemh text: a `//` comment line, then
// one word per line as exactly 2·wordBytes lowercase hex digits. Word i is
// the little-endian integer of data[i·wordBytes:(i+1)·wordBytes], so a test
// bench that loads it into a memory of wordBytes-wide words sees the same
// bytes as the hardware reading data from DRAM. data is padded with zero
// bytes to a multiple of wordBytes. HexWords panics if wordBytes < 1.
func HexWords(data []byte, wordBytes int) []byte {
	if wordBytes < 1 {
		panic(fmt.Sprintf("bundle: HexWords: word size %d is not positive", wordBytes))
	}
	n := len(data) / wordBytes
	if len(data)%wordBytes != 0 {
		n++
	}
	out := make([]byte, 0, 64+2*len(data)+n)
	out = fmt.Appendf(out, "// %d words of %d bytes, little-endian\n", n, wordBytes)
	for i := range n {
		// Most significant byte first: hex numbers are written big-endian.
		for k := wordBytes - 1; k >= 0; k-- {
			var b byte
			if j := i*wordBytes + k; j < len(data) {
				b = data[j]
			}
			out = append(out, hexDigits[b>>4], hexDigits[b&0xf])
		}
		out = append(out, '\n')
	}
	return out
}

// ParseHexWords is the inverse of HexWords: it returns the bytes of the
// words in text, including HexWords' zero padding. It accepts exactly what
// HexWords produces, comments anywhere and an optional final newline: lines
// starting with `//`, and words of exactly 2·wordBytes lowercase hex digits.
// Anything else $readmemh would tolerate (blank lines, @addresses,
// uppercase) is refused, because a golden file that differs from the
// canonical form indicates it was edited or damaged.
func ParseHexWords(text []byte, wordBytes int) ([]byte, error) {
	words, err := parseHexWords(text, wordBytes)
	if err != nil {
		return nil, fmt.Errorf("bundle: hex: %w", err)
	}
	return words, nil
}

// parseHexWords is ParseHexWords with errors that do not repeat the package
// prefix, for embedding in the reader's messages.
func parseHexWords(text []byte, wordBytes int) ([]byte, error) {
	if wordBytes < 1 || wordBytes > math.MaxInt/2 {
		return nil, fmt.Errorf("word size %d is out of range", wordBytes)
	}
	digits := 2 * wordBytes
	out := make([]byte, 0, len(text)/2) // each byte needs at least two digits
	for lineNo := 1; len(text) > 0; lineNo++ {
		var line []byte
		line, text, _ = bytes.Cut(text, []byte{'\n'})
		if bytes.HasPrefix(line, []byte("//")) {
			continue
		}
		if len(line) != digits {
			return nil, fmt.Errorf("line %d has %d characters, want %d hex digits", lineNo, len(line), digits)
		}
		for k := range wordBytes {
			hi, ok1 := unhex(line[digits-2-2*k])
			lo, ok2 := unhex(line[digits-1-2*k])
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("line %d is not lowercase hex", lineNo)
			}
			out = append(out, hi<<4|lo)
		}
	}
	return out, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
