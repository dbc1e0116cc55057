package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// build assembles a file from a header string and a data buffer, the way
// any writer would, without going through Encode.
func build(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func f32bytes(vs ...float32) []byte {
	var b []byte
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	in := []WriteTensor{
		{Name: "patch_embed.proj.weight", Shape: []int{2, 1, 2, 2}, Data: []float32{1, 2, 3, 4, 5, 6, 7, 8}},
		{Name: "cls_token", Shape: []int{1, 1, 3}, Data: []float32{-1.5, 0, float32(math.Inf(1))}},
		{Name: "empty", Shape: []int{0, 4}, Data: nil},
		{Name: "scalar", Shape: []int{}, Data: []float32{42}},
		{Name: "head.bias", Shape: []int{2}, Data: []float32{float32(math.SmallestNonzeroFloat32), -0.0}},
	}
	md := map[string]string{"vitc": `{"preset":"micro","classes":["<0>","&1"]}`, "format": "pt"}
	var buf bytes.Buffer
	if err := Encode(&buf, in, md); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	n := binary.LittleEndian.Uint64(b)
	if (8+n)%8 != 0 {
		t.Fatalf("data buffer starts at %d, not 8-byte aligned", 8+n)
	}
	if !bytes.Contains(b, []byte(`<0>`)) || !bytes.Contains(b, []byte(`&1`)) {
		t.Errorf("metadata JSON was HTML-escaped: %s", b[8:8+n])
	}
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Metadata, md) {
		t.Fatalf("metadata %v, want %v", f.Metadata, md)
	}
	if len(f.Tensors) != len(in) {
		t.Fatalf("%d tensors, want %d", len(f.Tensors), len(in))
	}
	// Empty tensors sort first at their offset; otherwise writing order holds.
	for _, w := range in {
		got, ok := f.Lookup(w.Name)
		if !ok {
			t.Fatalf("tensor %q missing", w.Name)
		}
		if got.DType != "F32" || !reflect.DeepEqual(got.Shape, w.Shape) {
			t.Fatalf("tensor %q: %s %v, want F32 %v", w.Name, got.DType, got.Shape, w.Shape)
		}
		vals, err := got.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		if len(vals) != len(w.Data) {
			t.Fatalf("tensor %q: %d values, want %d", w.Name, len(vals), len(w.Data))
		}
		for i := range vals {
			if math.Float32bits(vals[i]) != math.Float32bits(w.Data[i]) {
				t.Fatalf("tensor %q[%d] = %v, want %v", w.Name, i, vals[i], w.Data[i])
			}
		}
	}
	order := []string{}
	for _, tt := range f.Tensors {
		order = append(order, tt.Name)
	}
	want := []string{"patch_embed.proj.weight", "cls_token", "empty", "scalar", "head.bias"}
	if !reflect.DeepEqual(order, want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	if _, ok := f.Lookup("nope"); ok {
		t.Fatal("Lookup found a missing tensor")
	}
}

func TestWriteFileReadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	in := []WriteTensor{{Name: "w", Shape: []int{3}, Data: []float32{1, 2, 3}}}
	if err := WriteFile(path, in, nil); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata != nil {
		t.Fatalf("metadata %v, want nil", f.Metadata)
	}
	vals, _ := f.Tensors[0].Float32s()
	if !reflect.DeepEqual(vals, []float32{1, 2, 3}) {
		t.Fatalf("got %v", vals)
	}

	// A failed write (bad tensor) leaves the existing file alone.
	bad := []WriteTensor{{Name: "w", Shape: []int{4}, Data: []float32{1}}}
	err = WriteFile(path, bad, nil)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("error %v should name %s", err, path)
	}
	if _, err := ReadFile(path); err != nil {
		t.Fatalf("existing checkpoint damaged: %v", err)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Fatalf("directory holds %d entries, want 1", len(ents))
	}
}

