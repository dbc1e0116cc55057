package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
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

// The start line prints the warm-up the recipe computes to a sensible
// precision, not float64's last bits (0.05 of 3 epochs is
// 0.15000000000000002).
func TestRecipeLineRoundsTheWarmup(t *testing.T) {
	d := training.Recipes[training.DefaultRecipe]
	for _, epochs := range []int{3, 7, 30} {
		rf := recipeFlags{Name: training.DefaultRecipe}
		if err := rf.apply(newTrainCmd().Flags(), epochs, -1); err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`warmup (\S+) epochs`).FindStringSubmatch(rf.line)
		if m == nil {
			t.Fatalf("no warm-up in %q", rf.line)
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if want := d.WarmupFraction * float64(epochs); err != nil || math.Abs(v-want) > 5e-4 || longFloat.MatchString(m[1]) {
			t.Errorf("%d epochs: warm-up printed %q, want %g to a few decimals", epochs, m[1], want)
		}
	}
}

// longFloat is a float printed with more decimals than anyone reads.
var longFloat = regexp.MustCompile(`\d\.\d{5,}`)
