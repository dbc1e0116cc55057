package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"vitc/vit/pipeline"
)

// vitcRun runs the CLI in-process and returns its exit status and output.
func vitcRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = execute(args, &out, &errb)
	return code, out.String(), errb.String()
}

// tinyTrain is a seconds-long training run on the synthetic set.
func tinyTrain(dir string, extra ...string) []string {
	args := []string{"train", "--out", dir, "--epochs", "1", "--dim", "16", "--depth", "1", "--heads", "2", "--patch", "7", "--batch", "64"}
	return append(args, extra...)
}

func TestTrainWritesRunAndEvalReproducesAccuracy(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := vitcRun(t, tinyTrain(dir, "--json")...)
	if code != 0 {
		t.Fatalf("train exit %d: %s", code, errOut)
	}
	var rep pipeline.TrainReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("train --json output %q: %v", out, err)
	}
	for _, f := range []string{"model.safetensors", "train_state.safetensors", "metrics.jsonl", "report.json", "curves.png"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing %s", f)
		}
	}
	if rep.Epochs != 1 || rep.Params == 0 || rep.TrainSeconds <= 0 || rep.TestAccuracy <= rep.ChanceAccuracy {
		t.Errorf("implausible report %+v", rep)
	}
	code, out, errOut = vitcRun(t, "eval", "--checkpoint", filepath.Join(dir, "model.safetensors"), "--json")
	if code != 0 {
		t.Fatalf("eval exit %d: %s", code, errOut)
	}
	var ev evalReport
	if err := json.Unmarshal([]byte(out), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Accuracy != rep.TestAccuracy {
		t.Errorf("eval accuracy %v, train reported %v", ev.Accuracy, rep.TestAccuracy)
	}
	if ev.Top5 == nil || *ev.Top5 < ev.Accuracy || len(ev.Confusion) != 10 {
		t.Errorf("eval report lacks top-5 or confusion matrix: %+v", ev)
	}
	code, out, _ = vitcRun(t, "inspect", filepath.Join(dir, "model.safetensors"))
	if code != 0 || !strings.Contains(out, "softmax") || !strings.Contains(out, "FLOPs/image") {
		t.Errorf("inspect exit %d: %s", code, out)
	}
}

func TestTrainIsReproducible(t *testing.T) {
	acc := func() string {
		dir := t.TempDir()
		if code, _, errOut := vitcRun(t, tinyTrain(dir, "--seed", "7")...); code != 0 {
			t.Fatalf("train: %s", errOut)
		}
		b, err := os.ReadFile(filepath.Join(dir, "model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		rep, _ := os.ReadFile(filepath.Join(dir, "report.json"))
		var r pipeline.TrainReport
		_ = json.Unmarshal(rep, &r)
		return string(b) + "|" + strings.Repeat("x", int(r.TestAccuracy*1000))
	}
	if acc() != acc() {
		t.Error("two runs with the same seed differ")
	}
}

func TestPredictMatchesEval(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := vitcRun(t, tinyTrain(dir)...); code != 0 {
		t.Fatalf("train: %s", errOut)
	}
	in := filepath.Join(dir, "x.npy")
	writeNpy(t, in, make([]float32, 3*28*28), []int{3, 1, 28, 28})
	outPath := filepath.Join(dir, "y.npy")
	code, _, errOut := vitcRun(t, "predict", "--checkpoint", filepath.Join(dir, "model.safetensors"), "--input", in, "--output", outPath)
	if code != 0 {
		t.Fatalf("predict exit %d: %s", code, errOut)
	}
	data, shape := readNpy(t, outPath)
	if len(shape) != 2 || shape[0] != 3 || shape[1] != 10 || len(data) != 30 {
		t.Fatalf("logits shape %v", shape)
	}
}

func TestBadInputExitsTwoWithOneLine(t *testing.T) {
	dir := t.TempDir()
	trunc := filepath.Join(dir, "trunc.safetensors")
	os.WriteFile(trunc, []byte{0x10, 0, 0, 0, 0, 0, 0, 0, '{', '"'}, 0o644)
	huge := filepath.Join(dir, "huge.safetensors")
	os.WriteFile(huge, []byte{0, 0, 0, 0, 2, 0, 0, 0, '{', '}'}, 0o644)
	png := filepath.Join(dir, "img.safetensors")
	os.WriteFile(png, []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR"), 0o644)
	badMagic := filepath.Join(dir, "mnist")
	os.MkdirAll(badMagic, 0o755)
	for _, n := range []string{"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"} {
		os.WriteFile(filepath.Join(badMagic, n), []byte{0, 0, 9, 9, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0}, 0o644)
	}
	out := filepath.Join(dir, "out")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown preset", []string{"train", "--model", "vit-huge", "--out", out}, "unknown model preset"},
		{"unknown data kind", []string{"train", "--data", "imagenet:/x", "--out", out}, "unknown data kind"},
		{"wrong magic", []string{"train", "--data", "mnist:" + badMagic, "--out", out}, "magic"},
		{"missing checkpoint", []string{"eval", "--checkpoint", filepath.Join(dir, "nope.safetensors")}, "nope.safetensors"},
		{"truncated checkpoint", []string{"eval", "--checkpoint", trunc}, "trunc.safetensors"},
		{"huge header", []string{"inspect", huge}, "header length"},
		{"not safetensors", []string{"inspect", png}, "not a safetensors file"},
		{"unknown flag", []string{"train", "--bogus"}, "unknown flag"},
		{"resume without state", []string{"train", "--resume", "--out", filepath.Join(dir, "empty")}, "cannot resume"},
		{"checkpoint of another architecture", []string{"eval", "--checkpoint", "../../vit/testdata/torch/micro_softmax.safetensors", "--model", "deit-tiny", "--data", "synthetic"}, "needs 5.4e+06 parameters"},
		{"unknown flip setting", []string{"train", "--hflip", "sometimes", "--out", out}, "--hflip"},
		{"negative skip budget", []string{"train", "--skip-nonfinite", "-1", "--out", out}, "--skip-nonfinite"},
	}
	for _, c := range cases {
		code, _, errOut := vitcRun(t, c.args...)
		if code != 2 {
			t.Errorf("%s: exit %d, want 2 (%q)", c.name, code, errOut)
		}
		if strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "vitc: ") || !strings.Contains(errOut, c.want) {
			t.Errorf("%s: stderr %q, want one line mentioning %q", c.name, errOut, c.want)
		}
		if strings.Contains(errOut, "goroutine") {
			t.Errorf("%s: panic trace in %q", c.name, errOut)
		}
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("failed runs left files in %s: %v", out, entries)
	}
}

func TestPredictBadShapeLeavesNoOutput(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := vitcRun(t, tinyTrain(dir)...); code != 0 {
		t.Fatalf("train: %s", errOut)
	}
	in := filepath.Join(dir, "x.npy")
	writeNpy(t, in, make([]float32, 2*3*28*28), []int{2, 3, 28, 28})
	outPath := filepath.Join(dir, "y.npy")
	code, _, errOut := vitcRun(t, "predict", "--checkpoint", filepath.Join(dir, "model.safetensors"), "--input", in, "--output", outPath)
	if code != 2 || !strings.Contains(errOut, "[B, 1, 28, 28]") {
		t.Errorf("exit %d: %q", code, errOut)
	}
	if _, err := os.Stat(outPath); err == nil {
		t.Error("predict left an output file after failing")
	}
}
