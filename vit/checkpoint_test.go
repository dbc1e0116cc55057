package vit_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"vitc/vit"
)

// smallConfig is a non-preset architecture, so that round trips exercise
// every config field (mlp ratio 1.5, 3 heads, 3 channels) at little cost.
func smallConfig() vit.Config {
	return vit.Config{Image: 12, Channels: 3, Patch: 4, Dim: 12, Depth: 2, Heads: 3, MLPRatio: 1.5, Classes: 5, Attention: "softmax"}
}

// newPerturbed is a model whose every parameter is random (see
// perturbForFixture), so equal parameters are not equal by accident.
func newPerturbed(t *testing.T, cfg vit.Config, seed int64) *vit.Model {
	t.Helper()
	m, err := vit.New(cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	perturbForFixture(m, seed)
	return m
}

// rawTensor is one tensor of a hand-made safetensors file.
type rawTensor struct {
	name  string
	dtype string
	shape []int
	data  []byte
	// offsets, if set, are written as data_offsets instead of data's span,
	// and data is not written.
	offsets []int64
}

func f32Bytes(x []float32) []byte {
	b := make([]byte, 0, 4*len(x))
	for _, v := range x {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

// modelTensors lists m's parameters as F32 raw tensors, in timm order.
func modelTensors(m *vit.Model) []rawTensor {
	var ts []rawTensor
	for _, p := range m.Params.List() {
		ts = append(ts, rawTensor{name: p.Name, dtype: "F32", shape: slices.Clone(p.Shape), data: f32Bytes(p.Data)})
	}
	return ts
}

// rawSafetensors lays out a safetensors file by hand, so tests can write
// what vitc's writer refuses to (wrong dtypes, duplicate names, lies).
// metadata is a JSON object literal or "".
func rawSafetensors(metadata string, ts []rawTensor) []byte {
	var h strings.Builder
	h.WriteByte('{')
	sep := ""
	if metadata != "" {
		h.WriteString(`"__metadata__":` + metadata)
		sep = ","
	}
	var data []byte
	for _, t := range ts {
		name, _ := json.Marshal(t.name)
		shape, _ := json.Marshal(t.shape)
		begin, end := int64(len(data)), int64(len(data)+len(t.data))
		if t.offsets != nil {
			begin, end = t.offsets[0], t.offsets[1]
		} else {
			data = append(data, t.data...)
		}
		fmt.Fprintf(&h, `%s%s:{"dtype":%q,"shape":%s,"data_offsets":[%d,%d]}`, sep, name, t.dtype, shape, begin, end)
		sep = ","
	}
	h.WriteByte('}')
	for h.Len()%8 != 0 {
		h.WriteByte(' ')
	}
	out := binary.LittleEndian.AppendUint64(nil, uint64(h.Len()))
	out = append(out, h.String()...)
	return append(out, data...)
}

// vitcMetadata is the __metadata__ object vitc writes for cfg.
func vitcMetadata(t *testing.T, cfg vit.Config) string {
	t.Helper()
	js, err := json.Marshal(struct {
		Format int `json:"format"`
		vit.Config
	}{1, cfg})
	if err != nil {
		t.Fatal(err)
	}
	md, err := json.Marshal(map[string]string{vit.MetadataKey: string(js)})
	if err != nil {
		t.Fatal(err)
	}
	return string(md)
}

func writeFile(t *testing.T, path string, b []byte) string {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadNoPanic calls vit.Load and turns a panic into a test failure that
// names the input, so one bad case does not hide the others.
func loadNoPanic(t *testing.T, path string, opts vit.LoadOptions) (m *vit.Model, meta vit.Meta, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("vit.Load(%s, %+v) panicked: %v", path, opts, r)
		}
	}()
	return vit.Load(path, opts)
}

// withTensor returns ts with the named tensor changed by f (or removed when
// f returns false).
func withTensor(ts []rawTensor, name string, f func(*rawTensor) bool) []rawTensor {
	var out []rawTensor
	found := false
	for _, t := range ts {
		if t.name == name {
			found = true
			if !f(&t) {
				continue
			}
		}
		out = append(out, t)
	}
	if !found {
		panic("withTensor: no tensor " + name)
	}
	return out
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	micro, err := vit.Preset("micro")
	if err != nil {
		t.Fatal(err)
	}
	microModel := newPerturbed(t, micro, 1)
	timmTensors := modelTensors(microModel)
	valid := filepath.Join(dir, "valid.safetensors")
	if err := microModel.Save(valid, vit.Meta{Dataset: "x"}); err != nil {
		t.Fatal(err)
	}
	validBytes, err := os.ReadFile(valid)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadNoPanic(t, valid, vit.LoadOptions{}); err != nil {
		t.Fatalf("valid checkpoint: %v", err)
	}
	timm := writeFile(t, filepath.Join(dir, "timm.safetensors"), rawSafetensors("", timmTensors))
	if _, _, err := loadNoPanic(t, timm, vit.LoadOptions{Preset: "micro"}); err != nil {
		t.Fatalf("valid timm checkpoint: %v", err)
	}
	md := vitcMetadata(t, micro)
	transposeQKV := func(r *rawTensor) bool { r.shape = []int{r.shape[1], r.shape[0]}; return true }
	drop := func(*rawTensor) bool { return false }
	pngHead := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00\x1f\xf3\xffa")

	for _, tc := range []struct {
		name string
		// file returns the path to load; bytes are written under dir.
		file func() string
		opts vit.LoadOptions
		// want are substrings of the error message; errIs, if set, must
		// match with errors.Is.
		want  []string
		errIs error
		// noPath: the message need not name the file.
		noPath bool
	}{
		{name: "missing file",
			file:  func() string { return filepath.Join(dir, "does-not-exist.safetensors") },
			want:  []string{"no such file"},
			errIs: fs.ErrNotExist},
		{name: "folder without model.safetensors",
			file: func() string { return dir },
			want: []string{"checkpoint folder", "no model.safetensors"}},
		{name: "empty file",
			file: func() string { return writeFile(t, filepath.Join(dir, "empty.safetensors"), nil) },
			want: []string{"not a safetensors file", "0 bytes"}},
		{name: "truncated in the data",
			file: func() string {
				return writeFile(t, filepath.Join(dir, "half.safetensors"), validBytes[:len(validBytes)/2])
			},
			want: []string{"outside the", "data buffer"}},
		{name: "truncated in the header",
			file: func() string { return writeFile(t, filepath.Join(dir, "head.safetensors"), validBytes[:100]) },
			want: []string{"header length", "exceeds file size 100"}},
		{name: "truncated to the length prefix",
			file: func() string { return writeFile(t, filepath.Join(dir, "prefix.safetensors"), validBytes[:8]) },
			want: []string{"header length", "exceeds file size 8"}},
		{name: "PNG image",
			file: func() string { return writeFile(t, filepath.Join(dir, "cat.png"), pngHead) },
			want: []string{"not a safetensors file", "PNG image"}},
		{name: "text",
			file: func() string {
				return writeFile(t, filepath.Join(dir, "notes.txt"), []byte("these are not the weights you are looking for\n"))
			},
			want: []string{"not a safetensors file"}},
		{name: "PyTorch zip",
			file: func() string {
				return writeFile(t, filepath.Join(dir, "model.pth"), []byte("PK\x03\x04\x14\x00\x00\x00\x08\x00archive/data.pkl"))
			},
			want: []string{"not a PyTorch zip file"}},
		{name: "header claiming 8 GB",
			file: func() string {
				b := binary.LittleEndian.AppendUint64(nil, 8<<30)
				return writeFile(t, filepath.Join(dir, "8gb-header.safetensors"), append(b, `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`...))
			},
			want: []string{"header length 8589934592 exceeds file size"}},
		{name: "tensor claiming 8 GB",
			file: func() string {
				ts := withTensor(timmTensors, "blocks.0.attn.qkv.weight", func(r *rawTensor) bool {
					r.shape = []int{1 << 31}
					r.offsets = []int64{0, 8 << 30}
					return true
				})
				return writeFile(t, filepath.Join(dir, "8gb-tensor.safetensors"), rawSafetensors(md, ts))
			},
			want: []string{"blocks.0.attn.qkv.weight", "8589934592"}},
		{name: "wrong shape (vitc)",
			file: func() string {
				return writeFile(t, filepath.Join(dir, "shape.safetensors"), rawSafetensors(md, withTensor(timmTensors, "blocks.0.attn.qkv.weight", transposeQKV)))
			},
			want: []string{"blocks.0.attn.qkv.weight", "[64 192]", "[192 64]"}},
		{name: "wrong shape (timm)",
			file: func() string {
				return writeFile(t, filepath.Join(dir, "shape-timm.safetensors"), rawSafetensors("", withTensor(timmTensors, "blocks.0.attn.qkv.weight", transposeQKV)))
			},
			opts: vit.LoadOptions{Preset: "micro"},
			want: []string{"blocks.0.attn.qkv.weight", "[64 192]", "[192 64]"}},
		{name: "missing tensor (vitc)",
			file: func() string {
				return writeFile(t, filepath.Join(dir, "missing.safetensors"), rawSafetensors(md, withTensor(timmTensors, "blocks.1.mlp.fc2.bias", drop)))
			},
			want: []string{"missing tensor blocks.1.mlp.fc2.bias"}},
		{name: "missing tensor (timm)",
			file: func() string {
				return writeFile(t, filepath.Join(dir, "missing-timm.safetensors"), rawSafetensors("", withTensor(timmTensors, "norm.weight", drop)))
			},
			opts: vit.LoadOptions{Preset: "micro"},
			want: []string{"missing tensor norm.weight"}},
		{name: "integer dtype",
			file: func() string {
				return writeFile(t, filepath.Join(dir, "int.safetensors"), rawSafetensors(md, withTensor(timmTensors, "cls_token", func(r *rawTensor) bool {
					r.dtype = "I32"
					return true
				})))
			},
			want: []string{"cls_token", "I32"}},
		{name: "duplicate tensor",
			file: func() string {
				return writeFile(t, filepath.Join(dir, "dup.safetensors"), rawSafetensors(md, append(slices.Clone(timmTensors), timmTensors[0])))
			},
			want: []string{"duplicate tensor name", timmTensors[0].name}},
		{name: "timm file with a distillation token but a ViT's pos_embed",
			file: func() string {
				return writeFile(t, filepath.Join(dir, "dist.safetensors"), rawSafetensors("", append(timmTensors[:len(timmTensors):len(timmTensors)],
					rawTensor{name: "dist_token", dtype: "F32", shape: []int{1, 1, 64}, data: make([]byte, 4*64)})))
			},
			want: []string{"pos_embed holds 50 tokens", "cls and distillation tokens"}},
		{name: "timm file whose heads do not divide dim",
			file: func() string { return timm },
			opts: vit.LoadOptions{Heads: 3},
			want: []string{"3 heads do not divide dim 64"}},
		{name: "unknown preset",
			file:   func() string { return timm },
			opts:   vit.LoadOptions{Preset: "vit-huge"},
			want:   []string{`unknown model preset "vit-huge"`, "micro", "deit-tiny"},
			noPath: true},
		{name: "unknown attention",
			file: func() string { return timm },
			opts: vit.LoadOptions{Preset: "micro", Attention: "linear"},
			want: []string{`unknown attention kind "linear"`}},
		{name: "metadata not JSON",
			file: func() string {
				return writeFile(t, filepath.Join(dir, "badmeta.safetensors"), rawSafetensors(`{"vitc":"{\"image\": 28,"}`, timmTensors))
			},
			want: []string{"bad vitc metadata"}},
		{name: "metadata with an impossible config",
			file: func() string {
				bad := micro
				bad.Heads = 5 // does not divide 64
				return writeFile(t, filepath.Join(dir, "badcfg.safetensors"), rawSafetensors(vitcMetadata(t, bad), timmTensors))
			},
			want: []string{"5 heads do not divide dim 64"}},
		{name: "metadata with an unknown attention kind",
			file: func() string {
				bad := micro
				bad.Attention = "performer"
				return writeFile(t, filepath.Join(dir, "badattn.safetensors"), rawSafetensors(vitcMetadata(t, bad), timmTensors))
			},
			want: []string{`unknown attention kind "performer"`}},
		{name: "metadata disagreeing with the tensors",
			file: func() string {
				bad := micro
				bad.Dim = 32
				bad.Heads = 2
				return writeFile(t, filepath.Join(dir, "disagree.safetensors"), rawSafetensors(vitcMetadata(t, bad), timmTensors))
			},
			want: []string{"patch_embed.proj.weight", "[64 1 4 4]", "[32 1 4 4]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.file()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			m, _, err := loadNoPanic(t, path, tc.opts)
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatalf("loaded %s without error (config %+v)", path, m.Config)
			}
			if m != nil {
				t.Errorf("returned a model along with error %v", err)
			}
			msg := err.Error()
			t.Logf("error: %s", msg)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if !tc.noPath && !strings.Contains(msg, path) {
				t.Errorf("error %q does not name the file %s", msg, path)
			}
			if tc.errIs != nil && !errors.Is(err, tc.errIs) {
				t.Errorf("errors.Is(%v, %v) is false", err, tc.errIs)
			}
			// Sizes claimed by a file are checked before anything is
			// allocated from them: no case may cost more than the valid
			// checkpoint's own loading (a few MiB).
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
				t.Errorf("allocated %d MiB on a bad file", alloc>>20)
			}
		})
	}

	// An attention kind that Validate knows but this binary lacks.
	t.Run("unavailable attention", func(t *testing.T) {
		if attentionAvailable("taylor") == nil {
			t.Skip("taylor attention is available in this build")
		}
		cfg := micro
		cfg.Attention = "taylor"
		path := writeFile(t, filepath.Join(dir, "taylor.safetensors"), rawSafetensors(vitcMetadata(t, cfg), timmTensors))
		_, _, err := loadNoPanic(t, path, vit.LoadOptions{})
		if err == nil || !strings.Contains(err.Error(), `"taylor"`) || !strings.Contains(err.Error(), path) {
			t.Errorf("got error %v, want one naming attention \"taylor\" and %s", err, path)
		}
	})
}

