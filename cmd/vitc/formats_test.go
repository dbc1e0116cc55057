package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vitc/vit"
)

// PyTorch-written fixtures in the layouts of issue 29 (tools/torchref/formats.py).
const formatFixtures = "../../vit/testdata/formats"

func maxRel(got, want []float32) float64 {
	var diff, scale float64
	for i := range want {
		diff = math.Max(diff, math.Abs(float64(got[i]-want[i])))
		scale = math.Max(scale, math.Abs(float64(want[i])))
	}
	return diff / scale
}

// TestPredictPublishedLayouts: every layout through the CLI with no
// architecture flags (the author's own names with --key-map), PyTorch's
// logits within 1e-5.
func TestPredictPublishedLayouts(t *testing.T) {
	custom := []string{"--key-map", `^stem\.=patch_embed.proj.`, "--key-map", `^tok$=cls_token`, "--key-map", `^pos$=pos_embed`,
		"--key-map", `^enc\.(\d+)\.ln([12])\.=blocks.${1}.norm${2}.`, "--key-map", `^enc\.(\d+)\.mha\.=blocks.${1}.attn.`,
		"--key-map", `^enc\.(\d+)\.ff\.=blocks.${1}.mlp.`, "--key-map", `^ln_f\.=norm.`, "--key-map", `^fc\.=head.`,
		"--heads", "4", "--ln-eps", "1e-5"}
	for _, c := range []struct {
		dir, ckpt string
		flags     []string
		says      string
	}{
		{"timm_hub", "timm_hub", nil, "timm weights without vitc metadata with config.json"},
		{"hf_vit", "hf_vit", nil, "Hugging Face ViT weights"},
		{"hf_vit_bin", "hf_vit_bin", nil, "Hugging Face ViT weights (a torch.save state dict)"},
		{"hf_deit", "hf_deit", nil, "DeiT distillation token and head"},
		{"pth_mha", "pth_mha/vit_mha.pth", nil, "PyTorch weights (a torch.save state dict)"},
		{"pth_custom", "pth_custom/vit_custom.pth", custom, "key map 32 tensors renamed (--key-map)"},
	} {
		out := filepath.Join(t.TempDir(), "logits.npy")
		dir := filepath.Join(formatFixtures, c.dir)
		args := append([]string{"predict", "--checkpoint", filepath.Join(formatFixtures, c.ckpt),
			"--input", filepath.Join(dir, "input.npy"), "--output", out, "--topk", "0"}, c.flags...)
		code, _, errOut := vitcRun(t, args...)
		if code != 0 {
			t.Errorf("%s: predict exit %d: %s", c.dir, code, errOut)
			continue
		}
		if !strings.Contains(errOut, c.says) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%s: stderr %q, want one line saying %q", c.dir, errOut, c.says)
		}
		got, _ := readNpy(t, out)
		want, _ := readNpy(t, filepath.Join(dir, "logits.npy"))
		rel := maxRel(got, want)
		t.Logf("%s: vitc predict vs PyTorch: max relative error %.3g", c.dir, rel)
		if !(rel < 1e-5) {
			t.Errorf("%s: max relative error %.3g, want < 1e-5", c.dir, rel)
		}
	}
}

// TestFormatsRefusedInOneLine: what a distilled DeiT's second token has no
// place in (the int8 bundle, token pruning, plain-ViT layouts), an author's
// names without rules and a bad rule give one line and exit 2.
func TestFormatsRefusedInOneLine(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"export", "--checkpoint", filepath.Join(formatFixtures, "hf_deit"), "--data", "synthetic", "--out", filepath.Join(t.TempDir(), "b")}, "DeiT distillation token: the int8 bundle"},
		{[]string{"convert", filepath.Join(formatFixtures, "hf_deit"), "--to", "hf", "--out", filepath.Join(t.TempDir(), "c")}, "distillation token and head"},
		{[]string{"prune", "--teacher", filepath.Join(formatFixtures, "hf_deit"), "--data", "synthetic", "--adapt-data", "--epochs", "1", "--out", filepath.Join(t.TempDir(), "p")}, "distillation token"},
		{[]string{"eval", "--checkpoint", filepath.Join(formatFixtures, "pth_custom/vit_custom.pth"), "--data", "synthetic"}, "tensor module."},
		{[]string{"eval", "--checkpoint", filepath.Join(formatFixtures, "pth_mha/vit_mha.pth"), "--key-map", "(=x", "--data", "synthetic"}, "--key-map"},
	} {
		code, _, errOut := vitcRun(t, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q: want 2 and one line with %q", c.args, code, errOut, c.want)
		}
	}
}

