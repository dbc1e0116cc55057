package datasets

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// digitsRow renders one CSV row whose pixels are (i+j) mod 17.
func digitsRow(i, label int) string {
	var b strings.Builder
	for j := range 64 {
		fmt.Fprintf(&b, "%d,", (i+j)%17)
	}
	fmt.Fprintf(&b, "%d\n", label)
	return b.String()
}

func digitsCSV(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(digitsRow(i, i%10))
	}
	return b.String()
}

func gzipBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestLoadDigitsPlainAndGzip(t *testing.T) {
	dir := t.TempDir()
	csv := []byte(digitsCSV(103) + "\n")
	plain, gz := filepath.Join(dir, "d.csv"), filepath.Join(dir, "d.csv.gz")
	os.WriteFile(plain, csv, 0o644)
	os.WriteFile(gz, gzipBytes(t, csv), 0o644)
	for _, p := range []string{plain, gz} {
		d, err := Load("digits:"+p, 1)
		if err != nil {
			t.Fatal(err)
		}
		if d.C != 1 || d.H != 8 || d.W != 8 || len(d.Classes) != 10 || d.FlipOK {
			t.Fatalf("%s: got %dx%dx%d, %d classes, FlipOK %v", p, d.C, d.H, d.W, len(d.Classes), d.FlipOK)
		}
		if d.Train.Len() != 82 || d.Test.Len() != 21 {
			t.Fatalf("%s: split %d/%d, want 82/21", p, d.Train.Len(), d.Test.Len())
		}
		if v := d.Train.X[1]; v != 1.0/16 {
			t.Fatalf("pixel scaled to %v, want 1/16", v)
		}
	}
}

func TestParseDigitsCSVErrors(t *testing.T) {
	good := digitsRow(0, 3)
	cases := map[string]string{
		"wrong column count": good + "1,2,3\n",
		"not a number":       strings.Replace(good, "5,", "five,", 1),
		"pixel out of range": strings.Replace(good, "16,", "17,", 1),
		"negative pixel":     "-1" + good[1:],
		"NaN pixel":          "NaN" + good[1:],
		"label out of range": strings.TrimSuffix(good, "3\n") + "10\n",
		"fractional label":   strings.TrimSuffix(good, "3\n") + "3.5\n",
		"empty":              "\n\n",
		"overlong line":      strings.Repeat("1", digitsMaxLine+10),
	}
	for name, in := range cases {
		if _, _, err := ParseDigitsCSV(strings.NewReader(in)); err == nil {
			t.Errorf("%s: no error", name)
		} else if name != "empty" && !strings.Contains(err.Error(), "line ") {
			t.Errorf("%s: error %q does not name the line", name, err)
		}
	}
	_, _, err := ParseDigitsCSV(strings.NewReader(good + good + "1,2\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "line 3: 2 columns") {
		t.Errorf("got %v, want a line-3 column error", err)
	}
}

func TestLoadDigitsErrorNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.csv")
	os.WriteFile(p, []byte("1,2,3\n"), 0o644)
	_, err := LoadDigits(p)
	if err == nil || !strings.HasPrefix(err.Error(), "digits: "+p+": line 1:") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("got %q", err)
	}
}

func TestStratifiedSplitCounts(t *testing.T) {
	for _, counts := range [][]int{{178, 182, 177, 183, 181, 182, 181, 179, 174, 180}, {1, 2, 3}, {5, 5}, {7}, {0, 4, 11}} {
		var y []int
		// Interleave classes so the split must track each class separately.
		for left := true; left; {
			left = false
			for c := range counts {
				if counts[c] > 0 {
					counts[c]--
					y = append(y, c)
					left = true
				}
			}
		}
		n := len(y)
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(i)
		}
		train, test := stratifiedSplit(x, y, 1, len(counts))
		if test.Len() != (n+4)/5 || train.Len()+test.Len() != n {
			t.Fatalf("n=%d: split %d/%d, want test %d", n, train.Len(), test.Len(), (n+4)/5)
		}
		per := make([]int, len(counts))
		all := make([]int, len(counts))
		for _, c := range y {
			all[c]++
		}
		for _, c := range test.Y {
			per[c]++
		}
		for c := range per {
			if per[c] != all[c]/5 && per[c] != all[c]/5+1 {
				t.Errorf("n=%d class %d: %d of %d in test", n, c, per[c], all[c])
			}
		}
		for i, c := range train.Y {
			if y[int(train.X[i])] != c {
				t.Fatal("labels and images separated")
			}
		}
	}
}

func TestRealDigits(t *testing.T) {
	path := os.Getenv("VITC_DIGITS")
	if path == "" {
		t.Skip("VITC_DIGITS not set (point it at scikit-learn's digits.csv.gz)")
	}
	d, err := Load("digits:"+path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d.Train.Len() != 1437 || d.Test.Len() != 360 {
		t.Fatalf("split %d/%d, want 1437/360", d.Train.Len(), d.Test.Len())
	}
	tr, te := make([]int, 10), make([]int, 10)
	for _, y := range d.Train.Y {
		tr[y]++
	}
	for _, y := range d.Test.Y {
		te[y]++
	}
	for c := range 10 {
		all := tr[c] + te[c]
		if all < 170 || te[c] != all/5 && te[c] != all/5+1 {
			t.Errorf("class %d: %d train, %d test", c, tr[c], te[c])
		}
	}
	// The first image of the file is a 0 (row 2 of the 8x8 is 0,0,13,15,10,15,5,0).
	if d.Train.Y[0] != 0 || d.Train.X[8+2] != 13.0/16 {
		t.Errorf("first image: label %d, pixel(1,2) %v", d.Train.Y[0], d.Train.X[10])
	}
}

func FuzzDigitsCSV(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		x, y, err := ParseDigitsCSV(bytes.NewReader(data))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if len(y) == 0 || len(x) != 64*len(y) {
			t.Fatalf("%d values for %d labels", len(x), len(y))
		}
		for _, v := range x {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("pixel %v outside [0,1]", v)
			}
		}
		for _, c := range y {
			if c < 0 || c > 9 {
				t.Fatalf("label %d", c)
			}
		}
	})
}
