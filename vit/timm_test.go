package vit_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"vitc/vit"
)

// Fixtures written by tools/torchref/timm_fixtures.py: an independent
// PyTorch ViT of a shape no preset has (dim 96, depth 5, 3 heads, 40 px,
// patch 8, 7 classes, LayerNorm eps 1e-5), saved as a bare timm file.
const timmFixtureDir = "testdata/timm"

// timmTol bounds max|vitc − torch| / max|torch| for the F16-stored fixture
// run in float32 against PyTorch's float64 (the acceptance asks < 1e-4).
const timmTol = 1e-4

func TestLoadTimmInfersArchitecture(t *testing.T) {
	ck, err := vit.Open(filepath.Join(timmFixtureDir, "vit_d96.safetensors"), vit.LoadOptions{Heads: 3, LNEps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	m, err := ck.Model()
	if err != nil {
		t.Fatal(err)
	}
	meta := ck.Meta
	want := vit.Config{Image: 40, Channels: 3, Patch: 8, Dim: 96, Depth: 5, Heads: 3, MLPRatio: 2, Classes: 7, Attention: "softmax", LNEps: 1e-5}
	if !slicesEqualConfig(m.Config, want) {
		t.Fatalf("inferred %+v, want %+v", m.Config, want)
	}
	if !slices.Equal(meta.NormMean, vit.ImageNetMean) || !slices.Equal(meta.NormStd, vit.ImageNetStd) {
		t.Errorf("default normalisation %v/%v, want ImageNet's", meta.NormMean, meta.NormStd)
	}
	// What the file could not tell is said: heads and eps as given, the
	// normalisation as assumed, with the option that sets it.
	flag := func(fact string) string { return "--" + fact }
	line := ck.Describe(flag)
	for _, want := range []string{"3 heads (--heads)", "LayerNorm eps 1e-05 (--ln_eps)", "assumed: normalisation mean [0.485 0.456 0.406] std [0.229 0.224 0.225] (timm's for 3 channels; set --normalisation)", "40×40"} {
		if !strings.Contains(line, want) {
			t.Errorf("description %q does not say %q", line, want)
		}
	}
	if strings.Contains(line, "\n") {
		t.Errorf("description %q is not one line", line)
	}

	x, xs := readNpy(t, filepath.Join(timmFixtureDir, "vit_d96_input.npy"))
	ref, _ := readNpy(t, filepath.Join(timmFixtureDir, "vit_d96_logits.npy"))
	got := vit.Predict(m, x, xs[0], xs[0])
	rel := maxRelErr(got, ref)
	t.Logf("dim-96 timm file: max relative error %.3g vs PyTorch", rel)
	if !(rel < timmTol) {
		t.Errorf("max relative error %.3g vs PyTorch, want < %g", rel, timmTol)
	}

	// The eps is part of the function: timm's default 1e-6 must be visibly
	// wrong here, or the fixture would not test --ln-eps.
	m6, _, err := vit.Load(filepath.Join(timmFixtureDir, "vit_d96.safetensors"), vit.LoadOptions{Heads: 3})
	if err != nil {
		t.Fatal(err)
	}
	if rel6 := maxRelErr(vit.Predict(m6, x, xs[0], xs[0]), ref); rel6 < 10*rel {
		t.Errorf("eps 1e-6 gives relative error %.3g, not clearly worse than eps 1e-5's %.3g", rel6, rel)
	}
}

func slicesEqualConfig(a, b vit.Config) bool { return fmt.Sprintf("%+v", a) == fmt.Sprintf("%+v", b) }

func TestLoadTimmNeedsHeads(t *testing.T) {
	// dim 96 is no multiple of 64: timm's dim/64 has no answer.
	_, _, err := vit.Load(filepath.Join(timmFixtureDir, "vit_d96.safetensors"), vit.LoadOptions{})
	if err == nil || !errors.Is(err, vit.ErrNeedHeads) {
		t.Fatalf("got %v, want an error asking for the head count", err)
	}
	_, _, err = vit.Load(filepath.Join(timmFixtureDir, "vit_d96.safetensors"), vit.LoadOptions{Heads: 5})
	if err == nil || !strings.Contains(err.Error(), "5 heads do not divide dim 96") {
		t.Fatalf("got %v, want the heads/dim error", err)
	}
}

func TestUnsupportedTensorNamed(t *testing.T) {
	m := newPerturbed(t, vit.Config{Image: 8, Channels: 1, Patch: 4, Dim: 64, Depth: 1, Heads: 1, MLPRatio: 1, Classes: 2, Attention: "softmax"}, 1)
	for _, extra := range []string{"blocks.0.ls1.gamma", "reg_token", "fc_norm.weight", "blocks.0.attn.relative_position_bias_table", "something.else"} {
		ts := append(modelTensors(m), rawTensor{name: extra, dtype: "F32", shape: []int{64}, data: make([]byte, 4*64)})
		path := writeFile(t, filepath.Join(t.TempDir(), "x.safetensors"), rawSafetensors("", ts))
		_, _, err := vit.Load(path, vit.LoadOptions{})
		var ue *vit.UnsupportedError
		if !errors.As(err, &ue) || ue.Tensor != extra || strings.Contains(err.Error(), "\n") {
			t.Errorf("extra %s: got %v, want one line naming the tensor", extra, err)
		}
	}
}

func TestResamplePosEmbedMatchesTorch(t *testing.T) {
	pe, shape := readNpy(t, filepath.Join(timmFixtureDir, "pos_embed_14.npy")) // (1, 197, 8)
	d := shape[2]
	for _, side := range []int{2, 4, 20} {
		want, wshape := readNpy(t, filepath.Join(timmFixtureDir, fmt.Sprintf("pos_embed_14_to_%d.npy", side)))
		if wshape[1] != 1+side*side {
			t.Fatalf("fixture shape %v", wshape)
		}
		got := vit.ResamplePosEmbed(pe, d, 14, side)
		rel := maxRelErr(got, want)
		t.Logf("14x14 -> %dx%d: max relative error %.3g vs torch interpolate(bicubic)", side, side, rel)
		if !(rel < 1e-6) {
			t.Errorf("14x14 -> %dx%d: max relative error %.3g vs torch", side, side, rel)
		}
		if !slices.Equal(got[:d], pe[:d]) {
			t.Errorf("cls row changed")
		}
	}
	// antialias=True, timm's own default.
	for _, side := range []int{2, 4, 20} {
		want, _ := readNpy(t, filepath.Join(timmFixtureDir, fmt.Sprintf("pos_embed_14_to_%d_aa.npy", side)))
		rel := maxRelErr(vit.ResamplePosEmbedAntialias(pe, d, 14, side), want)
		t.Logf("14x14 -> %dx%d antialiased: max relative error %.3g vs torch", side, side, rel)
		if !(rel < 1e-6) {
			t.Errorf("14x14 -> %dx%d antialiased: max relative error %.3g vs torch", side, side, rel)
		}
	}
	// Same size is the identity (every tap but one has weight 0).
	if got := vit.ResamplePosEmbed(pe, d, 14, 14); maxRelErr(got, pe) > 1e-7 {
		t.Errorf("14 -> 14 is not the identity")
	}
}

func TestAdaptInputConvMatchesTimm(t *testing.T) {
	w, shape := readNpy(t, filepath.Join(timmFixtureDir, "conv_rgb.npy")) // (5, 3, 4, 4)
	want, _ := readNpy(t, filepath.Join(timmFixtureDir, "conv_rgb_to_grey.npy"))
	got := vit.AdaptInputConv(w, shape[0], 3, 1, 16)
	if rel := maxRelErr(got, want); !(rel < 1e-6) {
		t.Errorf("RGB -> grey: max relative error %.3g vs timm", rel)
	}
	// grey -> RGB: a grey image replicated to RGB must embed as before.
	grey := vit.AdaptInputConv(w, shape[0], 3, 1, 16)
	rgb := vit.AdaptInputConv(grey, shape[0], 1, 3, 16)
	for o := range shape[0] {
		for j := range 16 {
			s := rgb[o*48+j] + rgb[o*48+16+j] + rgb[o*48+32+j]
			if math.Abs(float64(s-grey[o*16+j])) > 1e-6 {
				t.Fatalf("grey -> RGB does not preserve a grey image's embedding at (%d, %d)", o, j)
			}
		}
	}
}

// TestAdaptPretrained fine-tunes the PyTorch dim-96 file (40 px, RGB, 7
// classes) onto grey 24 px data with 3 classes: every adaptation is made
// and reported, and what is not adapted is copied unchanged.
func TestAdaptPretrained(t *testing.T) {
	var lines []string
	logf := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	path := filepath.Join(timmFixtureDir, "vit_d96.safetensors")
	pre, err := vit.Open(path, vit.LoadOptions{Heads: 3, LNEps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	src, _, err := vit.Load(path, vit.LoadOptions{Heads: 3, LNEps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pre.Adapt(vit.Task{Image: 24, Channels: 1, Classes: 3}, vit.InitOptions{KeepHead: true}, 1); err == nil || !strings.Contains(err.Error(), "7 classes") {
		t.Errorf("keeping a 7-class head for 3 classes: %v", err)
	}
	if _, err := pre.Adapt(vit.Task{Image: 30, Channels: 3, Classes: 7}, vit.InitOptions{}, 1); err == nil || !strings.Contains(err.Error(), "patch size 8") {
		t.Errorf("30 px with patch 8: %v", err)
	}
	m, err := pre.Adapt(vit.Task{Image: 24, Channels: 1, Classes: 3}, vit.InitOptions{Load: vit.LoadOptions{Log: logf}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if m.Image != 24 || m.Channels != 1 || m.Classes != 3 || m.Dim != 96 || m.Heads != 3 || m.Eps() != 1e-5 {
		t.Fatalf("adapted config %+v", m.Config)
	}
	got := strings.Join(lines, "\n")
	for _, want := range []string{"head: new, 3 classes", "pos_embed: resampled bicubic from a 5x5 to a 3x3 grid", "patch_embed.proj: adapted from 3 to 1 input channels"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in %q", want, got)
		}
	}
	get := func(m *vit.Model, name string) []float32 {
		p, ok := m.Params.Get(name)
		if !ok {
			t.Fatalf("no %s", name)
		}
		return p.Data
	}
	if !slices.Equal(get(m, "blocks.3.mlp.fc1.weight"), get(src, "blocks.3.mlp.fc1.weight")) {
		t.Error("block weights were not copied")
	}
	if want := vit.ResamplePosEmbed(get(src, "pos_embed"), 96, 5, 3); !slices.Equal(get(m, "pos_embed"), want) {
		t.Error("pos_embed is not the resampled one")
	}
	if want := vit.AdaptInputConv(get(src, "patch_embed.proj.weight"), 96, 3, 1, 64); !slices.Equal(get(m, "patch_embed.proj.weight"), want) {
		t.Error("patch_embed.proj.weight is not the adapted one")
	}
	aa, err := pre.Adapt(vit.Task{Image: 24, Channels: 1, Classes: 3}, vit.InitOptions{PosEmbedAntialias: true}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := vit.ResamplePosEmbedAntialias(get(src, "pos_embed"), 96, 5, 3); !slices.Equal(get(aa, "pos_embed"), want) {
		t.Error("PosEmbedAntialias did not resample with antialiasing")
	}
}

// TestTimmFixturesIntact: every file matches the SHA-256 that
// tools/torchref/timm_fixtures.py recorded when it wrote it.
func TestTimmFixturesIntact(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(timmFixtureDir, "fixtures.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		SHA256 map[string]string `json:"sha256"`
	}
	if err := json.Unmarshal(b, &m); err != nil || len(m.SHA256) == 0 {
		t.Fatalf("fixtures.json: %v (%d files)", err, len(m.SHA256))
	}
	for name, want := range m.SHA256 {
		if got := sha256File(t, filepath.Join(timmFixtureDir, name)); got != want {
			t.Errorf("%s: sha256 %s, fixtures.json says %s (regenerate with tools/torchref/timm_fixtures.py)", name, got, want)
		}
	}
}
