package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"vitc/autograd"
	"vitc/datasets"
	"vitc/distill"
	"vitc/taylorattn"
	"vitc/vit"
	"vitc/vit/atomicfile"
	"vitc/vit/curves"
)

// trainOptions are `vitc train`'s flags.
type trainOptions struct {
	architectureFlags
	Data                     string
	Epochs, Batch            int
	LR, MinLR, WeightDecay   float64
	Warmup                   float64 // epochs; negative picks the recipe's share of the run
	LabelSmoothing, ClipNorm float64
	Augment, NoAugment       bool
	AugmentShift             int // pixels; negative: by image size (datasets.AutoShift)
	InitScheme               string
	Seed                     int64
	Out                      string
	Resume                   bool
	Init                     string
	CheckpointEvery          time.Duration
	SkipNonFinite            int
	JSON                     bool
	Sparse                   taylorattn.SparseOptions
	Teacher                  string
	KDAlpha, KDTemp          float64
	recipe                   recipeFlags
}

func newTrainCmd() *cobra.Command {
	o := &trainOptions{}
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train a ViT (the embedded synthetic set by default)",
		Long: `Train a ViT and write DIR/model.safetensors (timm layout), metrics.jsonl,
report.json and curves.png. Ctrl-C saves a resumable state; --resume --out DIR
finishes the same run with the same settings.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Resume && cmd.Flags().NFlag() > 2+boolToInt(cmd.Flags().Changed("json")) {
				return errors.New("--resume takes only --out (and --json): the run continues with its saved settings")
			}
			if !o.Resume {
				if err := o.recipe.apply(cmd.Flags(), o.Epochs, o.Warmup); err != nil {
					return err
				}
			}
			return runTrain(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Data, "data", "synthetic", "data: synthetic, digits:FILE, mnist:DIR, cifar10:DIR, folder:DIR")
	o.architectureFlags.bind(f)
	f.IntVar(&o.Epochs, "epochs", 10, "training epochs")
	// recipe.bind replaces the defaults of the flags a recipe sets (lr,
	// batch, augment, init-scheme, ...) by the default recipe's.
	f.IntVar(&o.Batch, "batch", 32, "batch size")
	f.Float64Var(&o.LR, "lr", 2e-3, "peak learning rate (AdamW, cosine schedule)")
	f.Float64Var(&o.MinLR, "min-lr", 1e-5, "final learning rate")
	f.Float64Var(&o.WeightDecay, "weight-decay", 0.05, "AdamW weight decay (not applied to norms, biases, cls_token, pos_embed)")
	f.Float64Var(&o.Warmup, "warmup", -1, "linear warm-up in epochs (default: the recipe's share of the run, 5% from scratch)")
	f.Float64Var(&o.LabelSmoothing, "label-smoothing", 0.1, "label smoothing")
	f.Float64Var(&o.ClipNorm, "clip-grad", 1, "clip the global gradient norm to this (0: off)")
	f.BoolVar(&o.Augment, "augment", false, "augment: random shifts (see --augment-shift) and, where labels survive, mirroring (default: the recipe's; scratch-small from 20 epochs)")
	f.BoolVar(&o.NoAugment, "no-augment", false, "turn augmentation off (wins over --augment)")
	f.IntVar(&o.AugmentShift, "augment-shift", -1, "largest random shift of the augmentation's padding crop in pixels (0: none; default: none up to 16 px, ~size/14 above)")
	f.StringVar(&o.InitScheme, "init-scheme", vit.InitTimm, "initialisation of a fresh model: torch (PyTorch module defaults) or timm (trunc_normal .02)")
	f.Int64Var(&o.Seed, "seed", 0, "seed for data order, initialisation and augmentation")
	f.StringVar(&o.Out, "out", "", "run directory (default runs/<data>-<model>-<attention>)")
	f.BoolVar(&o.Resume, "resume", false, "continue the run saved in --out")
	f.StringVar(&o.Init, "init", "", "initialise weights from this checkpoint")
	f.DurationVar(&o.CheckpointEvery, "checkpoint-every", time.Minute, "also save resumable state this often within an epoch")
	f.IntVar(&o.SkipNonFinite, "skip-nonfinite", 0, "skip up to this many batches with a non-finite loss or gradient instead of stopping")
	f.BoolVar(&o.JSON, "json", false, "print the final report as JSON on stdout")
	d := taylorattn.DefaultSparse
	f.Float64Var(&o.Sparse.Weight, "sparse-weight", d.Weight, "Taylor attention: weight α of the sparse training branch, annealed to 0 (0: plain Taylor training)")
	f.Float64Var(&o.Sparse.Threshold, "sparse-threshold", d.Threshold, "Taylor attention: threshold θ of the predicted sparse mask")
	f.Float64Var(&o.Sparse.Reg, "sparse-reg", d.Reg, "Taylor attention: weight λ of the mean|S| regulariser")
	f.Float64Var(&o.Sparse.Anneal, "sparse-anneal", d.Anneal, "Taylor attention: final fraction of training over which α falls to 0")
	f.StringVar(&o.Teacher, "teacher", "", "distil from this frozen checkpoint (e.g. a softmax model when converting to Taylor)")
	f.Float64Var(&o.KDAlpha, "kd-alpha", 0.9, "distillation: weight of the KL term (1−α goes to cross-entropy)")
	f.Float64Var(&o.KDTemp, "kd-temp", 2, "distillation: temperature")
	o.recipe.bind(f)
	return cmd
}

func equalFloats(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// trainReport is report.json.
type trainReport struct {
	TestAccuracy   float64    `json:"test_accuracy"`
	TestTop5       float64    `json:"test_top5,omitempty"`
	ChanceAccuracy float64    `json:"chance_accuracy"`
	TrainSeconds   float64    `json:"train_seconds"`
	Epochs         int        `json:"epochs"`
	Params         int        `json:"params"`
	FLOPsPerImage  int64      `json:"flops_per_image"`
	TrainImgPerSec float64    `json:"train_img_per_s"`
	Data           string     `json:"data"`
	Seed           int64      `json:"seed"`
	Config         vit.Config `json:"config"`
	BLAS           string     `json:"blas"`
	Checkpoint     string     `json:"checkpoint"`
	// Recipe and Options are the settings the run trained with: the
	// recipe's, less what flags overrode.
	Recipe  string           `json:"recipe,omitempty"`
	Options vit.TrainOptions `json:"options"`
}

func runTrain(ctx context.Context, o *trainOptions, stdout, stderr io.Writer) error {
	var run *vit.Run
	if o.Resume {
		if o.Out == "" {
			return errors.New("--resume needs --out DIR")
		}
		rp, err := vit.LoadResumePoint(o.Out)
		if err != nil {
			return err
		}
		if run, err = vit.ResumeRun(rp); err != nil {
			return err
		}
		if err := attachTeacher(run); err != nil {
			return err
		}
		if rp.State.Epoch >= rp.State.Opts.Epochs {
			fmt.Fprintf(stderr, "finishing %s: all %d epochs are trained, writing the final outputs\n", o.Out, rp.State.Opts.Epochs)
		} else {
			fmt.Fprintf(stderr, "resuming %s at epoch %d, batch %d\n", o.Out, rp.State.Epoch+1, rp.State.NextBatch)
		}
	} else {
		var err error
		if run, err = newTrainRun(o); err != nil {
			return err
		}
		if err := attachTeacher(run); err != nil {
			return err
		}
		if o.Out == "" {
			kind, _, _ := strings.Cut(o.Data, ":")
			o.Out = filepath.Join("runs", fmt.Sprintf("%s-%s-%s", kind, o.Model, run.Model.Attention))
		}
		if err := os.MkdirAll(o.Out, 0o755); err != nil {
			return err
		}
		fmt.Fprintln(stderr, o.recipe.line)
		fmt.Fprintf(stderr, "training %s (%d params, %s attention) on %s: %d train / %d test images, %d classes, batch %d; writing %s\n",
			o.Model, run.Model.Params.Count(), run.Model.Attention, o.Data, run.Data.Train.Len(), run.Data.Test.Len(), len(run.Data.Classes), run.Opts.Batch, o.Out)
	}
	removeStaleTemps(o.Out)
	run.Save = vit.DirSaver(o.Out)
	run.Progress = newProgress(stderr)
	res, err := run.Train(ctx)
	if errors.Is(err, vit.ErrInterrupted) {
		return &exitError{code: exitInterrupted, err: fmt.Errorf("%w; continue with: vitc train --resume --out %s", err, o.Out)}
	}
	if err != nil {
		return err
	}
	return writeTrainOutputs(o.Out, run, res, o.JSON, stdout)
}

// removeStaleTemps deletes the temporary files that saves of a killed
// process left in dir (atomicfile names them .NAME.tmp-*); nothing reads
// them, but each kill could add one. Only one process trains in a run
// directory at a time.
func removeStaleTemps(dir string) {
	for _, name := range []string{vit.StateFile, vit.ModelFile, vit.MetricsFile, "report.json", "curves.png"} {
		stale, _ := filepath.Glob(filepath.Join(dir, "."+name+".tmp-*"))
		for _, p := range stale {
			os.Remove(p)
		}
	}
}

func newTrainRun(o *trainOptions) (*vit.Run, error) {
	ds, err := datasets.Load(o.Data, o.Seed)
	if err != nil {
		return nil, err
	}
	cfg, err := vit.ConfigFor(o.Model, ds, o.overrides())
	if err != nil {
		return nil, err
	}
	warmup := o.recipe.warmupEpochs(o.Epochs, o.Warmup)
	o.Batch = o.recipe.batchFor(o.Batch, ds.Train.Len())
	return vit.NewRun(vit.TrainOptions{
		Recipe: o.recipe.Name, Data: o.Data, Config: cfg, Epochs: o.Epochs, Batch: o.Batch, LR: o.LR, MinLR: o.MinLR,
		WeightDecay: o.WeightDecay, WarmupEpochs: warmup, LabelSmoothing: o.LabelSmoothing,
		ClipNorm: o.ClipNorm, Augment: o.Augment && !o.NoAugment, AugmentShift: loaderShift(o.AugmentShift, ds.H),
		Seed: o.Seed, Init: o.Init, InitScheme: o.InitScheme,
		CheckpointEvery: o.CheckpointEvery, Sparse: o.Sparse, SkipNonFinite: o.SkipNonFinite,
		Teacher: o.Teacher, KDAlpha: o.KDAlpha, KDTemp: o.KDTemp,
	}, ds)
}

// attachTeacher switches the run's objective to distillation when its
// options name a teacher.
func attachTeacher(run *vit.Run) error {
	if run.Opts.Teacher == "" {
		return nil
	}
	teacher, tmeta, err := distill.LoadTeacher(run.Opts.Teacher, vit.LoadOptions{})
	if err != nil {
		return err
	}
	tm, m := teacher.Model(), run.Model
	if tm.Image != m.Image || tm.Channels != m.Channels {
		return fmt.Errorf("teacher %s takes %dx%dx%d images, the student %dx%dx%d", run.Opts.Teacher, tm.Channels, tm.Image, tm.Image, m.Channels, m.Image, m.Image)
	}
	if !equalFloats(tmeta.NormMean, run.Meta.NormMean) || !equalFloats(tmeta.NormStd, run.Meta.NormStd) {
		return fmt.Errorf("teacher %s was trained with other normalisation statistics than this data's: distil on the teacher's own data", run.Opts.Teacher)
	}
	obj, err := distill.NewObjective(teacher, run.Opts.KDAlpha, run.Opts.KDTemp, run.Opts.LabelSmoothing, run.Model.Classes)
	if err != nil {
		return err
	}
	run.Objective = obj
	return nil
}

func writeTrainOutputs(dir string, run *vit.Run, res vit.Result, asJSON bool, stdout io.Writer) error {
	m := run.Model
	rep := trainReport{
		TestAccuracy: res.Test.Accuracy, TestTop5: res.Test.Top5, ChanceAccuracy: 1 / float64(m.Classes),
		TrainSeconds: res.TrainSeconds, Epochs: run.Opts.Epochs, Params: m.Params.Count(),
		FLOPsPerImage: m.FLOPs(), Data: run.Opts.Data, Seed: run.Opts.Seed, Config: m.Config,
		BLAS: autograd.BLASName(), Checkpoint: filepath.Join(dir, vit.ModelFile),
		Recipe: run.Opts.Recipe, Options: run.Opts,
	}
	if res.TrainSeconds > 0 {
		rep.TrainImgPerSec = float64(len(res.History)*run.Data.Train.Len()) / res.TrainSeconds
	}
	js, err := writeReport(dir, rep, res.History, fmt.Sprintf("%s on %s", m.Attention, run.Opts.Data))
	if err != nil {
		return err
	}
	if asJSON {
		_, err := fmt.Fprintln(stdout, string(js))
		return err
	}
	fmt.Fprintf(stdout, "test accuracy %.2f%% (chance %.1f%%) after %d epochs, %.1fs of training; wrote %s\n",
		100*rep.TestAccuracy, 100*rep.ChanceAccuracy, rep.Epochs, rep.TrainSeconds, dir)
	return nil
}

// writeReport writes a run's report.json and its curves.png, and returns
// the report's JSON.
func writeReport(dir string, rep any, history []vit.EpochMetrics, title string) ([]byte, error) {
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, "report.json"), append(js, '\n')); err != nil {
		return nil, err
	}
	pts := make([]curves.Point, len(history))
	for i, h := range history {
		pts[i] = curves.Point{Epoch: h.Epoch, TrainLoss: h.TrainLoss, TestLoss: h.TestLoss, TrainAcc: h.TrainAcc, TestAcc: h.TestAcc}
	}
	return js, curves.WritePNG(filepath.Join(dir, "curves.png"), title, pts)
}

// loaderShift maps --augment-shift to datasets.LoaderOptions.Shift, whose 0
// is the original H/8 crop and a negative value no shift.
func loaderShift(flag, h int) int {
	switch {
	case flag < 0:
		return datasets.AutoShift(h)
	case flag == 0:
		return -1
	}
	return flag
}
