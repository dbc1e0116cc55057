package vit_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"vitc/datasets"
	"vitc/vit"
)

// The PyTorch-written digits ViT (tools/torchref/published.py): 4 heads,
// LayerNorm eps 1e-5, mean/std 0.305/0.376, saved bare, and the same
// weights in a folder with the config.json timm's hub writes.
const (
	publishedFile   = "testdata/published/digits_vit.safetensors"
	publishedFolder = "testdata/published/digits_vit_config"
)

func factOf(t *testing.T, c *vit.Checkpoint, name string) vit.Fact {
	t.Helper()
	for _, f := range c.Facts {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("no fact %s in %+v", name, c.Facts)
	return vit.Fact{}
}

func TestOpenTimmHubFolder(t *testing.T) {
	c, err := vit.Open(publishedFolder, vit.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Config.Heads != 4 || !slices.Equal(c.Meta.NormMean, []float32{0.305}) || c.ConfigFile == "" || !c.Bare {
		t.Fatalf("config %+v meta %+v file %q", c.Config, c.Meta, c.ConfigFile)
	}
	if f := factOf(t, c, vit.FactHeads); f.From != vit.FromConfig {
		t.Errorf("heads: %+v", f)
	}
	// timm's configs carry no eps: it is assumed, and said to be.
	if f := factOf(t, c, vit.FactLNEps); f.From != vit.FromDefault {
		t.Errorf("eps: %+v", f)
	}
	// A flag wins over the config, and the line says what the config said.
	c, err = vit.Open(publishedFolder, vit.LoadOptions{Heads: 2, LNEps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	if f := factOf(t, c, vit.FactHeads); c.Config.Heads != 2 || f.From != vit.FromOption || !strings.Contains(f.Note, "config.json says heads 4") {
		t.Errorf("heads 2 over the config's 4: %+v", f)
	}
	// The folder and the file in it are the same checkpoint.
	if d, err := vit.Open(filepath.Join(publishedFolder, "model.safetensors"), vit.LoadOptions{}); err != nil || d.Config.Heads != 4 {
		t.Errorf("the file in the folder: %+v %v", d, err)
	}
}

// writeHub puts the published weights in a folder with the given config
// files (nil: absent).
func writeHub(t *testing.T, cfg, pre any) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(publishedFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]any{"config.json": cfg, "preprocessor_config.json": pre} {
		if v == nil {
			continue
		}
		js, _ := json.Marshal(v)
		if err := os.WriteFile(filepath.Join(dir, name), js, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestOpenHuggingFaceConfig(t *testing.T) {
	names := map[string]string{}
	for i, n := range []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"} {
		names[string(rune('0'+i))] = n
	}
	dir := writeHub(t, map[string]any{"hidden_size": 64, "num_hidden_layers": 3, "num_attention_heads": 4, "intermediate_size": 128,
		"layer_norm_eps": 1e-5, "image_size": 8, "patch_size": 2, "num_channels": 1, "id2label": names},
		map[string]any{"image_mean": []float32{0.305}, "image_std": []float32{0.376}})
	c, err := vit.Open(dir, vit.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Config.Heads != 4 || c.Config.LNEps != 1e-5 || !slices.Equal(c.Meta.NormStd, []float32{0.376}) || c.Meta.ClassNames[7] != "seven" {
		t.Fatalf("config %+v meta %+v", c.Config, c.Meta)
	}
	// The model so read is PyTorch's: the flags give the same logits.
	m, _ := c.Model()
	want, _, err := vit.Load(publishedFile, vit.LoadOptions{Heads: 4, LNEps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 64)
	for i := range x {
		x[i] = float32(i%5) / 5
	}
	if !slices.Equal(vit.Predict(m, x, 1, 1), vit.Predict(want, x, 1, 1)) {
		t.Errorf("the config's model differs from the flags'")
	}
	// transformers' unnamed labels are no names.
	dir = writeHub(t, map[string]any{"num_attention_heads": 4, "id2label": map[string]string{"0": "LABEL_0", "1": "LABEL_1"}}, nil)
	if c, err := vit.Open(dir, vit.LoadOptions{}); err != nil || c.Meta.ClassNames != nil {
		t.Errorf("LABEL_n names: %v %v", c.Meta.ClassNames, err)
	}
}

func TestOpenRefusesAConfigOfOtherWeights(t *testing.T) {
	for name, cfg := range map[string]map[string]any{
		"dim":      {"hidden_size": 96},
		"depth":    {"model_args": map[string]any{"depth": 12}},
		"classes":  {"num_classes": 1000},
		"channels": {"num_channels": 3},
		"names":    {"label_names": []string{"a", "b"}},
	} {
		_, err := vit.Open(writeHub(t, cfg, nil), vit.LoadOptions{})
		if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "config.json") {
			t.Errorf("%s: got %v, want one line naming config.json", name, err)
		}
	}
	_, err := vit.Open(writeHub(t, nil, map[string]any{"image_mean": []float32{0.5, 0.5}, "image_std": []float32{0.5}}), vit.LoadOptions{})
	if err == nil {
		t.Errorf("2 means and 1 std accepted")
	}
}

// A vitc checkpoint keeps what it records: options that contradict its
// architecture are refused, a change of normalisation or attention is
// taken and said, and a second file of a command ignores the options.
func TestOpenVitcCheckpointAndOptions(t *testing.T) {
	m, meta, err := vit.Load(publishedFile, vit.LoadOptions{Heads: 4, LNEps: 1e-5, Mean: []float32{0.305}, Std: []float32{0.376}})
	if err != nil {
		t.Fatal(err)
	}
	meta.Dataset, meta.TestAccuracy = "digits:x", 0.93
	path := filepath.Join(t.TempDir(), "m.safetensors")
	if err := m.Save(path, meta); err != nil {
		t.Fatal(err)
	}
	_, err = vit.Open(path, vit.LoadOptions{Heads: 2})
	var ce *vit.ConflictError
	if !errors.As(err, &ce) || ce.Option != "Heads" {
		t.Errorf("--heads 2 on a 4-head vitc file: %v", err)
	}
	if c, err := vit.Open(path, vit.LoadOptions{Heads: 4, LNEps: 1e-5}); err != nil || c.Bare {
		t.Errorf("restating the architecture: %v", err)
	}
	c, err := vit.Open(path, vit.LoadOptions{Mean: []float32{0.5}, Std: []float32{0.5}, Attention: "taylor"})
	if err != nil {
		t.Fatal(err)
	}
	if f := factOf(t, c, vit.FactNorm); c.Meta.NormMean[0] != 0.5 || f.From != vit.FromOption || !strings.Contains(f.Note, "records mean 0.305") {
		t.Errorf("normalisation override: %+v", f)
	}
	if c.Config.Attention != "taylor" || !strings.Contains(c.Describe(nil), "taylor") {
		t.Errorf("attention override: %s", c.Describe(nil))
	}
	c, err = vit.Open(path, vit.LoadOptions{Heads: 2, Mean: []float32{0.5}, Std: []float32{0.5}, BareOnly: true})
	if err != nil || c.Config.Heads != 4 || c.Meta.NormMean[0] != 0.305 {
		t.Errorf("BareOnly on a vitc file: %+v %v", c, err)
	}
	line := c.Describe(nil)
	for _, w := range []string{"vitc checkpoint", "4 heads", "LayerNorm eps 1e-05", "trained on digits:x (93.00% test accuracy)"} {
		if !strings.Contains(line, w) {
			t.Errorf("%q does not say %q", line, w)
		}
	}
}

func TestFitData(t *testing.T) {
	cfg := vit.Config{Image: 8, Channels: 1, Patch: 2, Dim: 8, Depth: 1, Heads: 1, MLPRatio: 1, Classes: 3, Attention: "softmax"}
	ds := func(c, side int, named bool, names ...string) *datasets.Dataset {
		return &datasets.Dataset{C: c, H: side, W: side, NativeC: c, NativeH: side, NativeW: side, Classes: names, Named: named,
			Train: datasets.Split{Y: []int{0, 1, 2}}, Test: datasets.Split{Y: []int{0, 1, 2}}}
	}
	model := vit.Meta{Dataset: "mine", ClassNames: []string{"cat", "dog", "owl"}}
	for name, tc := range map[string]struct {
		d     *datasets.Dataset
		spec  string
		adapt bool
		want  string // error substring; "" fits
	}{
		"fits":            {ds(1, 8, true, "cat", "dog", "owl"), "other", false, ""},
		"channels":        {ds(3, 8, true, "cat", "dog", "owl"), "other", false, "3-channel images, the model takes 1"},
		"channels adapt":  {ds(3, 8, true, "cat", "dog", "owl"), "other", true, ""},
		"size":            {ds(1, 12, true, "cat", "dog", "owl"), "other", false, "12×12 images, the model takes 8×8"},
		"other names":     {ds(1, 8, true, "cat", "dog", "pig"), "other", false, `class "pig"`},
		"unnamed other":   {ds(1, 8, false, "0", "1", "2"), "other", false, "names no classes"},
		"unnamed its own": {ds(1, 8, false, "0", "1", "2"), "mine", false, ""},
		"too many":        {ds(1, 8, true, "cat", "dog", "owl", "pig"), "other", false, "4 classes, the model predicts 3"},
	} {
		_, err := vit.FitData(cfg, model, tc.d, tc.spec, vit.FitOptions{Adapt: tc.adapt})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want %q", name, err, tc.want)
		}
	}
	// Names in another order: the labels move to the model's order.
	d := ds(1, 8, true, "owl", "cat")
	d.Test.Y, d.Train.Y = []int{0, 1}, []int{1, 0}
	fit, err := vit.FitClassNames(model.ClassNames, d, "other", model.Dataset)
	if err != nil || !slices.Equal(d.Test.Y, []int{2, 0}) || !slices.Equal(d.Classes, model.ClassNames) || fit.Order == nil {
		t.Errorf("reordered: labels %v classes %v fit %+v err %v", d.Test.Y, d.Classes, fit, err)
	}
	// Unnamed data that is the model's own takes its names.
	d = ds(1, 8, false, "0", "1", "2")
	if fit, err := vit.FitClassNames(model.ClassNames, d, "mine", "mine"); err != nil || !slices.Equal(fit.Adopted, model.ClassNames) {
		t.Errorf("adopted: %+v %v", fit, err)
	}
}

// A ViT's tensors cannot tell its head count, its accuracy can: the
// assumed dim/64 is refused when another count scores clearly better.
func TestCheckAssumedHeads(t *testing.T) {
	digits := os.Getenv("VITC_DIGITS")
	if digits == "" {
		t.Skip("VITC_DIGITS not set (make test sets it)")
	}
	ds, err := datasets.LoadWith("digits:"+digits, 0, datasets.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stats := datasets.Stats{Mean: []float32{0.305}, Std: []float32{0.376}}
	c, err := vit.Open(publishedFile, vit.LoadOptions{LNEps: 1e-5, Mean: stats.Mean, Std: stats.Std})
	if err != nil {
		t.Fatal(err)
	}
	scores, err := vit.CheckAssumedHeads(c, ds, &ds.Test, stats)
	if !errors.Is(err, vit.ErrWrongHeads) || !strings.Contains(err.Error(), "4 heads ") {
		t.Fatalf("got %v (scores %+v), want the 4 heads named", err, scores)
	}
	for _, s := range scores {
		if (s.Heads == 4) != (s.Accuracy > 0.85) {
			t.Errorf("scores %+v: only 4 heads should score", scores)
		}
	}
	// Given heads are not probed.
	c, _ = vit.Open(publishedFile, vit.LoadOptions{Heads: 2})
	if scores, err := vit.CheckAssumedHeads(c, ds, &ds.Test, stats); err != nil || scores != nil {
		t.Errorf("given heads probed: %v %v", scores, err)
	}
}
