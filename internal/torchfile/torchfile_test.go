package torchfile

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"strings"
	"testing"
)

// The fixtures are torch.save files PyTorch 1.13 wrote
// (tools/torchref/formats.py; vit/testdata/formats/README.md).
const (
	mhaFixture    = "../../vit/testdata/formats/pth_mha/vit_mha.pth"
	customFixture = "../../vit/testdata/formats/pth_custom/vit_custom.pth"
	hfBinFixture  = "../../vit/testdata/formats/hf_vit_bin/pytorch_model.bin"
)

func TestReadStateDict(t *testing.T) {
	f, err := ReadFile(mhaFixture)
	if err != nil {
		t.Fatal(err)
	}
	if f.Under != "" || len(f.Ignored) != 0 {
		t.Errorf("under %q, ignored %v: want a bare state dict", f.Under, f.Ignored)
	}
	byName := map[string]Tensor{}
	for _, t := range f.Tensors {
		byName[t.Name] = t
	}
	qkv, ok := byName["encoder.layers.1.self_attn.in_proj_weight"]
	if !ok || qkv.DType != "F16" || len(qkv.Shape) != 2 || qkv.Shape[0] != 384 || qkv.Shape[1] != 128 || len(qkv.Data) != 384*128*2 {
		t.Fatalf("in_proj_weight: %v %v %d bytes", qkv.DType, qkv.Shape, len(qkv.Data))
	}
	if n := len(f.Tensors); n != 4+2*12+2+2 {
		t.Errorf("%d tensors", n)
	}
	if names := f.Tensors[0].Name + "," + f.Tensors[1].Name; names != "cls_token,pos_embed" {
		t.Errorf("first tensors %s: the state dict's order is lost", names)
	}
}

func TestReadTrainingCheckpoint(t *testing.T) {
	f, err := ReadFile(customFixture)
	if err != nil {
		t.Fatal(err)
	}
	if f.Under != "state_dict" {
		t.Errorf("state dict found under %q, want state_dict", f.Under)
	}
	if f.Tensors[0].Name != "module.tok" || f.Tensors[0].DType != "F32" {
		t.Errorf("first tensor %s %s", f.Tensors[0].Name, f.Tensors[0].DType)
	}
}

// zipOf builds a torch-like zip from entries (stored, as torch.save does).
func zipOf(t testing.TB, entries map[string][]byte, order ...string) []byte {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, n := range order {
		fw, err := w.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(entries[n])
	}
	w.Close()
	return buf.Bytes()
}

// pickleOf is a protocol-2 pickle of {name: tensor} for one float32 tensor
// of the given shape/stride on storage "0" of numel values.
func pickleOf(name string, shape, stride []int, numel int, storageClass string) []byte {
	var b bytes.Buffer
	b.WriteString("\x80\x02}(")
	str := func(s string) {
		b.WriteByte('X')
		binary.Write(&b, binary.LittleEndian, uint32(len(s)))
		b.WriteString(s)
	}
	integer := func(n int) {
		b.WriteByte('J')
		binary.Write(&b, binary.LittleEndian, int32(n))
	}
	tuple := func(xs []int) {
		b.WriteByte('(')
		for _, x := range xs {
			integer(x)
		}
		b.WriteByte('t')
	}
	str(name)
	b.WriteString("ctorch._utils\n_rebuild_tensor_v2\n(")
	b.WriteString("(")
	str("storage")
	b.WriteString("ctorch\n" + storageClass + "\n")
	str("0")
	str("cpu")
	integer(numel)
	b.WriteString("tQ")
	integer(0)
	tuple(shape)
	tuple(stride)
	b.WriteString("\x89}tR")
	b.WriteString("u.")
	return b.Bytes()
}

func f32s(xs ...float32) []byte {
	out := make([]byte, 4*len(xs))
	for i, x := range xs {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
	}
	return out
}

func TestStridedView(t *testing.T) {
	// A transposed 2×3 view of a 3×2 storage: torch.save keeps views as
	// they are, the reader must make them contiguous.
	pkl := pickleOf("w", []int{2, 3}, []int{1, 2}, 6, "FloatStorage")
	b := zipOf(t, map[string][]byte{"a/data.pkl": pkl, "a/data/0": f32s(0, 1, 2, 3, 4, 5)}, "a/data.pkl", "a/data/0")
	f, err := Parse("t.pth", b)
	if err != nil {
		t.Fatal(err)
	}
	got := f.Tensors[0].Data
	want := f32s(0, 2, 4, 1, 3, 5)
	if !bytes.Equal(got, want) {
		t.Fatalf("transposed view read as %v", got)
	}
}

