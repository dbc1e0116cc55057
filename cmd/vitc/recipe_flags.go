package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"vitc/vit/training"

	"github.com/spf13/pflag"
)

// optimFlags are the optimiser, schedule and augmentation flags a recipe
// sets, shared by train and prune.
type optimFlags struct {
	Batch                    int
	LR, MinLR, WeightDecay   float64
	Warmup                   float64 // epochs; negative picks the recipe's share of the run
	LabelSmoothing, ClipNorm float64
	Augment, NoAugment       bool
	AugmentShift             int // pixels; negative: by image size (datasets.AutoShift)
}

// bind adds the flags; recipeFlags.bind then replaces their defaults by the
// command's default recipe's. noDecay names the parameters weight decay skips.
func (o *optimFlags) bind(f *pflag.FlagSet, noDecay string) {
	f.IntVar(&o.Batch, "batch", 32, "batch size")
	f.Float64Var(&o.LR, "lr", 2e-3, "peak learning rate (AdamW, cosine schedule)")
	f.Float64Var(&o.MinLR, "min-lr", 1e-5, "final learning rate")
	f.Float64Var(&o.WeightDecay, "weight-decay", 0.05, "AdamW weight decay (not applied to "+noDecay+")")
	f.Float64Var(&o.Warmup, "warmup", -1, "linear warm-up in epochs (default: the recipe's share of the run)")
	f.Float64Var(&o.LabelSmoothing, "label-smoothing", 0.1, "label smoothing")
	f.Float64Var(&o.ClipNorm, "clip-grad", 1, "clip the global gradient norm to this (0: off)")
	f.BoolVar(&o.Augment, "augment", false, "augment: random shifts (see --augment-shift) and, where labels survive, mirroring (default: the recipe's)")
	f.BoolVar(&o.NoAugment, "no-augment", false, "turn augmentation off (wins over --augment)")
	f.IntVar(&o.AugmentShift, "augment-shift", -1, "largest random shift of the augmentation's padding crop in pixels (0: none; default: none up to 16 px, ~size/14 above)")
}

// recipeFlags maps a training.Recipe onto `vitc train`'s flags: --recipe NAME
// sets every flag of the group that the command line did not set itself.
type recipeFlags struct {
	Name      string
	recipe    training.Recipe // resolved by apply
	autoBatch bool            // --batch left to the recipe, which sizes it to the data
	// line names the recipe and the effective values, for the start of the
	// run (printed once the run is set up: bad input gets one line only).
	line string
}

// recipeValues are the flag values a recipe stands for in a run of this
// many epochs, in the order the start-of-run line prints them.
func recipeValues(r training.Recipe, epochs int) [][2]string {
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	return [][2]string{
		{"lr", g(r.LR)}, {"min-lr", g(r.MinLR)}, {"batch", strconv.Itoa(r.Batch)},
		{"weight-decay", g(r.WeightDecay)}, {"label-smoothing", g(r.LabelSmoothing)},
		{"clip-grad", g(r.ClipNorm)}, {"augment", strconv.FormatBool(r.AugmentFor(epochs))},
		{"init-scheme", r.InitScheme}, {"sparse-weight", g(r.SparseWeight)},
	}
}

// bind adds --recipe and makes the default recipe's values the defaults
// that --help shows; call it after the flags of the group are bound.
func (rf *recipeFlags) bind(f *pflag.FlagSet) {
	rf.bindDefault(f, training.DefaultRecipe)
}

// bindDefault is bind with another default recipe; flags the command does
// not have are left out.
func (rf *recipeFlags) bindDefault(f *pflag.FlagSet, name string) {
	f.StringVar(&rf.Name, "recipe", name, "training recipe, a preset of the optimiser, schedule and augmentation flags (each still overridable): "+strings.Join(training.RecipeNames(), ", "))
	epochs, _ := f.GetInt("epochs")
	for _, kv := range recipeValues(training.Recipes[name], epochs) {
		fl := f.Lookup(kv[0])
		if fl == nil {
			continue
		}
		if err := fl.Value.Set(kv[1]); err != nil {
			panic(fmt.Sprintf("recipe %s: flag --%s: %v", name, kv[0], err))
		}
		fl.DefValue = kv[1]
	}
}

// apply sets the recipe's values on the flags the command line left alone
// (an explicit flag wins) and composes the line that names the recipe and
// the effective values, marking the explicit ones.
func (rf *recipeFlags) apply(f *pflag.FlagSet, epochs int, warmup float64) error {
	r, err := training.LookupRecipe(rf.Name)
	if err != nil {
		return err
	}
	rf.recipe = r
	rf.autoBatch = !f.Changed("batch") && r.MinSteps > 0
	var parts []string
	for _, kv := range recipeValues(r, epochs) {
		fl := f.Lookup(kv[0])
		if fl == nil {
			continue
		}
		mark := ""
		if fl.Changed {
			mark = " (set)"
		} else if err := fl.Value.Set(kv[1]); err != nil {
			return err
		}
		switch {
		case kv[0] == "batch" && rf.autoBatch:
			mark = fmt.Sprintf(" (fewer when an epoch would have under %d steps)", r.MinSteps)
		case kv[0] == "augment" && !fl.Changed && r.Augment && r.AugmentMinEpochs > 0:
			mark = fmt.Sprintf(" (on from %d epochs)", r.AugmentMinEpochs)
			if r.AugmentMirroredOnly {
				mark = fmt.Sprintf(" (on from %d epochs, for images it may mirror)", r.AugmentMinEpochs)
			}
		}
		parts = append(parts, fmt.Sprintf("%s %s%s", kv[0], fl.Value.String(), mark))
	}
	// To the thousandth: a share of the run is 0.15000000000000002 epochs
	// in float64.
	w := "warmup " + strconv.FormatFloat(math.Round(1000*rf.warmupEpochs(epochs, warmup))/1000, 'f', -1, 64) + " epochs"
	if warmup >= 0 {
		w += " (set)"
	}
	parts = append(parts, w)
	rf.line = fmt.Sprintf("recipe %s: %s", r.Name, strings.Join(parts, ", "))
	return nil
}

// warmupEpochs resolves --warmup: a negative value takes the recipe's
// fraction of the run.
func (rf *recipeFlags) warmupEpochs(epochs int, warmup float64) float64 {
	if warmup >= 0 {
		return warmup
	}
	return rf.recipe.WarmupFraction * float64(epochs)
}

// batchFor resolves the batch for n training images: the recipe's when
// --batch was left to it, else the flag's.
func (rf *recipeFlags) batchFor(batch, n int) int {
	if rf.autoBatch {
		return rf.recipe.BatchFor(n)
	}
	return batch
}
