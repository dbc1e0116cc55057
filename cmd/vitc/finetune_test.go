package main

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// photoFolder writes dir/<class>/*.{png,jpg}: colour images of several
// sizes (no test/ folder), the layout of a user's own photo collection.
func photoFolder(t *testing.T, dir string, classes, per int) {
	t.Helper()
	for c := range classes {
		for i := range per {
			w, h := 20+7*i, 36-3*i
			m := image.NewNRGBA(image.Rect(0, 0, w, h))
			for y := range h {
				for x := range w {
					v := uint8((x*c*40 + y*(1-c)*40 + i*13) % 256)
					m.SetNRGBA(x, y, color.NRGBA{v, uint8(c * 200), 255 - v, 255})
				}
			}
			var buf bytes.Buffer
			name := filepath.Join(dir, string(rune('a'+c)), string(rune('0'+i)))
			if i%2 == 0 {
				png.Encode(&buf, m)
				name += ".png"
			} else {
				jpeg.Encode(&buf, m, nil)
				name += ".jpg"
			}
			os.MkdirAll(filepath.Dir(name), 0o755)
			if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestTrainInitAdaptsTimmFile fine-tunes a bare timm file (PyTorch's grey
// 28 px micro, 10 classes) on a folder of colour photos of mixed sizes with
// 2 classes at 32 px: new head, pos_embed 7x7 -> 8x8, grey -> RGB patch
// projection, each reported; then eval and predict use the result.
func TestTrainInitAdaptsTimmFile(t *testing.T) {
	dir := t.TempDir()
	photos := filepath.Join(dir, "photos")
	photoFolder(t, photos, 2, 6)
	ck := "../../vit/testdata/torch/micro_softmax.safetensors"
	out := filepath.Join(dir, "run")
	code, stdout, errOut := vitcRun(t, "train", "--init", ck, "--heads", "4", "--data", "folder:"+photos, "--val-split", "0.34",
		"--image-size", "32", "--epochs", "1", "--batch", "4", "--out", out)
	if code != 0 {
		t.Fatalf("train exit %d: %s", code, errOut)
	}
	for _, want := range []string{"head: new, 2 classes (the checkpoint has 10)", "pos_embed: resampled bicubic from a 7x7 to a 8x8 grid",
		"patch_embed.proj: adapted from 1 to 3 input channels", "normalisation mean [0.5 0.5 0.5] std [0.5 0.5 0.5] (the checkpoint's, repeated"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if !strings.Contains(stdout, "test accuracy") {
		t.Errorf("stdout %q", stdout)
	}
	model := filepath.Join(out, "model.safetensors")
	code, stdout, errOut = vitcRun(t, "inspect", model)
	if code != 0 || !strings.Contains(stdout, "3x32x32 input, patch 4 (65 tokens), dim 64, depth 4, heads 4") {
		t.Errorf("inspect exit %d: %s %s", code, stdout, errOut)
	}
	code, stdout, errOut = vitcRun(t, "eval", "--checkpoint", model, "--data", "folder:"+photos, "--val-split", "0.34")
	if code != 0 {
		t.Errorf("eval exit %d: %s", code, errOut)
	}
	code, stdout, errOut = vitcRun(t, "predict", "--checkpoint", model, "--input", filepath.Join(photos, "b", "1.jpg"), "--topk", "2")
	if code != 0 || !strings.Contains(stdout, "%  a") || !strings.Contains(stdout, "%  b") {
		t.Errorf("predict exit %d: %q %s", code, stdout, errOut)
	}

	// Bad input: one line, exit 2, no run directory written.
	bad := filepath.Join(dir, "bad")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--image-size", "30"}, "--image-size 30 is not a multiple of the patch size 4"},
		{[]string{"--keep-head"}, "has 10 classes, the data 2"},
		{[]string{"--dim", "32"}, "--dim 32: with --init the architecture comes from"},
	} {
		args := append([]string{"train", "--init", ck, "--heads", "4", "--data", "folder:" + photos, "--val-split", "0.34", "--epochs", "1", "--out", bad}, c.args...)
		code, _, errOut := vitcRun(t, args...)
		if code != 2 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q", c.args, code, errOut)
		}
	}
	if _, err := os.Stat(bad); err == nil {
		t.Error("a refused train wrote its run directory")
	}
}

// --init of a vitc checkpoint takes its architecture (not --model's
// preset) and its normalisation.
func TestTrainInitTakesArchitectureFromMetadata(t *testing.T) {
	dir := t.TempDir()
	pre := filepath.Join(dir, "pre")
	if code, _, errOut := vitcRun(t, tinyTrain(pre)...); code != 0 {
		t.Fatalf("train: %s", errOut)
	}
	out := filepath.Join(dir, "ft")
	code, stdout, errOut := vitcRun(t, "train", "--init", filepath.Join(pre, "model.safetensors"), "--epochs", "1", "--batch", "64", "--out", out, "--json")
	if code != 0 {
		t.Fatalf("train --init exit %d: %s", code, errOut)
	}
	var rep struct {
		Config struct {
			Dim, Depth, Heads, Patch int
		} `json:"config"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Config.Dim != 16 || rep.Config.Depth != 1 || rep.Config.Heads != 2 || rep.Config.Patch != 7 {
		t.Errorf("fine-tuned config %+v, want the checkpoint's (dim 16, depth 1, 2 heads, patch 7)", rep.Config)
	}
	if !strings.Contains(errOut, "(the checkpoint's)") || strings.Contains(errOut, "head: new") {
		t.Errorf("stderr %q", errOut)
	}
}

// With --init the architecture is the checkpoint's: flags may restate it
// (as the pipeline scripts do), not change it.
func TestInitArchitectureFlagsRestateOnly(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := vitcRun(t, "train", "--out", dir, "--epochs", "1", "--dim", "16", "--depth", "1", "--heads", "2", "--batch", "128"); code != 0 {
		t.Fatalf("train: %s", errOut)
	}
	ckpt := filepath.Join(dir, "model.safetensors")
	out := filepath.Join(t.TempDir(), "ft")
	if code, _, errOut := vitcRun(t, "train", "--init", ckpt, "--dim", "16", "--depth", "1", "--epochs", "1", "--batch", "128", "--out", out); code != 0 {
		t.Errorf("--dim and --depth equal to the checkpoint's: exit %d: %s", code, errOut)
	}
	code, _, errOut := vitcRun(t, "train", "--init", ckpt, "--dim", "32", "--epochs", "1", "--out", filepath.Join(t.TempDir(), "x"))
	if code != exitBadInput || !strings.Contains(errOut, "--dim 32") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("--dim 32 against a dim-16 checkpoint: exit %d, stderr %q; want 2 and one line naming --dim 32", code, errOut)
	}
}

// A model trained on a folder without test/ (--val-split) records the split
// with its data: eval and export then score the same held-out images with no
// flags (before, eval looked for DIR/train and stopped).
func TestRecordedValSplitTravels(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "photos")
	photoFolder(t, dir, 2, 6)
	out := filepath.Join(t.TempDir(), "run")
	code, _, errOut := vitcRun(t, "train", "--model", "micro", "--dim", "16", "--depth", "1", "--heads", "2", "--image-size", "16",
		"--data", "folder:"+dir, "--val-split", "0.34", "--epochs", "1", "--out", out)
	if code != 0 {
		t.Fatalf("train exit %d: %s", code, errOut)
	}
	ck := filepath.Join(out, "model.safetensors")
	code, stdout, errOut := vitcRun(t, "eval", "--checkpoint", ck, "--json")
	if code != 0 {
		t.Fatalf("eval with the recorded data: exit %d: %s", code, errOut)
	}
	var rep struct {
		N int `json:"n"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("eval --json %q: %v", stdout, err)
	}
	if rep.N < 2 || rep.N > 6 {
		t.Errorf("eval scored %d images: want the held-out part of the 12 (about a third)", rep.N)
	}
}
