package npy

import (
	"bytes"
	"math"
	"reflect"
	"strings"
	"testing"
)

// FuzzRead checks that Read never panics or over-allocates on arbitrary
// input, that what it accepts is consistent with its shape, and that it
// survives Write and Read unchanged. Seeds live in testdata/fuzz/FuzzRead.
func FuzzRead(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		// A size that overstates the stream must fail cheaply, whatever
		// the header claims.
		if _, _, err := Read(bytes.NewReader(b), int64(len(b))+1<<40); err == nil {
			t.Fatal("accepted a stream far shorter than its stated size")
		}

		data, shape, err := readBytes(b)
		if err != nil {
			if data != nil || shape != nil {
				t.Fatal("non-nil result with an error")
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "npy: ") || strings.Contains(msg, "\n") {
				t.Fatalf("error %q is not a one-line npy error", msg)
			}
			return
		}
		count := 1
		for _, d := range shape {
			if d < 0 {
				t.Fatalf("negative dim in %v", shape)
			}
			count *= d
		}
		if len(data) != count || shape == nil {
			t.Fatalf("%d values for shape %v", len(data), shape)
		}

		var buf bytes.Buffer
		if err := Write(&buf, data, shape); err != nil {
			if strings.Contains(err.Error(), "too long") {
				return // a compact foreign header can outgrow NumPy's layout
			}
			t.Fatalf("writing an accepted array: %v", err)
		}
		again, shape2, err := readBytes(buf.Bytes())
		if err != nil {
			t.Fatalf("reading our own output: %v", err)
		}
		if !reflect.DeepEqual(shape, shape2) || len(again) != len(data) {
			t.Fatalf("shape %v became %v", shape, shape2)
		}
		for i := range data {
			if math.Float32bits(again[i]) != math.Float32bits(data[i]) {
				t.Fatalf("[%d] %v became %v", i, data[i], again[i])
			}
		}
	})
}