// sameParams requires got and want to have the same parameters in the same
// order with bit-identical values, except those for which skip is true.
func sameParams(t *testing.T, got, want *vit.Model, skip func(name string) bool) {
	t.Helper()
	gl, wl := got.Params.List(), want.Params.List()
	if len(gl) != len(wl) {
		t.Fatalf("%d params, want %d", len(gl), len(wl))
	}
	for i, w := range wl {
		g := gl[i]
		if g.Name != w.Name {
			t.Fatalf("param %d is %s, want %s", i, g.Name, w.Name)
		}
		if skip != nil && skip(w.Name) {
			continue
		}
		if !slices.Equal(g.Shape, w.Shape) {
			t.Fatalf("%s has shape %v, want %v", w.Name, g.Shape, w.Shape)
		}
		for k := range w.Data {
			if math.Float32bits(g.Data[k]) != math.Float32bits(w.Data[k]) {
				t.Errorf("%s[%d] = %v, want %v", w.Name, k, g.Data[k], w.Data[k])
				break
			}
		}
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig()
	m := newPerturbed(t, cfg, 11)
	// Values a careless encoder would not carry through.
	cls, _ := m.Params.Get("cls_token")
	cls.Data[0] = float32(math.Copysign(0, -1))
	cls.Data[1] = math.SmallestNonzeroFloat32
	cls.Data[2] = math.MaxFloat32
	cls.Data[3] = float32(math.Inf(-1))
	cls.Data[4] = math.Float32frombits(0x7fc00123) // NaN with a payload

	for _, tc := range []struct {
		name string
		meta vit.Meta
	}{
		{"empty meta", vit.Meta{}},
		{"full meta", vit.Meta{
			Dataset:    `imagefolder:/data/"cats & dogs"`,
			NormMean:   []float32{0.485, 0.456, 0.406},
			NormStd:    []float32{0.229, 0.224, 0.225},
			ClassNames: []string{"chat", "Hund <big>", "鳥", "", "a\nb"},
			Extensions: map[string]json.RawMessage{
				"blockprune": json.RawMessage(`{"masks":{"blocks.0.attn.qkv.weight":[1,0,1]},"sparsity":0.5}`),
				"tokenprune": json.RawMessage(`[0.7,0.7]`),
			},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".safetensors")
			if err := m.Save(path, tc.meta); err != nil {
				t.Fatal(err)
			}
			got, meta, err := loadNoPanic(t, path, vit.LoadOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Config, cfg) {
				t.Errorf("config %+v, want %+v", got.Config, cfg)
			}
			if !reflect.DeepEqual(meta, tc.meta) {
				t.Errorf("meta %#v, want %#v", meta, tc.meta)
			}
			sameParams(t, got, m, nil)
			// A second save of the loaded model is byte-identical.
			again := filepath.Join(dir, "again.safetensors")
			if err := got.Save(again, meta); err != nil {
				t.Fatal(err)
			}
			if sha256File(t, again) != sha256File(t, path) {
				t.Errorf("Save(Load(Save(m))) differs from Save(m)")
			}
		})
	}
}

