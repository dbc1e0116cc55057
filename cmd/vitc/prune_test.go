package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"vitc/vit"
	"vitc/vit/pipeline"
	"vitc/vit/training"
	"vitc/vit/weightquant"
)

// pruneFixture trains a tiny teacher (dim 16, two heads of 8, 16 patches)
// and returns its checkpoint path.
func pruneFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if code, _, errOut := vitcRun(t, "train", "--out", dir, "--epochs", "1", "--dim", "16", "--depth", "2", "--heads", "2", "--batch", "64"); code != 0 {
		t.Fatalf("train teacher: %s", errOut)
	}
	return filepath.Join(dir, "model.safetensors")
}

func pruneArgs(teacher, out string, extra ...string) []string {
	return append([]string{"prune", "--teacher", teacher, "--out", out, "--epochs", "1", "--block", "4", "--batch", "64", "--json"}, extra...)
}

// One teacher serves every prune test: training it is most of their time.
func TestPrune(t *testing.T) {
	teacher := pruneFixture(t)
	t.Run("eval reproduces", func(t *testing.T) { testPruneEvalReproduces(t, teacher) })
	t.Run("max-drop gate", func(t *testing.T) { testPruneMaxDropGate(t, teacher) })
	t.Run("bad input", func(t *testing.T) { testPruneBadInput(t, teacher) })
	t.Run("target", func(t *testing.T) { testPruneTarget(t, teacher) })
	t.Run("gorgonia engine", func(t *testing.T) { testPruneGorgonia(t, teacher) })
	t.Run("int8 weights", func(t *testing.T) { testPruneInt8Weights(t, teacher) })
}

// --int8-weights writes a model whose every int8-exported weight already
// lies on the exporter's grid (rounding it again changes nothing), and the
// report says so.
func testPruneInt8Weights(t *testing.T, teacher string) {
	out := filepath.Join(t.TempDir(), "pruned")
	code, stdout, errOut := vitcRun(t, pruneArgs(teacher, out, "--epochs", "2", "--int8-weights")...)
	if code != 0 {
		t.Fatalf("prune exit %d: %s", code, errOut)
	}
	var rep pipeline.PruneReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("report %q: %v", stdout, err)
	}
	if !rep.Int8Weights {
		t.Error("report does not say int8_weights")
	}
	m, _, err := vit.Load(filepath.Join(out, "model.safetensors"), vit.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range m.Params.List() {
		if !weightquant.Quantized(p.Name) {
			continue
		}
		n++
		again := slices.Clone(p.Data)
		weightquant.Round(again, again, p.Shape[0])
		if !slices.Equal(again, p.Data) {
			t.Errorf("%s is not on its int8 grid", p.Name)
		}
	}
	if n == 0 {
		t.Error("no int8-exported weights in the pruned model")
	}
}

// testPruneGorgonia prunes on both engines: the run records its engine, and
// the two agree. Masks are top-k of trained scores, so a last-bit difference
// could flip a tie: accuracy is compared with a tolerance.
func testPruneGorgonia(t *testing.T, teacher string) {
	acc := map[string]float64{}
	for _, engine := range []string{"native", "gorgonia"} {
		out := filepath.Join(t.TempDir(), engine)
		code, stdout, errOut := vitcRun(t, pruneArgs(teacher, out, "--engine", engine)...)
		if code != 0 {
			t.Fatalf("%s: prune exit %d: %s", engine, code, errOut)
		}
		var rep pipeline.PruneReport
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("report %q: %v", stdout, err)
		}
		if rep.Engine != engine {
			t.Errorf("report engine %q, want %q", rep.Engine, engine)
		}
		acc[engine] = rep.PrunedAccuracy
	}
	if d := acc["native"] - acc["gorgonia"]; d > 0.05 || d < -0.05 {
		t.Errorf("pruned accuracy %.4f on gorgonia, %.4f native", acc["gorgonia"], acc["native"])
	}
}