// TestPythonConvention parses bytes laid out exactly as the reference
// (Rust/Python) writer produces for
//
//	save_file({"weight": torch.tensor([[1., 2.], [3., 4.]]),
//	           "bias": torch.tensor([0.5, -1.], dtype=torch.float16)},
//	          metadata={"format": "pt"})
//
// compact JSON, __metadata__ first, tensors sorted by dtype (larger first)
// then name, header padded with spaces to a multiple of 8.
func TestPythonConvention(t *testing.T) {
	header := `{"__metadata__":{"format":"pt"},` +
		`"weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},` +
		`"bias":{"dtype":"F16","shape":[2],"data_offsets":[16,20]}}`
	for len(header)%8 != 0 {
		header += " "
	}
	data := append(f32bytes(1, 2, 3, 4), 0x00, 0x38, 0x00, 0xbc)
	f, err := Parse(build(header, data))
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata["format"] != "pt" {
		t.Fatalf("metadata %v", f.Metadata)
	}
	w, _ := f.Lookup("weight")
	wv, err := w.Float32s()
	if err != nil || !reflect.DeepEqual(wv, []float32{1, 2, 3, 4}) || !reflect.DeepEqual(w.Shape, []int{2, 2}) {
		t.Fatalf("weight %v %v %v", w.Shape, wv, err)
	}
	b, _ := f.Lookup("bias")
	bv, err := b.Float32s()
	if err != nil || !reflect.DeepEqual(bv, []float32{0.5, -1}) {
		t.Fatalf("bias %v %v", bv, err)
	}
	if f.Tensors[0].Name != "weight" || f.Tensors[1].Name != "bias" {
		t.Fatalf("tensors not in data-offset order: %q, %q", f.Tensors[0].Name, f.Tensors[1].Name)
	}
}

func TestHalfConversions(t *testing.T) {
	inf := float32(math.Inf(1))
	f16 := []struct {
		bits uint16
		want float32
	}{
		{0x3c00, 1.0},
		{0xc100, -2.5},
		{0x7bff, 65504},
		{0x0001, 5.9604645e-08}, // smallest subnormal, 2^-24
		{0x03ff, 6.097555e-05},  // largest subnormal
		{0x0400, 6.1035156e-05}, // smallest normal, 2^-14
		{0x7c00, inf},
		{0xfc00, -inf},
		{0x0000, 0},
		{0x3555, 0.33325195},
	}
	for _, c := range f16 {
		if got := HalfToFloat32(c.bits); got != c.want {
			t.Errorf("F16 %#04x = %g, want %g", c.bits, got, c.want)
		}
	}
	if got := HalfToFloat32(0x8000); got != 0 || !math.Signbit(float64(got)) {
		t.Errorf("F16 0x8000 = %g, want -0", got)
	}
	if got := HalfToFloat32(0x7e00); !math.IsNaN(float64(got)) {
		t.Errorf("F16 0x7e00 = %g, want NaN", got)
	}
	if got := HalfToFloat32(0x7c01); !math.IsNaN(float64(got)) {
		t.Errorf("F16 0x7c01 (signalling NaN) = %g, want NaN", got)
	}
	// Every half value must survive a float32 -> half conversion exactly;
	// checking against the float32 value formula covers all 63488 finite ones.
	for h := 0; h < 1<<16; h++ {
		exp, mant := (h>>10)&0x1f, h&0x3ff
		if exp == 0x1f {
			continue
		}
		var want float64
		if exp == 0 {
			want = math.Ldexp(float64(mant), -24)
		} else {
			want = math.Ldexp(float64(mant|0x400), exp-25)
		}
		if h&0x8000 != 0 {
			want = -want
		}
		if got := HalfToFloat32(uint16(h)); float64(got) != want {
			t.Fatalf("F16 %#04x = %g, want %g", h, got, want)
		}
	}

	bf16 := []struct {
		bits uint16
		want float32
	}{
		{0x3f80, 1.0},
		{0xc020, -2.5},
		{0x477f, 65280}, // 65504 is not representable; this is the bf16 below it
		{0x4780, 65536},
		{0x0001, math.Float32frombits(0x00010000)}, // subnormal, 2^-133
		{0x7f80, inf},
		{0xff80, -inf},
	}
	for _, c := range bf16 {
		if got := BFloat16ToFloat32(c.bits); got != c.want {
			t.Errorf("BF16 %#04x = %g, want %g", c.bits, got, c.want)
		}
	}

	// And through a file, with F64 too.
	var data []byte
	for _, h := range []uint16{0x3c00, 0xc100, 0x7bff, 0x0001, 0x7c00} {
		data = binary.LittleEndian.AppendUint16(data, h)
	}
	for _, h := range []uint16{0x3f80, 0xc020, 0x0001, 0x7f80} {
		data = binary.LittleEndian.AppendUint16(data, h)
	}
	for _, v := range []float64{1, -2.5, 1e300, 0.1} {
		data = binary.LittleEndian.AppendUint64(data, math.Float64bits(v))
	}
	header := `{"h":{"dtype":"F16","shape":[5],"data_offsets":[0,10]},` +
		`"b":{"dtype":"BF16","shape":[4],"data_offsets":[10,18]},` +
		`"d":{"dtype":"F64","shape":[2,2],"data_offsets":[18,50]},` +
		`"i":{"dtype":"I64","shape":[0],"data_offsets":[50,50]}}`
	f, err := Parse(build(header, data))
	if err != nil {
		t.Fatal(err)
	}
	wants := map[string][]float32{
		"h": {1, -2.5, 65504, 5.9604645e-08, inf},
		"b": {1, -2.5, math.Float32frombits(0x00010000), inf},
		"d": {1, -2.5, inf, 0.1},
	}
	for name, want := range wants {
		tt, _ := f.Lookup(name)
		got, err := tt.Float32s()
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %v, %v; want %v", name, got, err, want)
		}
	}
	it, _ := f.Lookup("i")
	if _, err := it.Float32s(); err == nil || !strings.Contains(err.Error(), "I64") {
		t.Errorf("I64 conversion: error %v, want one naming the dtype", err)
	}
	broken := Tensor{Name: "x", DType: "F32", Shape: []int{3}, Data: make([]byte, 8)}
	if _, err := broken.Float32s(); err == nil {
		t.Error("Float32s accepted data shorter than the shape")
	}
}

