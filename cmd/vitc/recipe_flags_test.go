package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"vitc/vit/pipeline"
	"vitc/vit/training"
)

// --recipe sets its group of flags, an explicit flag wins over it, the start
// line names both, and report.json records the recipe and the values used.
func TestRecipeAppliesAndExplicitFlagWins(t *testing.T) {
	dir := t.TempDir()
	ft := training.Recipes["finetune"]
	code, _, errOut := vitcRun(t, tinyTrain(dir, "--recipe", "finetune", "--lr", "0.003", "--epochs", "2")...)
	if code != 0 {
		t.Fatalf("train exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, "recipe finetune: lr 0.003 (set), min-lr 1e-06,") {
		t.Errorf("start line missing or wrong: %q", errOut)
	}
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep pipeline.TrainReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	o := rep.Options
	if rep.Recipe != "finetune" || o.Recipe != "finetune" {
		t.Errorf("report recipe %q, options' %q", rep.Recipe, o.Recipe)
	}
	if o.LR != 0.003 {
		t.Errorf("lr %g, want the explicit 0.003", o.LR)
	}
	if o.MinLR != ft.MinLR || o.WeightDecay != ft.WeightDecay || o.LabelSmoothing != ft.LabelSmoothing ||
		o.ClipNorm != ft.ClipNorm || o.Augment != ft.Augment || o.WarmupEpochs != 2*ft.WarmupFraction {
		t.Errorf("options %+v do not carry recipe %+v", o, ft)
	}
}

// Without --recipe a run uses the default recipe, and an unknown name is an
// error that lists the known ones.
func TestDefaultRecipeAndUnknownRecipe(t *testing.T) {
	dir := t.TempDir()
	code, _, errOut := vitcRun(t, "train", "--out", dir, "--epochs", "1", "--dim", "16", "--depth", "1", "--heads", "2", "--patch", "7", "--attention", "taylor", "--json")
	if code != 0 {
		t.Fatalf("train exit %d: %s", code, errOut)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "report.json"))
	var rep pipeline.TrainReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	d := training.Recipes[training.DefaultRecipe]
	o := rep.Options
	saved, err := training.ReadSaved(dir)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := pipeline.SavedSpec(saved)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Recipe != training.DefaultRecipe || o.LR != d.LR || o.Batch != d.Batch || o.InitScheme != d.InitScheme || spec.Plan.Sparse.Weight != d.SparseWeight || o.Augment != d.AugmentFor(1) {
		t.Errorf("default run options %+v, want recipe %+v", o, d)
	}
	code, _, errOut = vitcRun(t, "train", "--out", t.TempDir(), "--recipe", "magic")
	if code == 0 || !strings.Contains(errOut, "scratch-small") {
		t.Errorf("unknown recipe: exit %d, %q", code, errOut)
	}
}