// --target-flops chooses the density and keep rate, prints its plan before
// training and records it; the trained model reaches at least the planned
// reduction (training can only remove heads beyond the plan).
func testPruneTarget(t *testing.T, teacher string) {
	out := filepath.Join(t.TempDir(), "pruned")
	code, stdout, errOut := vitcRun(t, pruneArgs(teacher, out, "--target-flops", "2")...)
	if code != 0 {
		t.Fatalf("prune exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "plan for 2× fewer FLOPs") || !strings.Contains(errOut, "predicted") {
		t.Errorf("no plan printed: %q", errOut)
	}
	// The plan's density and keep rate are computed: printed rounded.
	if l := longFloat.FindAllString(errOut, -1); l != nil {
		t.Errorf("floats printed to the last bit (%v): %q", l, errOut)
	}
	var rep pipeline.PruneReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("report %q: %v", stdout, err)
	}
	if rep.Plan == nil || rep.Plan.FLOPsReduction < 2 || rep.Plan.FLOPsReduction > 2.1 {
		t.Fatalf("plan %+v", rep.Plan)
	}
	// The closed loop holds the schedules as soon as the structure meets
	// the target: at the plan's endpoint at the latest, earlier when heads
	// die. The model is what it held.
	h := rep.Plan.Held
	if h == nil || !strings.Contains(errOut, "target 2× fewer FLOPs met at step") {
		t.Fatalf("loop did not hold (%+v): %q", rep.Plan, errOut)
	}
	if rep.FLOPsReduction < 2 || math.Abs(rep.FLOPsReduction-h.FLOPsReduction) > 1e-9*h.FLOPsReduction ||
		h.Density < rep.Plan.Density || h.TokenKeep < rep.Plan.TokenKeep || rep.TokenKeep != h.TokenKeep && rep.TokenKeep != 1 {
		t.Errorf("trained %.3f× at keep %g; the loop held %.3f× at density %g, keep %g (plan %g, %g)",
			rep.FLOPsReduction, rep.TokenKeep, h.FLOPsReduction, h.Density, h.TokenKeep, rep.Plan.Density, rep.Plan.TokenKeep)
	}
	if rep.HWBatch != 64 || rep.ModelledSpeedupLatency <= 0 || rep.CyclesLatencyBefore <= 2*rep.CyclesBefore {
		t.Errorf("throughput setting batch %d: %d cycles per image against %d at batch 1 (latency speed-up %g)", rep.HWBatch, rep.CyclesBefore, rep.CyclesLatencyBefore, rep.ModelledSpeedupLatency)
	}
	if rep.ParamsCompression <= 1 || rep.CyclesError != "" || rep.ModelledSpeedup <= 0 || rep.CyclesBefore <= 0 {
		t.Errorf("params compression %g, modelled speed-up %g (%d cycles before), cycles error %q", rep.ParamsCompression, rep.ModelledSpeedup, rep.CyclesBefore, rep.CyclesError)
	}
}

func testPruneEvalReproduces(t *testing.T, teacher string) {
	out := filepath.Join(t.TempDir(), "pruned")
	code, stdout, errOut := vitcRun(t, pruneArgs(teacher, out)...)
	if code != 0 {
		t.Fatalf("prune exit %d: %s", code, errOut)
	}
	var rep pipeline.PruneReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("report %q: %v", stdout, err)
	}
	for _, f := range []string{"model.safetensors", "report.json", "metrics.jsonl", "curves.png", "masks.png", "kept_tokens.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("missing %s", f)
		}
	}
	if rep.FLOPsAfter >= rep.FLOPsBefore || rep.ParamsAfter >= rep.ParamsBefore {
		t.Errorf("nothing pruned: FLOPs %d → %d, params %d → %d", rep.FLOPsBefore, rep.FLOPsAfter, rep.ParamsBefore, rep.ParamsAfter)
	}
	if !slices.Equal(rep.TokenLayers, []int{0, 1}) {
		t.Errorf("token layers %v, want [0 1] for depth 2", rep.TokenLayers)
	}

	code, stdout, errOut = vitcRun(t, "eval", "--checkpoint", filepath.Join(out, "model.safetensors"), "--json")
	if code != 0 {
		t.Fatalf("eval of the pruned checkpoint: %s", errOut)
	}
	var ev evalReport
	if err := json.Unmarshal([]byte(stdout), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Accuracy != rep.PrunedAccuracy {
		t.Errorf("eval accuracy %v, prune reported %v", ev.Accuracy, rep.PrunedAccuracy)
	}
	if code, stdout, _ := vitcRun(t, "inspect", filepath.Join(out, "model.safetensors")); code != 0 || !strings.Contains(stdout, "parameters") {
		t.Errorf("inspect of the pruned checkpoint: exit %d, %q", code, stdout)
	}
}