func TestParseErrors(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x02\x00\x00\x00")
	huge := binary.LittleEndian.AppendUint64(nil, 8589934592)
	huge = append(huge, '{')
	huge = append(huge, make([]byte, 1024-len(huge))...)
	data16 := make([]byte, 16)
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "not a safetensors file: only 0 bytes"},
		{"short", []byte{1, 2, 3}, "not a safetensors file: only 3 bytes"},
		{"huge header length", huge, "header length 8589934592 exceeds file size 1024"},
		{"header past end", build(`{}`, nil)[:9], "header length 2 exceeds file size 9"},
		{"zero header length", append(make([]byte, 8), '{'), "header length 0 is too short"},
		{"png", png, "not a safetensors file: looks like a PNG image"},
		{"text", []byte("hello, this is a text file\n"), "not a safetensors file: header does not start with '{'"},
		{"pytorch zip", []byte("PK\x03\x04\x14\x00\x00\x00\x08\x00"), "zip archive"},
		{"git lfs pointer", []byte("version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 123\n"), "Git LFS pointer"},
		{"pickle", []byte("\x80\x02}q\x00(X\x06\x00\x00\x00"), "Python pickle"},
		{"bad json", build(`{"a":}`, nil), "header is not valid JSON"},
		{"truncated json", build(`{"a":{"dtype":"F32"`, nil), "header is not valid JSON"},
		{"trailing garbage", build(`{} x`, nil), "unexpected bytes after the object"},
		{"two objects", build(`{}{}`, nil), "unexpected bytes after the object"},
		{"invalid utf8", build("{\"\xff\":1}", nil), "not valid UTF-8"},
		{"entry not object", build(`{"a":[1,2]}`, nil), `tensor "a": entry is an array, not an object`},
		{"dtype not string", build(`{"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}`, data16), `dtype is a number, not a string`},
		{"null dtype", build(`{"a":{"dtype":null,"shape":[1],"data_offsets":[0,4]}}`, data16), `missing dtype`},
		{"shape not array", build(`{"a":{"dtype":"F32","shape":4,"data_offsets":[0,4]}}`, data16), `shape is a number, not an array of integers`},
		{"quoted dim", build(`{"a":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}`, data16), `shape element 0 ("1") is not an integer`},
		{"duplicate field", build(`{"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}`, data16), `tensor "a": duplicate key "dtype" in entry`},
		{"wrong-case field", build(`{"a":{"DTYPE":"F32","shape":[1],"data_offsets":[0,4]}}`, data16), `missing dtype`},
		{"missing dtype", build(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, data16), `tensor "a": missing dtype`},
		{"missing shape", build(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, data16), `missing shape`},
		{"missing offsets", build(`{"a":{"dtype":"F32","shape":[1]}}`, data16), `missing data_offsets`},
		{"unknown dtype", build(`{"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}`, data16), `unknown dtype "F33"`},
		{"sub-byte dtype", build(`{"a":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}`, data16), `unknown dtype "F4"`},
		{"negative dim", build(`{"a":{"dtype":"F32","shape":[-1,4],"data_offsets":[0,16]}}`, data16), "negative dimension -1"},
		{"fractional dim", build(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, data16), `shape element 0 (1.5) is not an integer`},
		{"exponent dim", build(`{"a":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}}`, data16), `shape element 0 (1e0) is not an integer`},
		{"overflow", build(`{"a":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,16]}}`, data16), "element count of shape [4294967296 4294967296 4] overflows"},
		{"overflow hidden by zero", build(`{"a":{"dtype":"F32","shape":[4294967296,4294967296,0,4],"data_offsets":[0,0]}}`, data16), "overflows"},
		{"byte size overflow", build(`{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,16]}}`, data16), "byte size of shape"},
		{"offsets one", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, data16), "data_offsets [0] is not [begin, end]"},
		{"offsets three", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, data16), "is not [begin, end]"},
		{"offsets reversed", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}`, data16), "data_offsets [8, 4] outside the 16-byte data buffer"},
		{"offsets negative", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, data16), "outside the 16-byte data buffer"},
		{"offsets past end", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}`, data16), "data_offsets [12, 20] outside the 16-byte data buffer"},
		{"offsets beyond int64", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,99999999999999999999]}}`, data16), "data_offsets element 1 (99999999999999999999) is not an integer in the int64 range"},
		{"length mismatch", build(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, data16), "hold 8 bytes, but F32 [3] needs 12"},
		{"overlap", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, data16), `tensors "a" [0, 8) and "b" [4, 12) overlap`},
		{"same range", build(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, data16), "overlap"},
		{"duplicate", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, data16), `duplicate tensor name "a"`},
		{"duplicate metadata", build(`{"__metadata__":{},"__metadata__":{}}`, nil), `duplicate tensor name "__metadata__"`},
		{"metadata not object", build(`{"__metadata__":[1]}`, nil), "__metadata__ is not a JSON object"},
		{"metadata number", build(`{"__metadata__":{"epoch":3}}`, nil), `__metadata__["epoch"] is a number, not a string`},
		{"metadata nested", build(`{"__metadata__":{"vitc":{"dim":64}}}`, nil), `__metadata__["vitc"] is an object, not a string`},
		{"metadata duplicate key", build(`{"__metadata__":{"a":"1","a":"2"}}`, nil), `duplicate key "a" in __metadata__`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Parse(c.b)
			if err == nil {
				t.Fatalf("parsed: %+v", f)
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.Contains(msg, c.want) {
				t.Fatalf("error %q does not contain %q", msg, c.want)
			}
			if !strings.HasPrefix(msg, "safetensors: ") || strings.Contains(msg, "\n") {
				t.Fatalf("error %q is not a one-line safetensors error", msg)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not a *FormatError", err)
			}
		})
	}
}

// TestMagicLookalikeLength checks that a genuine file is not mistaken for a
// foreign format because its header length starts with a magic number.
func TestMagicLookalikeLength(t *testing.T) {
	for _, n := range []int{0x0280, 0x8b1f} { // "\x80\x02" (pickle), "\x1f\x8b" (gzip)
		header := `{"__metadata__":{"pad":"` + strings.Repeat("x", n-27) + `"}}`
		if len(header) != n {
			t.Fatalf("header is %d bytes, want %d", len(header), n)
		}
		if _, err := Parse(build(header, nil)); err != nil {
			t.Errorf("header length %#x: %v", n, err)
		}
	}
}

func TestParseAccepts(t *testing.T) {
	data16 := make([]byte, 16)
	cases := []struct {
		name   string
		header string
		data   []byte
	}{
		{"empty header", `{}`, nil},
		{"padding", `{}      `, nil},
		{"metadata null", `{"__metadata__":null}`, nil},
		{"whitespace", "{ \"__metadata__\" :\n {\"a\" : \"b\"} , \"x\": {\"dtype\":\"U8\",\"shape\":[ 2 ],\"data_offsets\":[ 0 , 2 ]} }", data16},
		{"gap and trailing bytes", `{"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, data16},
		{"empty tensor inside another", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}`, data16},
		{"unknown entry field", `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}}`, data16},
	}
	for _, c := range cases {
		if _, err := Parse(build(c.header, c.data)); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	huge := binary.LittleEndian.AppendUint64(nil, 8589934592)
	huge = append(huge, '{')
	huge = append(huge, make([]byte, 1024-len(huge))...)
	p := write("m.safetensors", huge)
	_, err := ReadFile(p)
	if want := "checkpoint " + p + ": header length 8589934592 exceeds file size 1024"; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}

	p = write("image.png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"))
	_, err = ReadFile(p)
	if want := "checkpoint " + p + " is not a safetensors file: looks like a PNG image"; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}

	p = write("notes.txt", []byte("not a checkpoint at all\n"))
	if _, err = ReadFile(p); err == nil || !strings.Contains(err.Error(), p+" is not a safetensors file") {
		t.Fatalf("got %v", err)
	}

	p = write("tiny", []byte("abc"))
	if _, err = ReadFile(p); err == nil || !strings.Contains(err.Error(), "only 3 bytes") {
		t.Fatalf("got %v", err)
	}

	if _, err = ReadFile(dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("got %v", err)
	}

	_, err = ReadFile(filepath.Join(dir, "missing.safetensors"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want ErrNotExist", err)
	}

	// A header over the limit is refused from the length alone: the sparse
	// file below would need 101 MiB of memory if the header were read.
	p = filepath.Join(dir, "bighdr.safetensors")
	fh, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	n := uint64(MaxHeaderLen + 1<<20)
	fh.Write(append(binary.LittleEndian.AppendUint64(nil, n), '{'))
	if err := fh.Truncate(int64(8 + n + 16)); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	_, err = ReadFile(p)
	if err == nil || !strings.Contains(err.Error(), "exceeds the 100 MiB limit") {
		t.Fatalf("got %v", err)
	}

	// Validation errors name the file.
	p = write("dup.safetensors", build(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)))
	_, err = ReadFile(p)
	if want := "checkpoint " + p + `: duplicate tensor name "a"`; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
}

func TestEncodeErrors(t *testing.T) {
	cases := []struct {
		name string
		ts   []WriteTensor
		md   map[string]string
		want string
	}{
		{"shape mismatch", []WriteTensor{{Name: "a", Shape: []int{2, 2}, Data: []float32{1}}}, nil, "shape [2 2] has 4 elements, data has 1"},
		{"negative", []WriteTensor{{Name: "a", Shape: []int{-1}, Data: nil}}, nil, "negative dimension"},
		{"empty name", []WriteTensor{{Name: "", Shape: []int{}, Data: []float32{1}}}, nil, "empty name"},
		{"reserved", []WriteTensor{{Name: "__metadata__", Shape: []int{}, Data: []float32{1}}}, nil, "reserved"},
		{"duplicate", []WriteTensor{{Name: "a", Shape: []int{}, Data: []float32{1}}, {Name: "a", Shape: []int{}, Data: []float32{1}}}, nil, `duplicate tensor name "a"`},
		{"bad utf8", []WriteTensor{{Name: "\xff", Shape: []int{}, Data: []float32{1}}}, nil, "not valid UTF-8"},
		{"bad utf8 metadata", nil, map[string]string{"k": "\xff"}, "not valid UTF-8"},
		{"overflow", []WriteTensor{{Name: "a", Shape: []int{1 << 40, 1 << 40}, Data: nil}}, nil, "overflows"},
	}
	for _, c := range cases {
		var buf bytes.Buffer
		err := Encode(&buf, c.ts, c.md)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		}
		if buf.Len() != 0 {
			t.Errorf("%s: %d bytes written before the error", c.name, buf.Len())
		}
	}
}

// TestTensorDataIsolated checks that appending to one tensor's Data cannot
// overwrite its neighbour in the shared buffer.
func TestTensorDataIsolated(t *testing.T) {
	var buf bytes.Buffer
	Encode(&buf, []WriteTensor{
		{Name: "a", Shape: []int{1}, Data: []float32{1}},
		{Name: "b", Shape: []int{1}, Data: []float32{2}},
	}, nil)
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	a, _ := f.Lookup("a")
	_ = append(a.Data, 0xff, 0xff, 0xff, 0xff)
	b, _ := f.Lookup("b")
	if v, _ := b.Float32s(); v[0] != 2 {
		t.Fatalf("b changed to %v", v)
	}
}