// dirNames lists the entries of dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestSaveAtomic(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig()
	first := newPerturbed(t, cfg, 1)
	second := newPerturbed(t, cfg, 2)
	path := filepath.Join(dir, "model.safetensors")

	if err := first.Save(path, vit.Meta{Dataset: "first"}); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"model.safetensors"}) {
		t.Errorf("after Save the directory holds %v, want only model.safetensors", names)
	}
	if st, err := os.Stat(path); err != nil {
		t.Fatal(err)
	} else if st.Mode().Perm() != 0o644 {
		t.Errorf("checkpoint mode %v, want 0644", st.Mode().Perm())
	}

	// Overwriting replaces the file and leaves nothing else behind.
	if err := second.Save(path, vit.Meta{Dataset: "second"}); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"model.safetensors"}) {
		t.Errorf("after a second Save the directory holds %v", names)
	}
	got, meta, err := loadNoPanic(t, path, vit.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if meta.Dataset != "second" {
		t.Errorf("overwritten checkpoint has dataset %q", meta.Dataset)
	}
	sameParams(t, got, second, nil)
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	// A Save that fails leaves the previous file as it was and no
	// temporary file: before writing (metadata that cannot be encoded) ...
	if err := first.Save(path, vit.Meta{NormMean: []float32{float32(math.NaN())}}); err == nil {
		t.Error("Save with a NaN in the metadata succeeded")
	}
	// ... and after writing (the rename onto a directory fails).
	sub := filepath.Join(dir, "taken")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := first.Save(sub, vit.Meta{}); err == nil {
		t.Errorf("Save onto directory %s succeeded", sub)
	} else if !strings.Contains(err.Error(), sub) {
		t.Errorf("error %q does not name %s", err, sub)
	}
	if st, err := os.Stat(sub); err != nil || !st.IsDir() {
		t.Errorf("directory %s was replaced: %v", sub, err)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"model.safetensors", "taken"}) {
		t.Errorf("after failed Saves the directory holds %v", names)
	}
	if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, want) {
		t.Errorf("a failed Save changed %s (%v)", path, err)
	}

	// A Save into a directory that does not exist fails and creates nothing.
	missing := filepath.Join(dir, "no", "such", "dir")
	err = first.Save(filepath.Join(missing, "model.safetensors"), vit.Meta{})
	if err == nil {
		t.Fatal("Save into a missing directory succeeded")
	}
	if !strings.Contains(err.Error(), missing) {
		t.Errorf("error %q does not name the path", err)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v is not fs.ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "no")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Save created %s: %v", filepath.Join(dir, "no"), err)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"model.safetensors", "taken"}) {
		t.Errorf("after failed Saves the directory holds %v", names)
	}
}

