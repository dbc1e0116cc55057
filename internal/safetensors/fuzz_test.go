package safetensors

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// FuzzParse checks that Parse never panics or over-allocates on arbitrary
// input, that whatever it accepts satisfies the format's invariants, and
// that accepted files survive a conversion to F32 and back unchanged.
// Seeds live in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Parse(b)
		if err != nil {
			if file != nil {
				t.Fatal("non-nil file with an error")
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "safetensors") || strings.Contains(msg, "\n") {
				t.Fatalf("error %q is not a one-line safetensors error", msg)
			}
			return
		}

		names := map[string]bool{}
		var end uintptr
		base := uintptr(0)
		if len(b) > 0 {
			base = uintptrOf(b)
		}
		var values [][]float32
		convertible := true
		for _, tt := range file.Tensors {
			if names[tt.Name] || tt.Name == metadataKey {
				t.Fatalf("duplicate or reserved name %q accepted", tt.Name)
			}
			names[tt.Name] = true
			count := 1
			for _, d := range tt.Shape {
				if d < 0 {
					t.Fatalf("negative dim in %v", tt.Shape)
				}
				count *= d
			}
			if len(tt.Data) != count*int(dtypeSizes[tt.DType]) {
				t.Fatalf("tensor %q: %d bytes for %s %v", tt.Name, len(tt.Data), tt.DType, tt.Shape)
			}
			if len(tt.Data) > 0 {
				// Data must alias b, in order, without overlap.
				start := uintptrOf(tt.Data) - base
				if start < end || start+uintptr(len(tt.Data)) > uintptr(len(b)) {
					t.Fatalf("tensor %q at %d overlaps or escapes the buffer", tt.Name, start)
				}
				end = start + uintptr(len(tt.Data))
			}
			v, err := tt.Float32s()
			if err != nil {
				convertible = false
				continue
			}
			if len(v) != count {
				t.Fatalf("tensor %q: %d values for %d elements", tt.Name, len(v), count)
			}
			values = append(values, v)
		}
		if !convertible || names[""] {
			return
		}

		ws := make([]WriteTensor, len(file.Tensors))
		for i, tt := range file.Tensors {
			ws[i] = WriteTensor{Name: tt.Name, Shape: tt.Shape, Data: values[i]}
		}
		var buf bytes.Buffer
		if err := Encode(&buf, ws, file.Metadata); err != nil {
			t.Fatalf("re-encoding an accepted file: %v", err)
		}
		again, err := Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("re-parsing our own output: %v", err)
		}
		if len(again.Metadata) != len(file.Metadata) {
			t.Fatalf("metadata %v became %v", file.Metadata, again.Metadata)
		}
		for k, v := range file.Metadata {
			if again.Metadata[k] != v {
				t.Fatalf("metadata[%q] %q became %q", k, v, again.Metadata[k])
			}
		}
		for i, w := range ws {
			got, ok := again.Lookup(w.Name)
			if !ok || got.DType != "F32" || !slices.Equal(got.Shape, w.Shape) {
				t.Fatalf("tensor %q lost or changed in the round trip", w.Name)
			}
			gv, _ := got.Float32s()
			for j := range gv {
				if math.Float32bits(gv[j]) != math.Float32bits(values[i][j]) {
					t.Fatalf("tensor %q[%d]: %v became %v", w.Name, j, values[i][j], gv[j])
				}
			}
		}
	})
}
func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }
