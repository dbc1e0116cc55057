package vit_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"vitc/internal/safetensors"
	"vitc/vit"
)

// TestConvertRoundTrip: a model written in either layout reads back
// through Open with no options as the same model, with its normalisation,
// eps and class names.
func TestConvertRoundTrip(t *testing.T) {
	cfg := smallConfig()
	cfg.LNEps = 1e-5
	m := newPerturbed(t, cfg, 3)
	meta := vit.Meta{NormMean: []float32{0.1, 0.2, 0.3}, NormStd: []float32{0.4, 0.5, 0.6}, ClassNames: []string{"a", "b", "c", "d", "e"}}
	for _, to := range []string{vit.ToHF, vit.ToTimm} {
		dir := filepath.Join(t.TempDir(), "out")
		if err := m.Convert(dir, to, meta); err != nil {
			t.Fatal(err)
		}
		ck, err := vit.Open(dir, vit.LoadOptions{})
		if err != nil {
			t.Fatalf("%s: %v", to, err)
		}
		got, err := ck.Model()
		if err != nil {
			t.Fatal(err)
		}
		if !slicesEqualConfig(got.Config, m.Config) {
			t.Errorf("%s: config %+v, want %+v", to, got.Config, m.Config)
		}
		sameParams(t, got, m, nil)
		if !slices.Equal(ck.Meta.NormStd, meta.NormStd) || !slices.Equal(ck.Meta.ClassNames, meta.ClassNames) {
			t.Errorf("%s: meta %+v", to, ck.Meta)
		}
		if to == vit.ToHF && ck.Layout != vit.LayoutHF {
			t.Errorf("hf: read as layout %q", ck.Layout)
		}
		entries, _ := os.ReadDir(filepath.Dir(dir))
		if len(entries) != 1 {
			t.Errorf("%s: %d entries beside the folder: a temporary one left behind", to, len(entries))
		}
	}
}

// TestConvertHFFixtureBack: PyTorch's Hugging Face ViT, read and written
// back as hf, gives the same tensors under the same names: the names and
// the qkv split are transformers' own.
func TestConvertHFFixtureBack(t *testing.T) {
	src := filepath.Join(formatsDir, "hf_vit")
	m, meta, err := vit.Load(src, vit.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "hf")
	if err := m.Convert(dir, vit.ToHF, meta); err != nil {
		t.Fatal(err)
	}
	want, err := safetensors.ReadFile(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := safetensors.ReadFile(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Tensors) != len(want.Tensors) {
		t.Fatalf("%d tensors written, the original has %d", len(got.Tensors), len(want.Tensors))
	}
	for _, w := range want.Tensors {
		g, ok := got.Lookup(w.Name)
		if !ok {
			t.Errorf("no %s written", w.Name)
			continue
		}
		if !slices.Equal(g.Shape, w.Shape) || !bytes.Equal(g.Data, w.Data) {
			t.Errorf("%s differs (shape %v, want %v)", w.Name, g.Shape, w.Shape)
		}
	}
	for f, keys := range map[string][]string{
		"config.json":              {`"hidden_size": 48`, `"num_attention_heads": 3`, `"layer_norm_eps": 1e-12`, `"fox"`},
		"preprocessor_config.json": {`"image_mean"`, `0.55`},
	} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, key := range keys {
			if !strings.Contains(string(b), key) {
				t.Errorf("%s has no %s", f, key)
			}
		}
	}
}

func TestConvertRefused(t *testing.T) {
	cfg := smallConfig()
	cfg.Attention = "taylor"
	m := newPerturbed(t, cfg, 1)
	dir := filepath.Join(t.TempDir(), "out")
	if err := m.Convert(dir, vit.ToHF, vit.Meta{}); !errors.Is(err, vit.ErrNotPortable) || !strings.Contains(err.Error(), "taylor attention") {
		t.Errorf("taylor: %v", err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Error("a refused conversion left a folder")
	}
	cfg.Attention = "softmax"
	m = newPerturbed(t, cfg, 1)
	full := t.TempDir()
	writeFile(t, filepath.Join(full, "x"), []byte("x"))
	if err := m.Convert(full, vit.ToHF, vit.Meta{}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty folder: %v", err)
	}
}
