package npy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readBytes(b []byte) ([]float32, []int, error) {
	return Read(bytes.NewReader(b), int64(len(b)))
}

// npyBytes builds a version 1.0 file around an arbitrary header dict, the
// way a hand-written or foreign writer might.
func npyBytes(dict string, data []byte) []byte {
	h := dict + "\n"
	b := append([]byte(magic), 1, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(h)))
	b = append(b, h...)
	return append(b, data...)
}

func f4(vs ...float32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func TestNumPyFiles(t *testing.T) {
	arange := []float32{0, 1, 2, 3, 4, 5}
	cases := []struct {
		file  string
		data  []float32
		shape []int
	}{
		{"arange_2x3_f4.npy", arange, []int{2, 3}},
		{"arange_2x3_f4_v2.npy", arange, []int{2, 3}},
		{"arange_2x3_f4_v3.npy", arange, []int{2, 3}},
		{"arange_2x3_f8.npy", arange, []int{2, 3}},
		{"arange_2x3_u1.npy", []float32{0, 40, 80, 120, 160, 200}, []int{2, 3}},
		{"scalar_f4.npy", []float32{3.5}, []int{}},
		{"empty_0x3_f4.npy", []float32{}, []int{0, 3}},
		{"vector_f4.npy", []float32{1, -2.5, float32(math.Inf(1))}, []int{3}},
	}
	for _, c := range cases {
		data, shape, err := ReadFile(filepath.Join("testdata", c.file))
		if err != nil {
			t.Errorf("%s: %v", c.file, err)
			continue
		}
		if !reflect.DeepEqual(data, c.data) || !reflect.DeepEqual(shape, c.shape) {
			t.Errorf("%s: got %v %v, want %v %v", c.file, data, shape, c.data, c.shape)
		}
	}
}

// TestWriteMatchesNumPy checks Write against numpy.save's exact bytes.
func TestWriteMatchesNumPy(t *testing.T) {
	cases := []struct {
		file  string
		data  []float32
		shape []int
	}{
		{"arange_2x3_f4.npy", []float32{0, 1, 2, 3, 4, 5}, []int{2, 3}},
		{"scalar_f4.npy", []float32{3.5}, []int{}},
		{"empty_0x3_f4.npy", nil, []int{0, 3}},
		{"vector_f4.npy", []float32{1, -2.5, float32(math.Inf(1))}, []int{3}},
	}
	for _, c := range cases {
		want, err := os.ReadFile(filepath.Join("testdata", c.file))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := Write(&buf, c.data, c.shape); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("%s: Write produced\n%q\nnumpy.save produced\n%q", c.file, buf.Bytes(), want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	shapes := [][]int{{}, {1}, {7}, {2, 3}, {1, 28, 28}, {3, 0, 5}, {2, 2, 2, 2, 2, 2, 2, 2}, {123456789012, 0}}
	for _, shape := range shapes {
		n := 1
		for _, d := range shape {
			n *= d
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(i)*0.37 - 5
		}
		if n > 2 {
			data[1] = float32(math.NaN())
			data[2] = float32(math.Inf(-1))
		}
		var buf bytes.Buffer
		if err := Write(&buf, data, shape); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		hl := int(binary.LittleEndian.Uint16(b[8:]))
		if (10+hl)%64 != 0 || b[10+hl-1] != '\n' {
			t.Fatalf("shape %v: data offset %d not 64-aligned or header not newline-terminated", shape, 10+hl)
		}
		got, gotShape, err := readBytes(b)
		if err != nil {
			t.Fatalf("shape %v: %v", shape, err)
		}
		if !reflect.DeepEqual(gotShape, shape) || len(got) != n {
			t.Fatalf("shape %v: got shape %v and %d values", shape, gotShape, len(got))
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(data[i]) {
				t.Fatalf("shape %v: [%d] = %v, want %v", shape, i, got[i], data[i])
			}
		}
	}
}

func TestLargeRoundTrip(t *testing.T) {
	// Several read chunks, to exercise the chunk boundary.
	data := make([]float32, 3*chunkSize/4+17)
	for i := range data {
		data[i] = float32(i)
	}
	path := filepath.Join(t.TempDir(), "big.npy")
	if err := WriteFile(path, data, []int{len(data)}); err != nil {
		t.Fatal(err)
	}
	got, shape, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, data) || !reflect.DeepEqual(shape, []int{len(data)}) {
		t.Fatal("round trip through a file changed the array")
	}
	// f8 across chunk boundaries too.
	var f8 []byte
	for i := range 3 * chunkSize / 8 {
		f8 = binary.LittleEndian.AppendUint64(f8, math.Float64bits(float64(i)+0.5))
	}
	got, _, err = readBytes(npyBytes("{'descr': '<f8', 'fortran_order': False, 'shape': (24576,), }", f8))
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != float32(i)+0.5 {
			t.Fatalf("[%d] = %v", i, v)
		}
	}
}

func TestHeaderVariants(t *testing.T) {
	ok := []struct {
		dict     string
		itemSize int
		shape    []int
	}{
		{`{"descr": "<f4", "fortran_order": False, "shape": (2,)}`, 4, []int{2}},
		{"{'shape': (1, 2), 'descr': '<f4', 'fortran_order': False}", 4, []int{1, 2}},
		{"{'descr':'<f4','fortran_order':False,'shape':(2,),}", 4, []int{2}},
		{"{'descr': '<f4',\n 'fortran_order': False,\n 'shape': ( 1 , 2 , ), }", 4, []int{1, 2}},
		{"{'descr': u'<f4', 'fortran_order': False, 'shape': (2L,), }", 4, []int{2}},
		{"  {'descr': '<f4', 'fortran_order': False, 'shape': ((2), 1), }", 4, []int{2, 1}},
		{"{'descr': '<u1', 'fortran_order': False, 'shape': (8,), }", 1, []int{8}},
	}
	for _, c := range ok {
		n := c.itemSize
		for _, d := range c.shape {
			n *= d
		}
		_, shape, err := readBytes(npyBytes(c.dict, make([]byte, n)))
		if err != nil || !reflect.DeepEqual(shape, c.shape) {
			t.Errorf("%s: shape %v, err %v", c.dict, shape, err)
		}
	}
}

func TestErrors(t *testing.T) {
	good := func(dict string) []byte { return npyBytes(dict, f4(1, 2)) }
	numpyFile := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	arange := numpyFile("arange_2x3_f4.npy")
	v2huge := append([]byte(magic), 2, 0)
	v2huge = binary.LittleEndian.AppendUint32(v2huge, 0xfffffff0)
	v2huge = append(v2huge, "{}"...)
	v2big := append([]byte(magic), 2, 0)
	v2big = binary.LittleEndian.AppendUint32(v2big, MaxHeaderLen+1)
	v2big = append(v2big, make([]byte, MaxHeaderLen+1)...)
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "not a .npy file: empty"},
		{"bad magic", []byte("PK\x03\x04 this is a zip file, not npy"), `not a .npy file: does not start with \x93NUMPY (first bytes "PK\x03\x04 thi")`},
		{"text", []byte("1,2,3\n4,5,6\n"), "not a .npy file"},
		{"magic prefix only", []byte("\x93NUM"), "truncated: only 4 bytes"},
		{"no version", []byte("\x93NUMPY"), "truncated: only 6 bytes"},
		{"bad version", append([]byte(magic), 4, 0, 0, 0), "unsupported format version 4.0"},
		{"bad minor", append([]byte(magic), 1, 1, 0, 0), "unsupported format version 1.1"},
		{"no length", append([]byte(magic), 1, 0, 5), "truncated: only 9 bytes"},
		{"header past end", arange[:60], "header length 118 exceeds file size 60"},
		{"v2 header past end", v2huge, "header length 4294967280 exceeds file size 14"},
		{"header over limit", v2big, "header length 65537 exceeds the 64 KiB limit"},
		{"truncated data", arange[:len(arange)-3], "data is 21 bytes but shape [2 3] of <f4 needs 24 (truncated)"},
		{"trailing data", append(append([]byte{}, arange...), 0), "data is 25 bytes but shape [2 3] of <f4 needs 24 (trailing bytes)"},
		{"big-endian", numpyFile("bigendian_2x3_f4.npy"), `big-endian dtype ">f4" is not supported`},
		{"int64", numpyFile("int64_2x3.npy"), `unsupported dtype "<i8" (want '<f4', '<f8' or '|u1')`},
		{"fortran", numpyFile("fortran_2x3_f4.npy"), "fortran_order True is not supported"},
		{"native order", good("{'descr': '=f4', 'fortran_order': False, 'shape': (2,), }"), `unsupported dtype "=f4"`},
		{"structured", good("{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (2,), }"), "structured dtypes are not supported"},
		{"huge shape", good("{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100000), }"), "data is 8 bytes but shape [100000 100000 100000] of <f4 needs 4000000000000000"},
		{"overflowing shape", good("{'descr': '<f4', 'fortran_order': False, 'shape': (2147483648, 2147483648), }"), "byte size of shape [2147483648 2147483648] overflows"},
		{"overflowing count", good("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296, 0), }"), "element count of shape [4294967296 4294967296 4294967296 0] overflows"},
		{"int beyond int64", good("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }"), "integer 99999999999999999999 is out of range"},
		{"negative dim", good("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }"), "negative dimension -2"},
		{"shape not tuple", good("{'descr': '<f4', 'fortran_order': False, 'shape': [2], }"), "shape is a list, not a tuple"},
		{"parenthesised int", good("{'descr': '<f4', 'fortran_order': False, 'shape': (2), }"), "shape is an int, not a tuple"},
		{"shape of strings", good("{'descr': '<f4', 'fortran_order': False, 'shape': ('2',), }"), "shape element 0 is a str, not an int"},
		{"fortran not bool", good("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }"), "fortran_order is an int, not a bool"},
		{"missing key", good("{'descr': '<f4', 'shape': (2,), }"), "want exactly the keys descr, fortran_order and shape"},
		{"extra key", good("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': None}"), "want exactly the keys"},
		{"duplicate key", good("{'descr': '<f4', 'descr': '<f4', 'shape': (2,), }"), `duplicate key "descr"`},
		{"not a dict", good("['descr', '<f4']"), "not a Python dict literal"},
		{"unterminated", good("{'descr': '<f4"), "unterminated string"},
		{"escape", good(`{'descr': '<f\x34', 'fortran_order': False, 'shape': (2,), }`), "escape sequences"},
		{"garbage after", good("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x"), "unexpected text after the dict"},
		{"Truex", good("{'descr': '<f4', 'fortran_order': Truex, 'shape': (2,), }"), "unexpected 'T'"},
		{"deep nesting", good("{'descr': " + strings.Repeat("(", 100) + "}"), "nested more than 16 deep"},
		{"hex int", good("{'descr': '<f4', 'fortran_order': False, 'shape': (0x2,), }"), "malformed number"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := readBytes(c.b)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.Contains(msg, c.want) {
				t.Fatalf("error %q does not contain %q", msg, c.want)
			}
			if !strings.HasPrefix(msg, "npy: ") || strings.Contains(msg, "\n") {
				t.Fatalf("error %q is not a one-line npy error", msg)
			}
		})
	}
}