// TestConvertCLI: PyTorch's .pth (built-in rules) converted to hf reads back
// with no flags and still gives PyTorch's logits; a second convert into the
// written folder is refused and leaves it as it was.
func TestConvertCLI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hf")
	code, stdout, errOut := vitcRun(t, "convert", filepath.Join(formatFixtures, "pth_mha/vit_mha.pth"), "--to", "hf", "--out", dir)
	if code != 0 || !strings.Contains(stdout, "Hugging Face ViTForImageClassification folder") {
		t.Fatalf("convert exit %d: %s %s", code, stdout, errOut)
	}
	out := filepath.Join(t.TempDir(), "logits.npy")
	code, _, errOut = vitcRun(t, "predict", "--checkpoint", dir, "--input", filepath.Join(formatFixtures, "pth_mha/input.npy"), "--output", out, "--topk", "0")
	if code != 0 || !strings.Contains(errOut, "Hugging Face ViT weights") {
		t.Fatalf("predict exit %d: %s", code, errOut)
	}
	got, _ := readNpy(t, out)
	want, _ := readNpy(t, filepath.Join(formatFixtures, "pth_mha/logits.npy"))
	if rel := maxRel(got, want); !(rel < 1e-5) {
		t.Errorf("converted model: max relative error %.3g vs PyTorch", rel)
	}
	code, _, errOut = vitcRun(t, "convert", filepath.Join(formatFixtures, "hf_vit"), "--to", "timm", "--out", dir)
	if code != 2 || !strings.Contains(errOut, "not empty") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("convert into a full folder: exit %d, %q", code, errOut)
	}
}

// TestExportONNXCLI: --format onnx writes one file from any layout; the
// bundle's flags are refused with it (the runtime check is export/onnx's).
func TestExportONNXCLI(t *testing.T) {
	out := filepath.Join(t.TempDir(), "vit.onnx")
	code, stdout, errOut := vitcRun(t, "export", "--format", "onnx", "--checkpoint", filepath.Join(formatFixtures, "hf_vit"), "--out", out)
	if code != 0 || !strings.Contains(stdout, "ONNX opset 17, input pixel_values [batch, 3, 24, 24] normalised with mean [0.45 0.5 0.55]") {
		t.Fatalf("exit %d: %s %s", code, stdout, errOut)
	}
	if st, err := os.Stat(out); err != nil || st.Size() < 100000 {
		t.Errorf("onnx file: %v", err)
	}
	for _, args := range [][]string{
		{"--hw", "x.json"}, {"--out", filepath.Join(t.TempDir(), "vit.bin")},
	} {
		a := append([]string{"export", "--format", "onnx", "--checkpoint", filepath.Join(formatFixtures, "hf_vit"), "--out", out}, args...)
		if code, _, errOut := vitcRun(t, a...); code != 2 || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, %q", args, code, errOut)
		}
	}
}

// TestDeiTTrainsAndExports: transformers' distilled DeiT, written by
// PyTorch, fine-tunes with its distillation token and head (native and
// Gorgonia engines), keeps them in the checkpoint it writes, and exports to
// ONNX.
func TestDeiTTrainsAndExports(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "photos")
	photoFolder(t, dir, 3, 6)
	for _, engine := range []string{"native", "gorgonia"} {
		out := filepath.Join(t.TempDir(), "run")
		code, _, errOut := vitcRun(t, "train", "--init", filepath.Join(formatFixtures, "hf_deit"), "--data", "folder:"+dir,
			"--val-split", "0.34", "--class-names", "cat,dog,fox", "--epochs", "1", "--engine", engine, "--out", out)
		if code != 0 {
			t.Fatalf("%s: train exit %d: %s", engine, code, errOut)
		}
		ck, err := vit.Open(filepath.Join(out, "model.safetensors"), vit.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !ck.Config.DistToken || !ck.Config.DistHead || ck.Config.Tokens() != 18 {
			t.Errorf("%s: trained config %+v: want the distillation token and head kept (18 tokens)", engine, ck.Config)
		}
		if engine == "native" {
			onnxOut := filepath.Join(t.TempDir(), "deit.onnx")
			if code, _, errOut := vitcRun(t, "export", "--format", "onnx", "--checkpoint", filepath.Join(out, "model.safetensors"), "--out", onnxOut); code != 0 {
				t.Errorf("onnx export exit %d: %s", code, errOut)
			}
		}
	}
}
