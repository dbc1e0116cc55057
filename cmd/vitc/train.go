package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"vitc/datasets"
	"vitc/taylorattn"
	"vitc/vit"
	"vitc/vit/pipeline"
	"vitc/vit/training"
)

// trainOptions are `vitc train`'s flags.
type trainOptions struct {
	architectureFlags
	fineTuneFlags
	Data   string
	Epochs int
	optimFlags
	AugmentCropScale float64
	HFlip            string
	InitScheme       string
	Seed             int64
	Out              string
	Resume           bool
	Init             string
	CheckpointEvery  time.Duration
	SkipNonFinite    int
	LayerDecay       float64
	Freeze           []string
	LinearProbe      bool
	JSON             bool
	Sparse           taylorattn.SparseOptions
	Teacher          string
	AllowWeakTeacher bool
	KDAlpha, KDTemp  float64
	Engine           string
	memory           memoryFlags
	recipe           recipeFlags
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
	f.StringVar(&o.Data, "data", "", "data: synthetic, digits:FILE, mnist:DIR, cifar10:DIR, folder:DIR (default: the --init checkpoint's, else synthetic)")
	o.architectureFlags.bind(f)
	o.fineTuneFlags.bind(f)
	f.IntVar(&o.Epochs, "epochs", 10, "training epochs")
	// recipe.bind replaces the defaults of the flags a recipe sets (lr,
	// batch, augment, init-scheme, ...) by the default recipe's.
	o.optimFlags.bind(f, "norms, biases, cls_token, pos_embed")
	f.Float64Var(&o.AugmentCropScale, "augment-crop-scale", 0, "augment by random-resized crops (timm's RandomResizedCrop) of area fraction in [S, 1] instead of shifts (0: shifts)")
	bindHFlip(f, &o.HFlip)
	f.StringVar(&o.InitScheme, "init-scheme", vit.InitTimm, "initialisation of a fresh model: torch (PyTorch module defaults) or timm (trunc_normal .02)")
	f.Int64Var(&o.Seed, "seed", 0, "seed for data order, initialisation and augmentation")
	f.StringVar(&o.Out, "out", "", "run directory (default runs/<data>-<model>-<attention>)")
	f.BoolVar(&o.Resume, "resume", false, "continue the run saved in --out")
	f.StringVar(&o.Init, "init", "", "initialise weights from this checkpoint")
	f.DurationVar(&o.CheckpointEvery, "checkpoint-every", time.Minute, "also save resumable state this often within an epoch")
	f.Float64Var(&o.LayerDecay, "layer-decay", 0, "layer-wise lr decay for fine-tuning (timm's, e.g. 0.65: the head at lr, each layer below ×0.65; 0: off)")
	f.StringSliceVar(&o.Freeze, "freeze", nil, "do not train parameters whose names match these patterns (e.g. 'blocks.[0-5].*,patch_embed.*')")
	f.BoolVar(&o.LinearProbe, "linear-probe", false, "train only the head (a linear probe of the frozen features)")
	f.IntVar(&o.SkipNonFinite, "skip-nonfinite", 0, "skip up to this many batches with a non-finite loss or gradient instead of stopping")
	f.BoolVar(&o.JSON, "json", false, "print the final report as JSON on stdout")
	d := taylorattn.DefaultSparse
	f.Float64Var(&o.Sparse.Weight, "sparse-weight", d.Weight, "Taylor attention: weight α of the sparse training branch, annealed to 0 (0: plain Taylor training)")
	f.Float64Var(&o.Sparse.Threshold, "sparse-threshold", d.Threshold, "Taylor attention: threshold θ of the predicted sparse mask")
	f.Float64Var(&o.Sparse.Reg, "sparse-reg", d.Reg, "Taylor attention: weight λ of the mean|S| regulariser")
	f.Float64Var(&o.Sparse.Anneal, "sparse-anneal", d.Anneal, "Taylor attention: final fraction of training over which α falls to 0")
	f.StringVar(&o.Sparse.Formulation, "sparse-formulation", taylorattn.FormulationVitc, "Taylor attention: what the sparse branch adds: vitc (α·M⊙(softmax − Taylor)·V) or vitality (α·s·M⊙softmax(s·Q̃K̃ᵀ)·V, ViTALiTy's training code; docs/taylor.md)")
	f.StringVar(&o.Teacher, "teacher", "", "distil from this frozen checkpoint (e.g. a softmax model when converting to Taylor), read as --init is; scored on the test split first")
	f.BoolVar(&o.AllowWeakTeacher, "allow-weak-teacher", false, "distil from a teacher that scores near chance, or far below what its checkpoint records (default: refuse it)")
	f.Float64Var(&o.KDAlpha, "kd-alpha", 0.9, "distillation: weight of the KL term (1−α goes to cross-entropy)")
	f.Float64Var(&o.KDTemp, "kd-temp", 2, "distillation: temperature")
	bindEngine(f, &o.Engine)
	o.memory.bind(f)
	o.recipe.bind(f)
	return cmd
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func runTrain(ctx context.Context, o *trainOptions, stdout, stderr io.Writer) error {
	var job *pipeline.Job
	if o.Resume {
		if o.Out == "" {
			return errors.New("--resume needs --out DIR")
		}
		var err error
		if job, err = openJob(o.Out, pipeline.KindTrain, stderr); err != nil {
			return err
		}
	} else {
		var err error
		if job, err = newTrainJob(o, stderr); err != nil {
			return err
		}
		if o.Init != "" { // the architecture is the checkpoint's, not a preset
			o.Model = strings.TrimSuffix(filepath.Base(o.Init), ".safetensors")
			if o.Model == "model" { // runs/NAME/model.safetensors: NAME
				o.Model = filepath.Base(filepath.Dir(o.Init))
			}
		}
		if o.Out == "" {
			kind, _, _ := strings.Cut(o.Data, ":")
			o.Out = filepath.Join("runs", fmt.Sprintf("%s-%s-%s", kind, o.Model, job.Run.Model.Attention))
		}
		r := job.Run
		fmt.Fprintln(stderr, o.recipe.line)
		fmt.Fprintf(stderr, "training %s (%d params, %s attention) on %s: %d train / %d test images, %d classes, batch %d, %s; writing %s\n",
			o.Model, r.Model.Params.Count(), r.Model.Attention, o.Data, r.Data.Train.Len(), r.Data.Test.Len(), len(r.Data.Classes), r.Opts.Batch,
			augmentation(r.Opts, r.Data.FlipOK), o.Out)
	}
	out, err := job.Train(ctx, o.Out, newProgress(stderr))
	if err != nil {
		return interrupted(err, "train", o.Out)
	}
	rep := out.Train
	if o.JSON {
		return printJSON(stdout, rep)
	}
	fmt.Fprintf(stdout, "test accuracy %.2f%% (chance %.1f%%) after %d epochs, %.1fs of training, peak RSS %s; wrote %s\n",
		100*rep.TestAccuracy, 100*rep.ChanceAccuracy, rep.Epochs, rep.TrainSeconds, mib(rep.PeakRSSBytes), o.Out)
	return nil
}

// openJob reopens the run saved in dir, which must be of the given kind,
// and says where it continues.
func openJob(dir, kind string, stderr io.Writer) (*pipeline.Job, error) {
	job, err := pipeline.Open(dir)
	if err != nil {
		return nil, err
	}
	if k := job.Spec.Plan.Kind; k != kind {
		return nil, fmt.Errorf("%s holds a %s run: continue it with vitc %s --resume --out %s", dir, k, k, dir)
	}
	st, epochs := job.Run.CurrentState(), job.Spec.Train.Epochs
	if st.Epoch >= epochs {
		fmt.Fprintf(stderr, "finishing %s: all %d epochs are trained, writing the final outputs\n", dir, epochs)
	} else {
		fmt.Fprintf(stderr, "resuming %s at epoch %d, batch %d\n", dir, st.Epoch+1, st.NextBatch)
	}
	return job, nil
}

// interrupted turns an interrupted run into exit status 130 with the
// command that continues it.
func interrupted(err error, cmd, dir string) error {
	if errors.Is(err, training.ErrInterrupted) {
		return &exitError{code: exitInterrupted, err: fmt.Errorf("%w; continue with: vitc %s --resume --out %s", err, cmd, dir)}
	}
	return err
}

// newTrainJob maps the flags to a training run. With --init the
// architecture is the checkpoint's, adapted to the data; the lines saying
// how go to stderr once the run is set up, so a refused one prints one line.
func newTrainJob(o *trainOptions, stderr io.Writer) (*pipeline.Job, error) {
	if err := checkEngine(o.Engine); err != nil {
		return nil, err
	}
	if err := o.memory.check(o.Engine); err != nil {
		return nil, err
	}
	if o.Epochs == 0 && o.Init != "" {
		return nil, fmt.Errorf("--epochs 0: to write %s with its architecture and no training, use vitc import", o.Init)
	}
	n := newNotes(stderr)
	pre, initWith, err := o.readInit(n)
	if err != nil {
		return nil, err
	}
	if o.Data == "" {
		switch {
		case pre == nil:
			o.Data = "synthetic"
		case pre.Meta.Dataset == "":
			return nil, fmt.Errorf("--init %s records no data: pass --data SPEC", o.Init)
		default:
			o.Data = pre.Meta.Dataset
			n.printf("data %s (the --init checkpoint's; set it with --data)", o.Data)
		}
	}
	var recorded vit.Meta
	if pre != nil {
		recorded = pre.Meta
	}
	dopts, err := o.dataFlags.optionsFor(o.ImageSize, o.Data, recorded)
	if err != nil {
		return nil, err
	}
	if dopts.Flip, err = hflipOption(o.HFlip); err != nil {
		return nil, err
	}
	ds, err := datasets.LoadWith(o.Data, o.Seed, dopts)
	if err != nil {
		return nil, flagError(err)
	}
	reportSkipped(ds, n)
	if pre != nil {
		if err := fitRunClasses(pre, ds, o.Data, &dopts, n, false); err != nil {
			return nil, err
		}
		if pre.Config.Classes == len(ds.Classes) && pre.Config.Image == ds.H && pre.Config.Channels == ds.C {
			if err := checkHeads("init", pre, ds, n); err != nil {
				return nil, err
			}
		}
	}
	cfg, err := vit.ConfigFor(o.Model, ds, o.overrides())
	if pre != nil {
		cfg, err = pre.Config, nil // the pipeline adapts it to the data
	}
	if err != nil {
		return nil, err
	}
	warmup := o.recipe.warmupEpochs(o.Epochs, o.Warmup)
	o.Batch = o.recipe.batchFor(o.Batch, ds.Train.Len())
	if o.SkipNonFinite < 0 {
		return nil, fmt.Errorf("--skip-nonfinite (%d) must not be negative", o.SkipNonFinite)
	}
	plan := pipeline.Plan{Kind: pipeline.KindTrain, Init: o.Init, InitWith: initWith, Sparse: o.Sparse}
	if o.Teacher != "" {
		d, err := o.teacher(pre, initWith.Load, n)
		if err != nil {
			return nil, err
		}
		plan.Distill = d
	}
	job, err := pipeline.New(pipeline.Spec{Train: training.Options{
		Recipe: o.recipe.Name, Data: o.Data, Config: cfg, Epochs: o.Epochs, Batch: o.Batch, LR: o.LR, MinLR: o.MinLR,
		WeightDecay: o.WeightDecay, WarmupEpochs: warmup, LabelSmoothing: o.LabelSmoothing,
		ClipNorm: o.ClipNorm, Augment: o.Augment && !o.NoAugment, AugmentShift: loaderShift(o.AugmentShift, ds.H),
		AugmentCropScale: o.AugmentCropScale,
		Seed:             o.Seed, InitScheme: o.InitScheme, DataOptions: dopts,
		CheckpointEvery: o.CheckpointEvery, SkipNonFinite: o.SkipNonFinite,
		LayerDecay: o.LayerDecay, Freeze: o.Freeze, LinearProbe: o.LinearProbe, Engine: o.Engine,
		Recompute: o.memory.Recompute, MaxSteps: o.memory.MaxSteps,
	}, Plan: plan}, ds)
	if err != nil {
		return nil, flagError(err)
	}
	n.flush()
	printTeacherCheck(stderr, job.Teacher)
	return job, nil
}

// teacher reads --teacher the way --init is read (the same file: the same
// checkpoint) and says how the run distils from it.
func (o *trainOptions) teacher(pre *vit.Checkpoint, initRead vit.LoadOptions, n *notes) (*pipeline.Distill, error) {
	read := initRead
	read.Log = nil
	if pre == nil {
		// Training from scratch: --heads is the new model's, not the
		// teacher's; the other flags describe a bare teacher.
		r := o.readFlags
		var err error
		if read, err = r.options("", ""); err != nil {
			return nil, err
		}
	}
	t, err := openSecond("teacher", o.Teacher, pre, read, n)
	if err != nil {
		return nil, err
	}
	if t != pre {
		read.BareOnly = true
	}
	return &pipeline.Distill{Teacher: o.Teacher, Alpha: o.KDAlpha, Temperature: o.KDTemp, Read: read, AllowWeakTeacher: o.AllowWeakTeacher}, nil
}

// printTeacherCheck says how the teacher scored before training.
func printTeacherCheck(w io.Writer, tc *pipeline.TeacherCheck) {
	if tc == nil {
		return
	}
	rec := ""
	if tc.Recorded > 0 {
		rec = fmt.Sprintf("; its checkpoint records %.2f%%", 100*tc.Recorded)
	}
	fmt.Fprintf(w, "vitc: teacher %s: %.2f%% on the test split of %s (chance %.1f%%%s)\n", tc.Teacher, 100*tc.Accuracy, tc.Data, 100*tc.Chance, rec)
}

// fitRunClasses names a run's classes from the checkpoint it starts from
// (see vit.FitClassNames) and records the fit in dopts so a resumed run
// reads the data the same way. strict refuses data whose classes are not
// the checkpoint's; otherwise (fine-tuning to a new task) it says so.
func fitRunClasses(pre *vit.Checkpoint, ds *datasets.Dataset, spec string, dopts *datasets.Options, n *notes, strict bool) error {
	fit, err := vit.FitClassNames(pre.Meta.ClassNames, ds, spec, pre.Meta.Dataset)
	switch {
	case err != nil && strict:
		return flagError(err)
	case err != nil && ds.NamesClasses():
		n.printf("classes %s: the data's, a new task for %s (whose classes are %s)", strings.Join(ds.Classes, ", "), pre.Path, strings.Join(pre.Meta.ClassNames, ", "))
	case err != nil:
		n.printf("classes %s: the data names none and is not %s's data, so its names (%s) are not taken; name them with --class-names", strings.Join(ds.Classes, ", "), pre.Path, strings.Join(pre.Meta.ClassNames, ", "))
	case fit.Adopted != nil:
		dopts.ClassNames = fit.Adopted
		n.printf("classes %s (the checkpoint's; the data names none)", strings.Join(fit.Adopted, ", "))
	case fit.Order != nil:
		dopts.ClassOrder = fit.Order
		n.printf("%s", fit.Line)
	}
	return nil
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

// augmentation says in a few words what the run's augmentation does.
func augmentation(o training.Options, flipOK bool) string {
	if !o.Augment {
		return "no augmentation"
	}
	var parts []string
	switch {
	case o.AugmentCropScale > 0:
		parts = append(parts, fmt.Sprintf("random-resized crops of area %g–1", o.AugmentCropScale))
	case o.AugmentShift > 0:
		parts = append(parts, fmt.Sprintf("shifts of up to %d px", o.AugmentShift))
	case o.AugmentShift == 0:
		parts = append(parts, "shifts of up to 1/8 of the image")
	}
	if flipOK {
		parts = append(parts, "mirroring")
	}
	if len(parts) == 0 {
		return "augmentation on, but nothing suits these images"
	}
	return "augmentation: " + strings.Join(parts, ", ")
}

// bindHFlip adds --hflip, which train and prune share.
func bindHFlip(f *pflag.FlagSet, v *string) {
	f.StringVar(v, "hflip", "auto", "let augmentation mirror images: auto (the data set's own claim; folders: on for RGB, off for grey), on or off")
}

// hflipOption maps --hflip to datasets.Options.Flip ("" for auto).
func hflipOption(v string) (string, error) {
	switch v {
	case "auto":
		return "", nil
	case "on", "off":
		return v, nil
	}
	return "", fmt.Errorf("--hflip %q must be auto, on or off", v)
}
