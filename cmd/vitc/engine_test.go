package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vitc/vit"
	"vitc/vit/pipeline"
	"vitc/vit/training"
)

func TestUnknownEngineExitsTwoWithOneLine(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"train", "--engine", "tensorflow", "--out", filepath.Join(dir, "t")},
		{"prune", "--engine", "tensorflow", "--teacher", filepath.Join(dir, "nope.safetensors"), "--out", filepath.Join(dir, "p")},
		{"bench", "--engine", "tensorflow", "--model", "micro"},
	} {
		code, _, errOut := vitcRun(t, args...)
		if code != 2 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, `--engine "tensorflow"`) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and one line naming --engine", args[0], code, errOut)
		}
	}
}

// TestTrainGorgoniaEngine trains the same tiny run on both engines: the
// Gorgonia one records itself in report.json and in the saved options (so a
// resumed run keeps it), and ends on the native engine's weights.
func TestTrainGorgoniaEngine(t *testing.T) {
	dirs := map[string]string{}
	for _, engine := range []string{"native", "gorgonia"} {
		dir := filepath.Join(t.TempDir(), engine)
		dirs[engine] = dir
		code, out, errOut := vitcRun(t, tinyTrain(dir, "--json", "--engine", engine)...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", engine, code, errOut)
		}
		var rep pipeline.TrainReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Engine != engine || rep.Options.Engine != engine {
			t.Errorf("report engine %q, options %q; want %q", rep.Engine, rep.Options.Engine, engine)
		}
		saved, err := training.ReadSaved(dir)
		if err != nil {
			t.Fatal(err)
		}
		if saved.Options.Engine != engine {
			t.Errorf("saved options engine %q, want %q", saved.Options.Engine, engine)
		}
	}
	native, _, err := vit.Load(filepath.Join(dirs["native"], "model.safetensors"), vit.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gorg, _, err := vit.Load(filepath.Join(dirs["gorgonia"], "model.safetensors"), vit.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range native.Params.List() {
		q, _ := gorg.Params.Get(p.Name)
		var num, den float64
		for i := range p.Data {
			d := float64(p.Data[i] - q.Data[i])
			num += d * d
			den += float64(p.Data[i]) * float64(p.Data[i])
		}
		if r := math.Sqrt(num / den); !(r < 1e-4) {
			t.Errorf("%s after an epoch: rel err %.3g between the engines", p.Name, r)
		}
	}
}

// --recompute trains the same model as without, saves itself with the
// run's options, and the report gives the process's peak resident memory;
// the Gorgonia engine refuses it with one line naming the flags.
func TestTrainRecompute(t *testing.T) {
	models := map[bool][]byte{}
	for _, re := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), fmt.Sprint(re))
		extra := []string{"--json", "--depth", "2"}
		if re {
			extra = append(extra, "--recompute")
		}
		code, out, errOut := vitcRun(t, tinyTrain(dir, extra...)...)
		if code != 0 {
			t.Fatalf("recompute %v: exit %d: %s", re, code, errOut)
		}
		var rep pipeline.TrainReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Options.Recompute != re || !(rep.PeakRSSBytes > 0) {
			t.Errorf("recompute %v: report options %v, peak RSS %d", re, rep.Options.Recompute, rep.PeakRSSBytes)
		}
		b, err := os.ReadFile(filepath.Join(dir, "model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		models[re] = b
	}
	if !bytes.Equal(models[false], models[true]) {
		t.Error("--recompute trained another model")
	}
	code, _, errOut := vitcRun(t, tinyTrain(filepath.Join(t.TempDir(), "g"), "--recompute", "--engine", "gorgonia")...)
	if code != 2 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "--recompute") {
		t.Errorf("--recompute --engine gorgonia: exit %d, stderr %q", code, errOut)
	}
}
