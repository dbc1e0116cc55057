package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const timmFixtures = "../../vit/testdata/timm"

// TestPredictTimmFile runs the acceptance of issue 14 through the CLI: a
// bare timm file of a shape no preset has, written by PyTorch, gives
// PyTorch's logits once --heads and --ln-eps say what its tensors cannot.
func TestPredictTimmFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "logits.npy")
	code, stdout, errOut := vitcRun(t, "predict", "--checkpoint", filepath.Join(timmFixtures, "vit_d96.safetensors"),
		"--heads", "3", "--ln-eps", "1e-5", "--input", filepath.Join(timmFixtures, "vit_d96_input.npy"), "--output", out, "--topk", "0")
	if code != 0 {
		t.Fatalf("predict exit %d: %s", code, errOut)
	}
	if !strings.Contains(stdout, "wrote logits [3, 7]") || !strings.Contains(errOut, "read: 3×40×40 input, patch 8, dim 96, depth 5") {
		t.Errorf("stdout %q, stderr %q", stdout, errOut)
	}
	got, _ := readNpy(t, out)
	want, _ := readNpy(t, filepath.Join(timmFixtures, "vit_d96_logits.npy"))
	var diff, scale float64
	for i := range want {
		diff = math.Max(diff, math.Abs(float64(got[i]-want[i])))
		scale = math.Max(scale, math.Abs(float64(want[i])))
	}
	t.Logf("vitc predict vs PyTorch: max relative error %.3g", diff/scale)
	if !(diff/scale < 1e-4) {
		t.Errorf("max relative error %.3g vs PyTorch, want < 1e-4", diff/scale)
	}

	// --json top-k: probabilities of the first input, best first.
	code, stdout, errOut = vitcRun(t, "predict", "--checkpoint", filepath.Join(timmFixtures, "vit_d96.safetensors"),
		"--heads", "3", "--ln-eps", "1e-5", "--input", filepath.Join(timmFixtures, "vit_d96_input.npy"), "--topk", "3", "--json")
	if code != 0 {
		t.Fatalf("predict --json exit %d: %s", code, errOut)
	}
	var rep struct {
		Predictions []struct {
			Top []struct {
				Class int     `json:"class"`
				Prob  float64 `json:"prob"`
			} `json:"top"`
		} `json:"predictions"`
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("%v: %q", err, stdout)
	}
	if len(rep.Predictions) != 3 || len(rep.Predictions[0].Top) != 3 {
		t.Fatalf("predictions %+v", rep)
	}
	best, row := 0, want[:7]
	for i, v := range row {
		if v > row[best] {
			best = i
		}
	}
	if top := rep.Predictions[0].Top; top[0].Class != best || !(top[0].Prob >= top[1].Prob && top[1].Prob >= top[2].Prob) {
		t.Errorf("top %+v, PyTorch's best class %d", top, best)
	}
}

func TestTimmBadInputOneLine(t *testing.T) {
	dir := t.TempDir()
	ck := filepath.Join(timmFixtures, "vit_d96.safetensors")
	// A timm file with a tensor vitc has no place for.
	b, err := os.ReadFile(filepath.Join("../../vit/testdata/torch", "micro_softmax.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	extra := filepath.Join(dir, "ls.safetensors")
	if err := os.WriteFile(extra, withExtraTensor(t, b, "blocks.0.ls1.gamma", 64), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "y.npy")
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"unsupported tensor", []string{"predict", "--checkpoint", extra, "--input", filepath.Join(timmFixtures, "vit_d96_input.npy"), "--output", out}, "tensor blocks.0.ls1.gamma (layer scale)"},
		{"heads not dividing dim", []string{"predict", "--checkpoint", ck, "--heads", "5", "--input", filepath.Join(timmFixtures, "vit_d96_input.npy"), "--output", out}, "5 heads do not divide dim 96"},
		{"heads unknown", []string{"inspect", ck}, "--heads"},
	} {
		code, _, errOut := vitcRun(t, c.args...)
		if code != 2 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and one line with %q", c.name, code, errOut, c.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a refused predict wrote its output")
	}
}

// withExtraTensor appends a zero F32 tensor of n values to a safetensors
// file's bytes.
func withExtraTensor(t *testing.T, b []byte, name string, n int) []byte {
	t.Helper()
	hlen := int(b[0]) | int(b[1])<<8 | int(b[2])<<16 | int(b[3])<<24
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+hlen], &hdr); err != nil {
		t.Fatal(err)
	}
	data := b[8+hlen:]
	hdr[name], _ = json.Marshal(map[string]any{"dtype": "F32", "shape": []int{n}, "data_offsets": []int{len(data), len(data) + 4*n}})
	js, _ := json.Marshal(hdr)
	for len(js)%8 != 0 {
		js = append(js, ' ')
	}
	out := []byte{byte(len(js)), byte(len(js) >> 8), byte(len(js) >> 16), byte(len(js) >> 24), 0, 0, 0, 0}
	out = append(append(append(out, js...), data...), make([]byte, 4*n)...)
	return out
}

// The bare timm file exports and simulates: its inferred config, eps
// included, reaches the bundle, whose golden vectors the simulator
// reproduces; calibration photos of other sizes are resized to 40 px.
func TestExportSimTimmFile(t *testing.T) {
	dir := t.TempDir()
	photos := filepath.Join(dir, "photos")
	photoFolder(t, photos, 2, 6)
	bundle := filepath.Join(dir, "bundle")
	code, stdout, errOut := vitcRun(t, "export", "--checkpoint", filepath.Join(timmFixtures, "vit_d96.safetensors"), "--heads", "3", "--ln-eps", "1e-5",
		"--data", "folder:"+photos, "--val-split", "0.34", "--out", bundle)
	if code != 0 {
		t.Fatalf("export exit %d: %s", code, errOut)
	}
	manifest, err := os.ReadFile(filepath.Join(bundle, "manifest.json"))
	if err != nil || !strings.Contains(string(manifest), `"ln_eps": 0.00001`) {
		t.Errorf("manifest lacks ln_eps 1e-5 (%v)", err)
	}
	code, stdout, errOut = vitcRun(t, "sim", "--bundle", bundle, "--val-split", "0.34")
	if code != 0 || !strings.Contains(stdout, "golden vectors reproduce bit for bit") {
		t.Errorf("sim exit %d: %s %s", code, stdout, errOut)
	}
}