// TestShortReader covers a caller whose size overstates the stream: the
// error must come from the short read, after at most one chunk of memory.
func TestShortReader(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "arange_2x3_f4.npy"))
	if err != nil {
		t.Fatal(err)
	}
	// Claim the shape the size implies: (1<<40,) float32s.
	hdr := npyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }", nil)
	_, _, err = Read(bytes.NewReader(append(hdr, b...)), int64(len(hdr))+4<<40)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v, want an unexpected EOF", err)
	}
	if _, _, err := Read(bytes.NewReader(b), -1); err == nil {
		t.Fatal("negative size accepted")
	}
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.npy")
	if err := os.WriteFile(p, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := ReadFile(p)
	if err == nil || !strings.HasPrefix(err.Error(), "npy "+p+": not a .npy file") {
		t.Fatalf("got %v", err)
	}
	if _, _, err := ReadFile(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("got %v", err)
	}
	if _, _, err := ReadFile(filepath.Join(dir, "missing.npy")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
}

func TestWriteErrors(t *testing.T) {
	cases := []struct {
		data  []float32
		shape []int
		want  string
	}{
		{[]float32{1, 2, 3}, []int{2, 2}, "shape [2 2] has 4 elements, data has 3"},
		{nil, []int{}, "shape [] has 1 elements, data has 0"},
		{nil, []int{-1}, "negative dimension"},
		{nil, []int{1 << 40, 1 << 40}, "overflows"},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		err := Write(&buf, c.data, c.shape)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("shape %v: error %v, want %q", c.shape, err, c.want)
		}
		if buf.Len() != 0 {
			t.Errorf("shape %v: %d bytes written before the error", c.shape, buf.Len())
		}
	}
	// A failed WriteFile leaves the existing file alone.
	path := filepath.Join(t.TempDir(), "a.npy")
	if err := WriteFile(path, []float32{1}, []int{1}); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []float32{1}, []int{2}); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v should name %s", err, path)
	}
	if data, _, err := ReadFile(path); err != nil || data[0] != 1 {
		t.Fatalf("existing file damaged: %v %v", data, err)
	}
}
