package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"vitc/blockprune"
	"vitc/datasets"
	"vitc/export/hw"
	"vitc/tokenprune"
	"vitc/vit"
	"vitc/vit/pipeline"
	"vitc/vit/training"
)

// pruneOptions are `vitc prune`'s flags.
type pruneOptions struct {
	Teacher, Init, Data, Out string
	readFlags
	dataFlags
	AllowWeakTeacher bool
	Block            int
	Density          float64
	TokenKeep        float64
	TokenLayers      []int
	Epochs           int
	optimFlags
	KDAlpha, KDTemp float64
	Seed            int64
	MaxDrop         float64
	JSON            bool
	Resume          bool
	CheckpointEvery time.Duration
	TargetFLOPs     float64
	TargetSpeedup   float64
	HW              string
	HWBatch         int
	Engine          string
	memory          memoryFlags
	Int8Weights     bool
	HFlip           string
	recipe          recipeFlags
	// Set by hand: a target may not be combined with them.
	densitySet, keepSet bool
	// augmentSet: --augment, --no-augment or --augment-shift given, which
	// overrides the recipe's rule on which data to augment.
	augmentSet bool
}

func newPruneCmd() *cobra.Command {
	o := &pruneOptions{}
	cmd := &cobra.Command{
		Use:   "prune --teacher T.safetensors",
		Short: "Block-prune weights and prune tokens in one distillation stage",
		Long: `Prune a trained ViT two ways at once, in one training stage under
knowledge distillation from the frozen teacher: static block pruning of the
attention weights (learned block scores, cubic density schedule) with MLP
neuron pruning, and dynamic per-input token pruning (keep the patch tokens the
cls token attends to most, fuse the rest). The student starts from --init, or
from the teacher. Writes DIR/model.safetensors (compacted: dead heads and
pruned neurons removed, block masks recorded), metrics.jsonl, report.json,
curves.png, masks.png and kept_tokens.png. With --max-drop, exits with status
1 when the accuracy drop against the teacher exceeds it. Ctrl-C saves a
resumable state; --resume --out DIR finishes the same run.

--target-flops X or --target-speedup X chooses --density, --token-keep and
--token-layers for you: X times fewer analytical FLOPs, or an X times shorter
run on vitc's cycle model of --hw, against the dense softmax model of the
teacher's shape. The plan is printed before training and recorded in
report.json, which also gives the trained model's FLOPs reduction, modelled
speed-up and parameter compression. The plan keeps every head, but training
kills some; so while the density and keep rate ramp, the run measures the
structure the current masks leave (dead heads removed, as the report
measures the trained model) whenever it changes, and holds both where it
first meets the target: it prints one line, and report.json records it as
plan.held. A ramp that ends short of the target ends as the plan does.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Resume && cmd.Flags().NFlag() > 2+boolToInt(cmd.Flags().Changed("json")) {
				return errors.New("--resume takes only --out (and --json): the run continues with its saved settings")
			}
			o.densitySet, o.keepSet = cmd.Flags().Changed("density"), cmd.Flags().Changed("token-keep")
			o.augmentSet = cmd.Flags().Changed("augment") || cmd.Flags().Changed("no-augment") || cmd.Flags().Changed("augment-shift")
			if !o.Resume {
				if err := o.recipe.apply(cmd.Flags(), o.Epochs, o.Warmup); err != nil {
					return err
				}
			}
			return runPrune(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	d := blockprune.DefaultOptions
	f.StringVar(&o.Teacher, "teacher", "", "the trained dense model (frozen; distillation teacher and the accuracy reference), scored on the test split first")
	f.StringVar(&o.Init, "init", "", "start the student from this checkpoint (e.g. a Taylor model), read as the teacher is; default the teacher")
	f.StringVar(&o.Data, "data", "", "data (default: the teacher's, from its checkpoint)")
	o.readFlags.bind(f, true)
	o.dataFlags.bind(f, false)
	o.dataFlags.bindAdapt(f)
	f.BoolVar(&o.AllowWeakTeacher, "allow-weak-teacher", false, "prune under a teacher that scores near chance, or far below what its checkpoint records (default: refuse it)")
	f.IntVar(&o.Block, "block", d.Block, "block side b of the weight blocks (must divide the head dimension)")
	f.Float64Var(&o.Density, "density", d.Density, "fraction of attention weight blocks and MLP neurons kept")
	f.Float64Var(&o.TokenKeep, "token-keep", 0.7, "fraction of patch tokens kept at each token-pruning layer (1: no token pruning)")
	f.IntSliceVar(&o.TokenLayers, "token-layers", nil, "blocks after whose attention tokens are pruned (default: 2, 6, 9 of 12, scaled to the depth)")
	f.IntVar(&o.Epochs, "epochs", 10, "training epochs")
	// recipe.bindDefault replaces these defaults by the prune recipe's.
	o.optimFlags.bind(f, "norms, biases, cls_token, pos_embed, block scores")
	f.Float64Var(&o.KDAlpha, "kd-alpha", 0.9, "distillation: weight of the KL term")
	f.Float64Var(&o.KDTemp, "kd-temp", 2, "distillation: temperature")
	f.Int64Var(&o.Seed, "seed", 0, "seed for data order and augmentation")
	f.StringVar(&o.Out, "out", "", "output directory (default runs/prune-<teacher name>)")
	f.Float64Var(&o.MaxDrop, "max-drop", -1, "fail (exit 1) when accuracy drops by more than this many points (negative: no gate)")
	f.BoolVar(&o.JSON, "json", false, "print the report as JSON on stdout")
	f.BoolVar(&o.Resume, "resume", false, "continue the prune run saved in --out")
	f.Float64Var(&o.TargetFLOPs, "target-flops", 0, "choose --density, --token-keep and the token layers for this many times fewer FLOPs than the dense softmax teacher")
	f.Float64Var(&o.TargetSpeedup, "target-speedup", 0, "choose them for this modelled speed-up (vitc's cycle model on --hw) against the dense softmax teacher's bundle")
	f.IntVar(&o.HWBatch, "hw-batch", 64, "throughput setting of --target-speedup and the report's modelled speed-up: images per load of the weights, run in lockstep groups (1: latency, one image at a time; the report gives both)")
	f.StringVar(&o.HW, "hw", "", "hardware config hw.json for --target-speedup and the report's modelled speed-up (default: vitc's, export/hw/default.json)")
	f.DurationVar(&o.CheckpointEvery, "checkpoint-every", time.Minute, "also save resumable state this often within an epoch")
	f.BoolVar(&o.Int8Weights, "int8-weights", false, "train the recovery phase (the last 30 % of steps) through the exporter's int8 weight rounding and write the pruned model's weights on that grid, so that the float model and its int8 export share every weight")
	bindHFlip(f, &o.HFlip)
	bindEngine(f, &o.Engine)
	o.memory.bind(f)
	o.recipe.bindDefault(f, training.PruneRecipe)
	return cmd
}

func runPrune(ctx context.Context, o *pruneOptions, stdout, stderr io.Writer) error {
	var job *pipeline.Job
	if o.Resume {
		if o.Out == "" {
			return errors.New("--resume needs --out DIR")
		}
		var err error
		if job, err = openJob(o.Out, pipeline.KindPrune, stderr); err != nil {
			return err
		}
	} else {
		if o.Teacher == "" {
			return errors.New("--teacher is required (the trained dense model)")
		}
		n := newNotes(stderr)
		var err error
		if job, err = newPruneJob(o, n); err != nil {
			return err
		}
		if o.Out == "" {
			base := filepath.Base(filepath.Dir(o.Teacher)) // runs/NAME/model.safetensors → NAME
			o.Out = filepath.Join("runs", "prune-"+base)
		}
		n.flush()
		printTeacherCheck(stderr, job.Teacher)
		fmt.Fprintln(stderr, o.recipe.line)
		cfg, r := job.Spec.Train.Config, job.Run
		fmt.Fprintf(stderr, "pruning %s (%s attention, from %s) on %s: %d train / %d test images, batch %d, %s; density %.3g in %d×%d blocks, token keep %.3g at blocks %v; writing %s\n",
			o.Teacher, cfg.Attention, job.Spec.Plan.Init, job.Spec.Train.Data, r.Data.Train.Len(), r.Data.Test.Len(), r.Opts.Batch,
			augmentation(r.Opts, r.Data.FlipOK), o.Density, o.Block, o.Block, o.TokenKeep, cfg.TokenLayers, o.Out)
		if p := job.Spec.Plan.Prune.Target; p != nil {
			for _, l := range p.Lines() {
				fmt.Fprintln(stderr, l)
			}
			fmt.Fprintln(stderr, "  closed loop  training holds the density and keep where the structure first meets the target (dead heads count)")
		}
	}
	job.Log = stderr
	out, err := job.Train(ctx, o.Out, newProgress(stderr))
	if err != nil {
		return interrupted(err, "prune", o.Out)
	}
	rep := out.Prune
	if o.JSON {
		if err := printJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "teacher %.2f%% → pruned %.2f%% (drop %.2f points); against %s: %.2f× fewer FLOPs (%.3g → %.3g per image; %.2f× fewer than the teacher), %.2f× modelled speed-up on %s at batch %d (%.2f× at batch 1), %d → %d non-zero params (%.2f×); wrote %s\n",
			100*rep.TeacherAccuracy, 100*rep.PrunedAccuracy, rep.AccuracyDrop, rep.Baseline, rep.FLOPsReduction,
			float64(rep.FLOPsBefore), float64(rep.FLOPsAfter), rep.FLOPsReductionVsTeacher, rep.ModelledSpeedup, rep.HW, rep.HWBatch, rep.ModelledSpeedupLatency, rep.ParamsBefore, rep.ParamsAfter, rep.ParamsCompression, o.Out)
	}
	if rep.Passed != nil && !*rep.Passed {
		return &exitError{code: exitGate, err: fmt.Errorf("accuracy drop %.2f points exceeds --max-drop %g (teacher %.2f%%, pruned %.2f%%)",
			rep.AccuracyDrop, *rep.MaxDrop, 100*rep.TeacherAccuracy, 100*rep.PrunedAccuracy)}
	}
	return nil
}

// newPruneJob maps the flags to a pruning run: the student starts from
// --init (default the teacher) with token pruning in its config, and trains
// under distillation from the frozen teacher. Both files are read the same
// way; the data must fit the teacher.
func newPruneJob(o *pruneOptions, n *notes) (*pipeline.Job, error) {
	if err := checkEngine(o.Engine); err != nil {
		return nil, err
	}
	if err := o.memory.check(o.Engine); err != nil {
		return nil, err
	}
	if math.IsNaN(o.MaxDrop) {
		return nil, errors.New("--max-drop is not a number")
	}
	flip, err := hflipOption(o.HFlip)
	if err != nil {
		return nil, err
	}
	keep := tokenprune.DefaultSchedule(o.TokenKeep)
	if err := keep.Validate(); err != nil {
		return nil, fmt.Errorf("--token-keep: %w", err)
	}
	read, err := o.readFlags.options("", "")
	if err != nil {
		return nil, err
	}
	teacher, err := openCheckpoint("teacher", o.Teacher, read, n)
	if err != nil {
		return nil, err
	}
	if o.Data == "" {
		if teacher.Meta.Dataset == "" {
			return nil, fmt.Errorf("teacher %s does not record its data: pass --data SPEC", o.Teacher)
		}
		o.Data = teacher.Meta.Dataset
	}
	init := o.Init
	if init == "" {
		init = o.Teacher
	}
	start, err := openSecond("init", init, teacher, read, n)
	if err != nil {
		return nil, err
	}
	initRead, teacherRead := read, read
	if start != teacher {
		initRead.BareOnly = true
	}
	cfg := start.Config
	if cfg.LayerHeads != nil || cfg.TokenLayers != nil {
		return nil, fmt.Errorf("%s is already pruned: start from a dense model", init)
	}
	if cfg.DistToken {
		return nil, fmt.Errorf("--init %s has a DeiT distillation token: token pruning, the cycle model and the int8 bundle have one class token; prune a plain ViT (the DeiT can be its --teacher)", init)
	}
	dopts, err := o.dataFlags.optionsFor(0, o.Data, teacher.Meta)
	if err != nil {
		return nil, err
	}
	dopts = vit.DataOptions(teacher.Config, dopts)
	dopts.Flip = flip
	ds, err := datasets.LoadWith(o.Data, o.Seed, dopts)
	if err != nil {
		return nil, flagError(err)
	}
	lines, err := vit.FitData(teacher.Config, vit.Meta{Dataset: teacher.Meta.Dataset}, ds, o.Data, vit.FitOptions{Adapt: o.AdaptData})
	if err != nil {
		return nil, flagError(err)
	}
	for _, l := range lines {
		n.printf("%s", l)
	}
	reportSkipped(ds, n)
	if err := fitRunClasses(start, ds, o.Data, &dopts, n, true); err != nil {
		return nil, err
	}
	if err := checkHeads("teacher", teacher, ds, n); err != nil {
		return nil, err
	}
	h, err := loadHW(o.HW)
	if err != nil {
		return nil, err
	}
	if o.HWBatch < 1 || o.HWBatch > 1<<16 {
		return nil, fmt.Errorf("--hw-batch %d: want 1 to %d images", o.HWBatch, 1<<16)
	}
	plan, err := planTarget(o, cfg, h)
	if err != nil {
		return nil, err
	}
	keep = tokenprune.DefaultSchedule(o.TokenKeep)
	layers := o.TokenLayers
	if layers == nil {
		layers = tokenprune.Layers(cfg.Depth)
	}
	cfg.TokenKeep, cfg.TokenLayers = o.TokenKeep, layers
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("--token-layers: %w", err)
	}
	bopts := blockprune.DefaultOptions
	bopts.Block, bopts.Density = o.Block, o.Density
	if err := bopts.Validate(cfg); err != nil {
		return nil, fmt.Errorf("--block/--density: %w", err)
	}
	o.Batch = o.recipe.batchFor(o.Batch, ds.Train.Len())
	augment := pruneAugments(o, ds.FlipOK)
	job, err := pipeline.New(pipeline.Spec{
		Train: training.Options{
			Recipe: o.recipe.Name, Data: o.Data, Config: cfg, Epochs: o.Epochs, Batch: o.Batch, LR: o.LR, MinLR: o.MinLR,
			WeightDecay: o.WeightDecay, WarmupEpochs: o.recipe.warmupEpochs(o.Epochs, o.Warmup), LabelSmoothing: o.LabelSmoothing, ClipNorm: o.ClipNorm,
			Augment: augment, AugmentShift: loaderShift(o.AugmentShift, ds.H),
			Seed: o.Seed, CheckpointEvery: o.CheckpointEvery, Engine: o.Engine, DataOptions: dopts,
			Recompute: o.memory.Recompute, MaxSteps: o.memory.MaxSteps,
		},
		Plan: pipeline.Plan{Kind: pipeline.KindPrune, Init: init, InitWith: vit.InitOptions{Load: initRead},
			Distill: &pipeline.Distill{Teacher: o.Teacher, Alpha: o.KDAlpha, Temperature: o.KDTemp, Read: teacherRead, AllowWeakTeacher: o.AllowWeakTeacher},
			Prune:   &pipeline.Prune{Blocks: bopts, Tokens: keep, MaxDrop: o.MaxDrop, Target: plan, HW: &h, HWBatch: o.HWBatch, Int8WeightsFrom: int8WeightsFrom(o.Int8Weights, bopts)}},
	}, ds)
	return job, flagError(err)
}

// pruneAugments says whether the run augments: the flags (the recipe's
// values where none was given), except that a recipe which augments only
// images it may mirror leaves other data alone unless a flag asks.
func pruneAugments(o *pruneOptions, flipOK bool) bool {
	augment := o.Augment && !o.NoAugment
	if augment && !o.augmentSet && o.recipe.recipe.AugmentMirroredOnly && !flipOK {
		return false
	}
	return augment
}

// planTarget lets --target-flops or --target-speedup choose --density,
// --token-keep and --token-layers (nil plan: they are set by hand).
func planTarget(o *pruneOptions, cfg vit.Config, h hw.Config) (*pipeline.PrunePlan, error) {
	if o.TargetFLOPs == 0 && o.TargetSpeedup == 0 {
		return nil, nil
	}
	switch {
	case o.TargetFLOPs != 0 && o.TargetSpeedup != 0:
		return nil, errors.New("--target-flops and --target-speedup: give one target")
	case o.densitySet || o.keepSet:
		return nil, errors.New("--density and --token-keep are chosen by --target-flops/--target-speedup: give a target or set them by hand, not both")
	case o.TargetFLOPs != 0 && !(o.TargetFLOPs >= 1 && !math.IsInf(o.TargetFLOPs, 0)):
		return nil, fmt.Errorf("--target-flops %g: want a finite factor of at least 1", o.TargetFLOPs)
	case o.TargetSpeedup != 0 && !(o.TargetSpeedup >= 1 && !math.IsInf(o.TargetSpeedup, 0)):
		return nil, fmt.Errorf("--target-speedup %g: want a finite factor of at least 1", o.TargetSpeedup)
	}
	t := pipeline.Target{FLOPs: o.TargetFLOPs, Speedup: o.TargetSpeedup, HW: h, Block: o.Block, Batch: o.HWBatch}
	if o.TokenLayers != nil {
		t.LayerSets = [][]int{o.TokenLayers}
	}
	p, err := t.Plan(cfg)
	if err != nil {
		return nil, err
	}
	o.Density, o.TokenKeep, o.TokenLayers = p.Density, p.TokenKeep, p.TokenLayers
	if o.TokenLayers == nil {
		o.TokenLayers = []int{} // no token pruning; not the default layers
	}
	return p, nil
}

// int8WeightsFrom is where --int8-weights starts rounding: the recovery
// phase, once the block masks are final (the end of the density ramp).
func int8WeightsFrom(on bool, b blockprune.Options) float64 {
	if on {
		return b.Warmup + b.Ramp
	}
	return 0
}
