package bundle

import (
	"bytes"
	"strings"
	"testing"
)

func TestHexWordsExact(t *testing.T) {
	data := []byte{0x01, 0x02, 0x03, 0x04, 0xaa, 0xbb}
	got := string(HexWords(data, 4))
	want := "// 2 words of 4 bytes, little-endian\n" +
		"04030201\n" +
		"0000bbaa\n"
	if got != want {
		t.Errorf("HexWords = %q, want %q", got, want)
	}
	if got, want := string(HexWords(data, 1)), "// 6 words of 1 bytes, little-endian\n01\n02\n03\n04\naa\nbb\n"; got != want {
		t.Errorf("HexWords(1) = %q, want %q", got, want)
	}
	if got, want := string(HexWords(nil, 32)), "// 0 words of 32 bytes, little-endian\n"; got != want {
		t.Errorf("HexWords(nil) = %q, want %q", got, want)
	}
}

func TestHexWordsRoundTrip(t *testing.T) {
	for _, w := range []int{1, 2, 3, 4, 8, 16, 32} {
		for n := range 70 {
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(i*73 + 5)
			}
			text := HexWords(data, w)
			words, err := ParseHexWords(text, w)
			if err != nil {
				t.Fatalf("w=%d n=%d: %v", w, n, err)
			}
			padded := (n + w - 1) / w * w
			if len(words) != padded || !bytes.Equal(words[:n], data) || bytes.Count(words[n:], []byte{0}) != padded-n {
				t.Fatalf("w=%d n=%d: round trip gave %x, want %x and zero padding", w, n, words, data)
			}
			if err := hexMatches(text, data); err != nil {
				t.Fatalf("w=%d n=%d: hexMatches: %v", w, n, err)
			}
			if n > 0 {
				// Dropping the last byte only goes unnoticed when it was a
				// zero that the padding of its word can account for.
				accept := padded-n+1 < w && data[n-1] == 0
				if err := hexMatches(text, data[:n-1]); (err == nil) != accept {
					t.Fatalf("w=%d n=%d: hexMatches of a shorter .bin = %v", w, n, err)
				}
			}
		}
	}
}

func TestParseHexWords(t *testing.T) {
	got, err := ParseHexWords([]byte("// c\n0201\n// mid\n0403"), 2) // no final newline
	if err != nil || !bytes.Equal(got, []byte{1, 2, 3, 4}) {
		t.Errorf("ParseHexWords = %x, %v", got, err)
	}
	for _, tc := range []struct {
		text string
		w    int
		want string
	}{
		{"0201\n", 0, "word size 0"},
		{"020\n", 2, "line 1 has 3 characters"},
		{"0201\n\n", 2, "line 2 has 0 characters"},
		{"02AB\n", 2, "line 1 is not lowercase hex"},
		{"0x01\n", 2, "line 1 is not lowercase hex"},
		{"0201\r\n", 2, "line 1 has 5 characters"},
		{"@10\n", 2, "line 1 has 3 characters"},
	} {
		_, err := ParseHexWords([]byte(tc.text), tc.w)
		if err == nil || !strings.HasPrefix(err.Error(), "bundle: hex: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseHexWords(%q, %d) = %v, want %q", tc.text, tc.w, err, tc.want)
		}
	}
}