func TestLoadWeightsFrom(t *testing.T) {
	dir := t.TempDir()
	cfg := smallConfig()
	src := newPerturbed(t, cfg, 5)
	path := filepath.Join(dir, "src.safetensors")
	if err := src.Save(path, vit.Meta{ClassNames: []string{"a", "b", "c", "d", "e"}}); err != nil {
		t.Fatal(err)
	}
	isHead := func(name string) bool { return strings.HasPrefix(name, "head.") }

	t.Run("same classes", func(t *testing.T) {
		dst := newPerturbed(t, cfg, 6)
		if err := dst.LoadWeightsFrom(path); err != nil {
			t.Fatal(err)
		}
		sameParams(t, dst, src, nil)
	})

	t.Run("other class count keeps the fresh head", func(t *testing.T) {
		other := cfg
		other.Classes = 3
		dst := newPerturbed(t, other, 6)
		fresh := newPerturbed(t, other, 6) // the same initial weights
		if err := dst.LoadWeightsFrom(path); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(dst.Config, other) {
			t.Errorf("config became %+v", dst.Config)
		}
		sameParams(t, dst, src, isHead)                                            // body from the checkpoint
		sameParams(t, dst, fresh, func(name string) bool { return !isHead(name) }) // head untouched
	})

	t.Run("timm checkpoint into a new head", func(t *testing.T) {
		micro, err := vit.Preset("micro")
		if err != nil {
			t.Fatal(err)
		}
		ck := filepath.Join(torchFixtureDir, "micro_softmax.safetensors")
		ref, _, err := loadNoPanic(t, ck, vit.LoadOptions{Preset: "micro"})
		if err != nil {
			t.Fatal(err)
		}
		micro.Classes = 4
		dst := newPerturbed(t, micro, 7)
		fresh := newPerturbed(t, micro, 7)
		if err := dst.LoadWeightsFrom(ck); err != nil {
			t.Fatal(err)
		}
		sameParams(t, dst, ref, isHead)
		sameParams(t, dst, fresh, func(name string) bool { return !isHead(name) })
	})

	t.Run("other body is an error naming the tensor", func(t *testing.T) {
		other := cfg
		other.Dim, other.Heads = 6, 2
		dst := newPerturbed(t, other, 6)
		err := dst.LoadWeightsFrom(path)
		if err == nil {
			t.Fatal("loaded dim-12 weights into a dim-6 model")
		}
		for _, w := range []string{path, "patch_embed.proj.weight"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("error %q does not contain %q", err, w)
			}
		}
	})

	t.Run("missing file", func(t *testing.T) {
		dst := newPerturbed(t, cfg, 6)
		err := dst.LoadWeightsFrom(filepath.Join(dir, "nope.safetensors"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("error %v, want fs.ErrNotExist", err)
		}
	})
}

// TestLoadTimmFineTuned: a timm checkpoint fine-tuned to another input and
// class count loads with its preset; the changed sizes come from the tensors.
func TestLoadTimmFineTuned(t *testing.T) {
	cfg, err := vit.Preset("micro")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Image, cfg.Channels, cfg.Classes = 32, 3, 6
	src := newPerturbed(t, cfg, 9)
	path := writeFile(t, filepath.Join(t.TempDir(), "ft.safetensors"), rawSafetensors("", modelTensors(src)))
	m, meta, err := loadNoPanic(t, path, vit.LoadOptions{Preset: "micro"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m.Config, cfg) {
		t.Errorf("config %+v, want %+v", m.Config, cfg)
	}
	// Nothing recorded: the normalisation is timm's default, nothing else.
	mean, std := vit.DefaultNorm(cfg.Channels)
	if !reflect.DeepEqual(meta, vit.Meta{NormMean: mean, NormStd: std}) {
		t.Errorf("meta %+v from a file without metadata", meta)
	}
	sameParams(t, m, src, nil)
}

// Sizes in a header or in vitc metadata cost nothing to claim. Load must
// check them against the tensors actually in the file before it allocates a
// model or loops over them: these files are a few hundred bytes each.
//
// The sizes that reach an allocation exceed what the Go runtime can ever
// allocate (2^48 bytes on amd64), so an unfixed Load panics at once instead
// of asking the machine for terabytes; sizes between the RAM and that limit
// make it die of a fatal, unrecoverable out-of-memory error instead.
type hostileCase struct {
	name   string
	meta   func(t *testing.T) string // __metadata__ object or ""
	tensor rawTensor                 // the one tensor in the file
}

var hostileCases = []hostileCase{
	{
		name:   "pos_embed claiming 2^63 tokens",
		tensor: rawTensor{name: "pos_embed", dtype: "F32", shape: []int{1, math.MaxInt64, 0}, offsets: []int64{0, 0}},
	},
	{
		name:   "head claiming 2^42 classes",
		tensor: rawTensor{name: "head.weight", dtype: "F32", shape: []int{1 << 42, 0}, offsets: []int64{0, 0}},
	},
	{
		name: "metadata claiming 10^13 classes",
		meta: func(t *testing.T) string {
			cfg, _ := vit.Preset("micro")
			cfg.Classes = 1e13
			return vitcMetadata(t, cfg)
		},
		tensor: rawTensor{name: "cls_token", dtype: "F32", shape: []int{1, 1, 64}, data: make([]byte, 256)},
	},
	{
		name: "metadata claiming 2^61 classes",
		meta: func(t *testing.T) string {
			cfg, _ := vit.Preset("micro")
			cfg.Classes = 1 << 61
			return vitcMetadata(t, cfg)
		},
		tensor: rawTensor{name: "cls_token", dtype: "F32", shape: []int{1, 1, 64}, data: make([]byte, 256)},
	},
	{
		name: "metadata claiming a 2^22-pixel image",
		meta: func(t *testing.T) string {
			cfg, _ := vit.Preset("micro")
			cfg.Image, cfg.Patch = 1<<22, 1
			return vitcMetadata(t, cfg)
		},
		tensor: rawTensor{name: "cls_token", dtype: "F32", shape: []int{1, 1, 64}, data: make([]byte, 256)},
	},
}

// TestLoadHostileSizes loads each hostile file in a child process (the
// failures it guards against, a fatal out-of-memory and an endless loop,
// are beyond any recover) and requires a prompt error.
func TestLoadHostileSizes(t *testing.T) {
	if name := os.Getenv("VITC_HOSTILE_CASE"); name != "" {
		hostileChild(t, name)
		return
	}
	for _, tc := range hostileCases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestLoadHostileSizes$", "-test.v")
			cmd.Env = append(os.Environ(), "VITC_HOSTILE_CASE="+tc.name, "VITC_HOSTILE_DIR="+t.TempDir())
			start := time.Now()
			out, err := cmd.CombinedOutput()
			elapsed := time.Since(start)
			if ctx.Err() != nil {
				t.Fatalf("vit.Load did not return within %v", elapsed.Round(time.Second))
			}
			if err != nil {
				t.Fatalf("child failed (%v):\n%s", err, truncateOutput(out, 2000))
			}
			t.Logf("%s", bytes.TrimSpace(truncateOutput(out, 2000)))
			if elapsed > 5*time.Second {
				t.Errorf("vit.Load took %v to refuse a file of a few hundred bytes", elapsed)
			}
		})
	}
}

func truncateOutput(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return append(b[:n:n], "..."...)
}

// hostileChild is the child side of TestLoadHostileSizes.
func hostileChild(t *testing.T, name string) {
	i := slices.IndexFunc(hostileCases, func(c hostileCase) bool {
		return c.name == name
	})
	if i < 0 {
		t.Fatalf("no hostile case %q", name)
	}
	tc := hostileCases[i]
	md := ""
	if tc.meta != nil {
		md = tc.meta(t)
	}
	path := writeFile(t, filepath.Join(os.Getenv("VITC_HOSTILE_DIR"), "hostile.safetensors"), rawSafetensors(md, []rawTensor{tc.tensor}))
	m, _, err := loadNoPanic(t, path, vit.LoadOptions{Preset: "micro"})
	if err == nil {
		t.Fatalf("loaded a hostile file (config %+v)", m.Config)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file", err)
	}
	t.Logf("error: %v", err)
}
