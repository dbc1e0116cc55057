package datasets

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

const (
	digitsSide    = 8
	digitsPixels  = digitsSide * digitsSide
	digitsMaxVal  = 16
	digitsClasses = 10
	// digitsMaxRows bounds what a runaway (or decompression-bomb) file can
	// make us hold; the real file has 1797 rows.
	digitsMaxRows = 1 << 20
	// digitsMaxLine is far above the ~200 bytes of a real row but keeps a
	// file without newlines from being buffered whole.
	digitsMaxLine = 64 << 10
)

// ParseDigitsCSV parses scikit-learn's digits.csv: one image per line, 64
// pixel values in 0..16 (row-major 8x8) followed by the label 0..9. Blank
// lines are skipped. Pixels are returned scaled to [0,1]. Errors name the
// 1-based line and column.
func ParseDigitsCSV(r io.Reader) (x []float32, y []int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), digitsMaxLine)
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		if len(y) == digitsMaxRows {
			return nil, nil, fmt.Errorf("line %d: more than %d rows", line, digitsMaxRows)
		}
		fields := bytes.Split(text, []byte{','})
		if len(fields) != digitsPixels+1 {
			return nil, nil, fmt.Errorf("line %d: %d columns (want %d: %d pixels and a label)", line, len(fields), digitsPixels+1, digitsPixels)
		}
		for col, f := range fields {
			s := string(bytes.TrimSpace(f))
			v, perr := strconv.ParseFloat(s, 64)
			if perr != nil {
				return nil, nil, fmt.Errorf("line %d: column %d: %q is not a number", line, col+1, s)
			}
			if col < digitsPixels {
				if !(v >= 0 && v <= digitsMaxVal) {
					return nil, nil, fmt.Errorf("line %d: column %d: pixel %s out of range [0,%d]", line, col+1, s, digitsMaxVal)
				}
				x = append(x, float32(v/digitsMaxVal))
				continue
			}
			if !(v >= 0 && v < digitsClasses) || v != math.Trunc(v) {
				return nil, nil, fmt.Errorf("line %d: column %d: label %s is not an integer in [0,%d]", line, col+1, s, digitsClasses-1)
			}
			y = append(y, int(v))
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, nil, fmt.Errorf("line %d: longer than %d bytes", line+1, digitsMaxLine)
		}
		return nil, nil, err
	}
	if len(y) == 0 {
		return nil, nil, errors.New("no rows")
	}
	return x, y, nil
}

// LoadDigits reads digits.csv or digits.csv.gz and splits it 80/20.
func LoadDigits(path string) (*Dataset, error) {
	in, err := openInput(path)
	if err != nil {
		return nil, fmt.Errorf("digits: %w", err)
	}
	defer in.Close()
	x, y, err := ParseDigitsCSV(in)
	if err != nil {
		return nil, fmt.Errorf("digits: %s: %w", path, err)
	}
	d := &Dataset{Name: "digits", C: 1, H: digitsSide, W: digitsSide, Classes: digitClasses()}
	d.Train, d.Test = stratifiedSplit(x, y, digitsPixels, digitsClasses)
	return d, nil
}

// stratifiedSplit puts ceil(N/5) samples in the test split (the count
// scikit-learn's train_test_split(test_size=0.2) gives), allotted to classes
// in proportion to their size by largest remainder, and spread evenly
// through each class in file order. The split is fixed rather than seeded
// so that every run and every model is scored on the same held-out images.
func stratifiedSplit(x []float32, y []int, size, classes int) (train, test Split) {
	count := make([]int, classes)
	for _, c := range y {
		count[c]++
	}
	quota := make([]int, classes)
	want := (len(y) + 4) / 5
	given := 0
	for c, n := range count {
		quota[c] = n / 5
		given += quota[c]
	}
	// Largest remainder first, ties to the lower class: deterministic and
	// never more than one extra per class.
	for rem := 4; rem > 0 && given < want; rem-- {
		for c, n := range count {
			if n%5 == rem && given < want {
				quota[c]++
				given++
			}
		}
	}
	seen := make([]int, classes)
	nTest := given
	train = Split{X: make([]float32, 0, (len(y)-nTest)*size), Y: make([]int, 0, len(y)-nTest)}
	test = Split{X: make([]float32, 0, nTest*size), Y: make([]int, 0, nTest)}
	for i, c := range y {
		j, n, q := seen[c], count[c], quota[c]
		seen[c]++
		// Bresenham: exactly q of the class's n samples, evenly spaced.
		dst := &train
		if (j+1)*q/n > j*q/n {
			dst = &test
		}
		dst.X = append(dst.X, x[i*size:(i+1)*size]...)
		dst.Y = append(dst.Y, c)
	}
	return train, test
}