// The gate passes a drop under the limit (any drop is under 100 points)
// and fails one over it.
func testPruneMaxDropGate(t *testing.T, teacher string) {
	code, _, errOut := vitcRun(t, pruneArgs(teacher, filepath.Join(t.TempDir(), "a"), "--max-drop", "100")...)
	if code != 0 {
		t.Errorf("--max-drop 100: exit %d (%s), want 0", code, errOut)
	}
	// A negative drop limit would mean "gate off"; the strictest gate is 0,
	// which fails whenever accuracy falls at all. Force a fall with an
	// extreme density.
	code, _, errOut = vitcRun(t, pruneArgs(teacher, filepath.Join(t.TempDir(), "b"), "--max-drop", "0", "--density", "0.05", "--token-keep", "0.1", "--lr", "0.5")...)
	if code != 1 || !strings.Contains(errOut, "exceeds --max-drop 0") {
		t.Errorf("--max-drop 0 after a destructive prune: exit %d, stderr %q; want 1 and the gate message", code, errOut)
	}
}

func testPruneBadInput(t *testing.T, teacher string) {
	out := filepath.Join(t.TempDir(), "out")
	for _, c := range []struct {
		args []string
		want string
	}{
		{pruneArgs(teacher, out, "--block", "3"), "must divide the head dimension"},
		{pruneArgs(teacher, out, "--density", "0"), "--density"},
		{pruneArgs(teacher, out, "--token-keep", "1.5"), "--token-keep"},
		{pruneArgs(teacher, out, "--token-layers", "7"), "token pruning layers"},
		{[]string{"prune", "--out", out}, "teacher"},
		{pruneArgs(teacher, out, "--target-flops", "2", "--density", "0.5"), "not both"},
		{pruneArgs(teacher, out, "--target-speedup", "2", "--token-keep", "0.5"), "not both"},
		{pruneArgs(teacher, out, "--target-flops", "2", "--target-speedup", "2"), "one target"},
		{pruneArgs(teacher, out, "--target-flops", "0.5"), "--target-flops"},
		{pruneArgs(teacher, out, "--target-flops", "1000"), "the most is"},
		{pruneArgs(teacher, out, "--target-speedup", "2", "--hw", filepath.Join(out, "none.json")), "hardware config"},
		{pruneArgs(teacher, out, "--hw-batch", "0"), "--hw-batch"},
		{pruneArgs(teacher, out, "--hflip", "sometimes"), "--hflip"},
	} {
		code, _, errOut := vitcRun(t, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a line mentioning %q", c.args[len(c.args)-2:], code, errOut, c.want)
		}
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("failed prunes left files: %v", entries)
	}
}

// The prune recipe augments long runs on images it may mirror (RGB photos)
// and leaves grey images alone, unless a flag asks (docs/pruning.md,
// "Augmentation during pruning").
func TestPruneAugmentsOnlyMirroredImages(t *testing.T) {
	r := training.Recipes[training.PruneRecipe]
	for _, c := range []struct {
		name                string
		epochs              int
		augment, noAug, set bool
		flipOK, want        bool
	}{
		{"long run, photos", 20, false, false, false, true, true},
		{"long run, grey", 20, false, false, false, false, false},
		{"short run, photos", 5, false, false, false, true, false},
		{"--augment on grey", 20, true, false, true, false, true},
		{"--no-augment on photos", 20, false, true, true, true, false},
	} {
		o := &pruneOptions{}
		o.recipe.recipe = r
		// As recipeFlags.apply leaves the flags: the recipe's value unless set.
		o.Augment, o.NoAugment, o.augmentSet = r.AugmentFor(c.epochs), c.noAug, c.set
		if c.set {
			o.Augment = c.augment
		}
		if got := pruneAugments(o, c.flipOK); got != c.want {
			t.Errorf("%s: augments %v, want %v", c.name, got, c.want)
		}
	}
}