func TestRefused(t *testing.T) {
	store := map[string][]byte{"a/data/0": f32s(0, 1, 2, 3, 4, 5)}
	withPickle := func(p []byte) []byte {
		store["a/data.pkl"] = p
		return zipOf(t, store, "a/data.pkl", "a/data/0")
	}
	module := bytes.Replace(pickleOf("w", []int{6}, []int{1}, 6, "FloatStorage"), []byte("ctorch._utils\n_rebuild_tensor_v2\n"), []byte("c__main__\nMyViT\n"), 1)
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"not a zip", []byte("hello world"), "not a PyTorch zip"},
		{"legacy", []byte("\x80\x02\x8a\x0alz\xfc\x9cF\xf9 j\xa8P\x19."), "before 1.6"},
		{"a whole module", withPickle(module), "__main__.MyViT"},
		{"os.system", withPickle([]byte("\x80\x02cos\nsystem\n.")), "os.system"},
		{"beyond storage", withPickle(pickleOf("w", []int{7}, []int{1}, 6, "FloatStorage")), "beyond its storage"},
		{"storage size", withPickle(pickleOf("w", []int{6}, []int{1}, 7, "FloatStorage")), "holds 24 bytes"},
		{"huge claim", withPickle([]byte("\x80\x02\x8e\x00\x00\x00\x00\x00\x01\x00\x00.")), "claims"},
		{"unknown storage", withPickle(pickleOf("w", []int{6}, []int{1}, 6, "ComplexFloatStorage")), "ComplexFloatStorage"},
		{"no stop", withPickle([]byte("\x80\x02}")), "STOP"},
		{"not a dict", withPickle([]byte("\x80\x02K\x01.")), "not a state dict"},
		{"no tensors", withPickle([]byte("\x80\x02}X\x05\x00\x00\x00epochK\x07s.")), "no tensors"},
		{"bad opcode", withPickle([]byte("\x80\x02\xff.")), "unknown opcode"},
	} {
		_, err := Parse("t.pth", c.b)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v, want one line with %q", c.name, err, c.want)
		}
	}
}

// FuzzParse feeds arbitrary bytes, and zips around arbitrary pickles, to
// the reader: errors, never a panic, a hang or an allocation the input's
// size does not justify. Seeds: the PyTorch-written fixtures, the hand-made
// pickles above and testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, p := range []string{mhaFixture, customFixture, hfBinFixture} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) < 64<<10 {
			f.Add(b, false)
		}
		// The pickle alone, in a zip with the fixture's storages.
		f.Add(zipPickle(f, b), true)
	}
	f.Add(pickleOf("w", []int{2, 3}, []int{1, 2}, 6, "FloatStorage"), true)
	f.Add(pickleOf("w", []int{6}, []int{1}, 6, "HalfStorage"), true)
	f.Fuzz(func(t *testing.T, b []byte, asPickle bool) {
		if asPickle {
			b = zipOf(t, map[string][]byte{"a/data.pkl": b, "a/data/0": f32s(0, 1, 2, 3, 4, 5)}, "a/data.pkl", "a/data/0")
		}
		fl, err := Parse("fuzz.pth", b)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q is not one line", err)
			}
			return
		}
		var total int
		for _, x := range fl.Tensors {
			total += len(x.Data)
		}
		if total > 4*len(b)+1<<20 {
			t.Fatalf("%d tensor bytes from %d input bytes", total, len(b))
		}
	})
}

// zipPickle is the data.pkl of a torch zip (a seed for the pickle form).
func zipPickle(t testing.TB, b []byte) []byte {
	z, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range z.File {
		if strings.HasSuffix(f.Name, "/data.pkl") {
			rc, _ := f.Open()
			var buf bytes.Buffer
			buf.ReadFrom(rc)
			return buf.Bytes()
		}
	}
	t.Fatal("no data.pkl")
	return nil
}
