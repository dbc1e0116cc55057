package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"vitc/export/hw"
	"vitc/internal/atomicfile"
	"vitc/internal/figures"
	"vitc/internal/rss"
	"vitc/vit"
	"vitc/vit/pipeline"
	"vitc/vit/training"
)

// compressOptions are `vitc compress`'s flags. They are saved in the run
// directory, so that --resume repeats the run exactly.
type compressOptions struct {
	From          string    `json:"from"`
	Data          string    `json:"data"`
	Out           string    `json:"out"`
	Heads         int       `json:"heads,omitempty"`
	LNEps         float64   `json:"ln_eps,omitempty"`
	Mean          []float32 `json:"mean,omitempty"`
	Std           []float32 `json:"std,omitempty"`
	KeyMap        []string  `json:"key_map,omitempty"`
	ClassNames    []string  `json:"class_names,omitempty"`
	TargetFLOPs   float64   `json:"target_flops,omitempty"`
	TargetSpeedup float64   `json:"target_speedup,omitempty"`
	HW            string    `json:"hw,omitempty"`
	Batch         int       `json:"batch"`
	KeepSoftmax   bool      `json:"keep_softmax,omitempty"`
	TaylorEpochs  int       `json:"taylor_epochs"`
	PruneEpochs   int       `json:"prune_epochs"`
	ActBits       string    `json:"act_bits"`
	Int8Weights   bool      `json:"int8_weights"`
	MaxDrop       float64   `json:"max_drop"`
	Seed          int64     `json:"seed"`

	Resume bool `json:"-"`
	JSON   bool `json:"-"`
}

// compressFile holds a run's options in its directory.
const compressFile = "compress.json"

func newCompressCmd() *cobra.Command {
	o := &compressOptions{}
	cmd := &cobra.Command{
		Use:   "compress --from CKPT --data SPEC (--target-flops X | --target-speedup X) --out DIR",
		Short: "The whole co-design flow in one resumable run: evaluate, convert to Taylor attention, prune to a target, export, simulate",
		Long: `Take a trained ViT (a checkpoint vitc wrote, or one published without vitc
metadata: say what its tensors cannot with --heads, --ln-eps, --mean/--std,
or put a config.json beside it) to a verified accelerator bundle, in stages,
each the command you could run by hand, in its own subdirectory of DIR:

  source   vitc import: read the checkpoint once, score it on the data
  taylor   vitc train --attention taylor --teacher source (skipped with --keep-softmax)
  prune    vitc prune --teacher source --init taylor, to the target (closed loop)
  export   vitc export of the pruned model (activation width measured, --act-bits)
  sim      vitc sim: the bundle bit-exactly on the whole test split

Each stage prints the command it runs. Ctrl-C or a kill loses at most the
stage's last checkpoint: --resume --out DIR skips finished stages and
continues the one that was running. DIR/report.json has the source and final
accuracy, the FLOPs reduction and modelled speed-up (against the source, the
dense softmax model), the top-1 agreement of the bundle with its float model,
and a row per stage; DIR/compress.png draws them. With --max-drop, exits with
status 1 when the bundle's accuracy is more than that many points below the
source's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Resume && cmd.Flags().NFlag() > 2+boolToInt(cmd.Flags().Changed("json")) {
				return errors.New("--resume takes only --out (and --json): the run continues with its saved settings")
			}
			return runCompress(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.From, "from", "", "the trained model: a .safetensors checkpoint, or a folder with model.safetensors (and config.json)")
	f.StringVar(&o.Data, "data", "", "data to score, convert, prune, calibrate and simulate on (default: the checkpoint's)")
	f.StringVar(&o.Out, "out", "", "run directory")
	f.IntVar(&o.Heads, "heads", 0, "attention heads of a checkpoint without vitc metadata (default: its config.json's, else dim/64 as timm)")
	f.Float64Var(&o.LNEps, "ln-eps", 0, "LayerNorm eps of a checkpoint without vitc metadata (default: its config.json's, else 1e-6)")
	f.Float32SliceVar(&o.Mean, "mean", nil, "input mean per channel of a checkpoint without vitc metadata (default: its config.json's, else timm's)")
	f.Float32SliceVar(&o.Std, "std", nil, "input std per channel, with --mean")
	f.StringArrayVar(&o.KeyMap, "key-map", nil, "rename a checkpoint's tensors without vitc metadata to timm's names: 'REGEXP=NAME', repeatable (see vitc import --help)")
	f.StringSliceVar(&o.ClassNames, "class-names", nil, "the model's class names in label order, comma-separated or @FILE (default: the checkpoint's, else the data's)")
	f.Float64Var(&o.TargetFLOPs, "target-flops", 0, "prune to this many times fewer FLOPs than the source (a dense softmax model)")
	f.Float64Var(&o.TargetSpeedup, "target-speedup", 0, "prune to this modelled speed-up over the source on --hw at --batch")
	f.StringVar(&o.HW, "hw", "", "hardware config hw.json the speed-ups, the export and the simulation are for (default: vitc's)")
	f.IntVar(&o.Batch, "batch", 64, "images per load of the weights on the accelerator (1: latency); plan, report, bundle and simulation all use it")
	f.BoolVar(&o.KeepSoftmax, "keep-softmax", false, "keep softmax attention: skip the conversion to Taylor attention")
	f.IntVar(&o.TaylorEpochs, "taylor-epochs", 5, "epochs of the conversion to Taylor attention (distillation from the source)")
	f.IntVar(&o.PruneEpochs, "prune-epochs", 20, "epochs of the pruning stage")
	f.StringVar(&o.ActBits, "act-bits", "auto", "activation width of the bundle: 8, 16 or auto (8 when int8 agrees with float on ≥ 99.5% of the calibration images)")
	f.BoolVar(&o.Int8Weights, "int8-weights", true, "train the pruning's recovery phase through the exporter's int8 weight rounding (the bundle then reproduces the float model's weights)")
	f.Float64Var(&o.MaxDrop, "max-drop", -1, "fail (exit 1) when the bundle's accuracy is more than this many points below the source's (negative: no gate)")
	f.Int64Var(&o.Seed, "seed", 0, "seed of every stage")
	f.BoolVar(&o.Resume, "resume", false, "continue the compress run saved in --out")
	f.BoolVar(&o.JSON, "json", false, "print the report as JSON on stdout")
	return cmd
}

// compressStage is one row of the report: a stage's model and what it cost.
type compressStage struct {
	Name    string `json:"name"`
	Command string `json:"command"`
	// Accuracy is the stage model's top-1 on the test split (the integer
	// bundle's for sim; nil for export, which trains nothing).
	Accuracy *float64 `json:"accuracy"`
	FLOPs    int64    `json:"flops"`
	Params   int      `json:"params"`
	// Cycles per image on the run's hardware at its batch (the cycle
	// model; the simulator's for the bundle).
	Cycles  int64   `json:"cycles,omitempty"`
	Seconds float64 `json:"seconds"`
	// PeakRSSBytes is the stage's peak resident memory (its sub-stage's
	// too for export; 0: not measured, e.g. a stage done before --resume).
	PeakRSSBytes int64 `json:"peak_rss_bytes,omitempty"`
	Skipped      bool  `json:"skipped,omitempty"`
}

// compressReport is DIR/report.json.
type compressReport struct {
	Source         string  `json:"source"`
	Data           string  `json:"data"`
	HW             string  `json:"hw"`
	Batch          int     `json:"batch"`
	Baseline       string  `json:"baseline"`
	SourceAccuracy float64 `json:"source_accuracy"`
	// FinalAccuracy is the bundle's (integer) accuracy on the whole test
	// split; FinalFloatAccuracy the pruned float model's.
	FinalAccuracy      float64 `json:"final_accuracy"`
	FinalFloatAccuracy float64 `json:"final_float_accuracy"`
	AccuracyDrop       float64 `json:"accuracy_drop_points"`
	FLOPsReduction     float64 `json:"flops_reduction"`
	ParamsCompression  float64 `json:"params_compression"`
	ModelledSpeedup    float64 `json:"modelled_speedup"`
	// ModelledSpeedupLatency is the same at batch 1, when Batch is larger.
	ModelledSpeedupLatency float64 `json:"modelled_speedup_latency,omitempty"`
	// SimulatedSpeedup is the bundle's cycles against the source's bundle
	// on the simulator, at Batch (0: the source's weights do not fit).
	SimulatedSpeedup float64         `json:"simulated_speedup,omitempty"`
	Top1Agreement    float64         `json:"top1_agreement"`
	ActBits          int             `json:"act_bits"`
	Bundle           string          `json:"bundle"`
	Stages           []compressStage `json:"stages"`
	MaxDrop          *float64        `json:"max_drop,omitempty"`
	Passed           *bool           `json:"passed,omitempty"`
	TotalSeconds     float64         `json:"total_seconds"`
}

func runCompress(ctx context.Context, o *compressOptions, stdout, stderr io.Writer) error {
	if o.Out == "" {
		return errors.New("--out DIR is required")
	}
	if o.Resume {
		saved, err := readCompressOptions(o.Out)
		if err != nil {
			return err
		}
		saved.JSON, saved.Resume = o.JSON, true
		o = saved
	} else {
		if err := o.validate(); err != nil {
			return err
		}
		if _, err := os.Stat(filepath.Join(o.Out, compressFile)); err == nil {
			return fmt.Errorf("--out %s holds a compress run already: continue it with --resume, or choose another directory", o.Out)
		}
	}
	c := &compressRun{o: o, ctx: ctx, stderr: stderr}
	rep, err := c.run()
	if err != nil {
		return err
	}
	if o.JSON {
		if err := printJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		printCompress(stdout, rep)
	}
	if rep.Passed != nil && !*rep.Passed {
		return &exitError{code: exitGate, err: fmt.Errorf("accuracy drop %.2f points exceeds --max-drop %g (source %.2f%%, bundle %.2f%%)",
			rep.AccuracyDrop, *rep.MaxDrop, 100*rep.SourceAccuracy, 100*rep.FinalAccuracy)}
	}
	return nil
}

func (o *compressOptions) validate() error {
	switch {
	case o.From == "":
		return errors.New("--from is required (the trained model)")
	case (o.TargetFLOPs == 0) == (o.TargetSpeedup == 0):
		return errors.New("give one target: --target-flops X or --target-speedup X")
	case o.TargetFLOPs != 0 && !(o.TargetFLOPs >= 1 && !math.IsInf(o.TargetFLOPs, 0)):
		return fmt.Errorf("--target-flops %g: want a finite factor of at least 1", o.TargetFLOPs)
	case o.TargetSpeedup != 0 && !(o.TargetSpeedup >= 1 && !math.IsInf(o.TargetSpeedup, 0)):
		return fmt.Errorf("--target-speedup %g: want a finite factor of at least 1", o.TargetSpeedup)
	case o.Batch < 1 || o.Batch > 1<<16:
		return fmt.Errorf("--batch %d: want 1 to %d images", o.Batch, 1<<16)
	case o.TaylorEpochs < 1 || o.PruneEpochs < 1:
		return fmt.Errorf("--taylor-epochs %d and --prune-epochs %d must be positive", o.TaylorEpochs, o.PruneEpochs)
	case math.IsNaN(o.MaxDrop):
		return errors.New("--max-drop is not a number")
	}
	if _, err := actBits(o.ActBits); err != nil {
		return err
	}
	if _, err := (&readFlags{Heads: o.Heads, LNEps: o.LNEps, Mean: o.Mean, Std: o.Std, KeyMap: o.KeyMap}).options("", ""); err != nil {
		return err
	}
	if o.HW != "" {
		if _, err := hw.Load(o.HW); err != nil {
			return err
		}
	}
	return nil
}

func readCompressOptions(dir string) (*compressOptions, error) {
	b, err := os.ReadFile(filepath.Join(dir, compressFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s holds no compress run (no %s)", dir, compressFile)
	}
	if err != nil {
		return nil, err
	}
	o := &compressOptions{}
	if err := json.Unmarshal(b, o); err != nil {
		return nil, fmt.Errorf("%s: %v", filepath.Join(dir, compressFile), err)
	}
	o.Out = dir
	return o, nil
}

// compressRun runs the stages as the commands a user would type, each in
// its own directory, and keeps a stage.json beside each finished one.
type compressRun struct {
	o      *compressOptions
	ctx    context.Context
	stderr io.Writer
	n      int  // stages started, for the headers
	quiet  bool // hold the stage's output until it succeeds (the source: bad input gets one line)
}

// stageFile marks a finished stage and keeps its JSON output.
const stageFile = "stage.json"

type stageRecord struct {
	Command string  `json:"command"`
	Seconds float64 `json:"seconds"`
	// PeakRSSBytes is the stage's own peak resident memory (0: unknown).
	PeakRSSBytes int64           `json:"peak_rss_bytes,omitempty"`
	Output       json.RawMessage `json:"output"`
	held         []byte          // a quiet stage's output, for the caller to print
}

const compressStages = 5

// stage runs `vitc ARGS --json` for the stage name unless it finished
// before, and decodes its JSON output into out. resumable says the command
// continues an interrupted run with --resume --out dir (train and prune).
func (c *compressRun) stage(name string, args []string, resumable bool, out any) (stageRecord, error) {
	label := name
	if !strings.Contains(name, "-") { // a stage of its own, not a part of one
		c.n++
		label = fmt.Sprintf("stage %d/%d %s", c.n, compressStages, name)
	}
	dir := filepath.Join(c.o.Out, name)
	if rec, ok := readStage(dir); ok {
		fmt.Fprintf(c.stderr, "%s: done before (%s)\n", label, rec.Command)
		return rec, json.Unmarshal(rec.Output, out)
	}
	command := "vitc " + shellJoin(args)
	run := append(append([]string(nil), args...), "--json")
	var stdout, held bytes.Buffer
	stderr := c.stderr
	if c.quiet {
		stderr = &held
	}
	if _, err := os.Stat(filepath.Join(dir, training.StateFile)); err == nil && resumable {
		run = []string{args[0], "--resume", "--out", dir, "--json"}
		fmt.Fprintf(stderr, "%s: resuming %s\n", label, command)
	} else {
		// What a killed export or simulation left is redone from scratch.
		if !resumable {
			if err := os.RemoveAll(dir); err != nil {
				return stageRecord{}, err
			}
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return stageRecord{}, err
		}
		fmt.Fprintf(stderr, "%s: %s\n", label, command)
	}
	root := newRootCmd(&stdout, stderr)
	root.SetArgs(run)
	// Each stage's own peak: stages run in this process one after another.
	peakOwn := rss.ResetPeak()
	start := time.Now()
	err := root.ExecuteContext(c.ctx)
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) && ee.code == exitInterrupted {
			return stageRecord{}, &exitError{code: exitInterrupted, err: fmt.Errorf("interrupted in stage %s; continue with: vitc compress --resume --out %s", name, c.o.Out)}
		}
		if c.quiet {
			return stageRecord{}, err
		}
		return stageRecord{}, fmt.Errorf("stage %s (%s): %w", name, command, err)
	}
	rec := stageRecord{Command: command, Seconds: time.Since(start).Seconds(), Output: bytes.TrimSpace(stdout.Bytes()), held: held.Bytes()}
	if peak, src := rss.Peak(); peakOwn && src == "VmHWM" {
		rec.PeakRSSBytes = peak
	}
	if err := json.Unmarshal(rec.Output, out); err != nil {
		return stageRecord{}, fmt.Errorf("stage %s: its output: %v", name, err)
	}
	js, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return stageRecord{}, err
	}
	return rec, atomicfile.WriteBytes(filepath.Join(dir, stageFile), append(js, '\n'))
}

func readStage(dir string) (stageRecord, bool) {
	b, err := os.ReadFile(filepath.Join(dir, stageFile))
	if err != nil {
		return stageRecord{}, false
	}
	var rec stageRecord
	if json.Unmarshal(b, &rec) != nil || len(rec.Output) == 0 {
		return stageRecord{}, false
	}
	return rec, true
}

func (c *compressRun) run() (*compressReport, error) {
	o := c.o
	h, err := loadHW(o.HW)
	if err != nil {
		return nil, err
	}
	rep := &compressReport{Source: o.From, HW: h.Name, Batch: o.Batch, Baseline: "the source model (dense softmax attention)"}
	cycles := func(path string) int64 {
		m, _, err := vit.Load(path, vit.LoadOptions{})
		if err != nil {
			return 0
		}
		cy, err := pipeline.ModelledCycles(m, h, o.Batch)
		if err != nil {
			return 0
		}
		return cy
	}

	// 1. source: read once, scored, written with its metadata.
	src := filepath.Join(o.Out, "source", "model.safetensors")
	args := []string{"import", o.From, "--out", src, "--seed", fmt.Sprint(o.Seed)}
	if o.Data != "" {
		args = append(args, "--data", o.Data)
	}
	args = append(args, readArgs(o.Heads, o.LNEps, o.Mean, o.Std)...)
	for _, r := range o.KeyMap {
		args = append(args, "--key-map", r)
	}
	if len(o.ClassNames) > 0 {
		args = append(args, "--class-names", strings.Join(o.ClassNames, ","))
	}
	var imp importReport
	fresh := !o.Resume
	if fresh {
		// Nothing is left behind by a source that is refused; the options
		// are saved first, so that a kill in this stage resumes too.
		if _, err := os.Stat(o.Out); err == nil {
			fresh = false
		}
		if err := os.MkdirAll(o.Out, 0o755); err != nil {
			return nil, err
		}
		js, err := json.MarshalIndent(o, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := atomicfile.WriteBytes(filepath.Join(o.Out, compressFile), append(js, '\n')); err != nil {
			return nil, err
		}
	}
	c.quiet = true
	rec, err := c.stage("source", args, false, &imp)
	c.quiet = false
	if err == nil {
		err = checkSource(o, imp)
	}
	if err != nil {
		switch {
		case fresh:
			_ = os.RemoveAll(o.Out)
		case !o.Resume:
			_ = os.Remove(filepath.Join(o.Out, compressFile))
		}
		return nil, err
	}
	_, _ = c.stderr.Write(rec.held)
	rep.Data, rep.SourceAccuracy = imp.Data, imp.Accuracy
	acc := imp.Accuracy
	srcFLOPs := flopsOf(imp.Config)
	rep.Stages = append(rep.Stages, compressStage{Name: "source", Command: rec.Command, Accuracy: &acc, FLOPs: srcFLOPs,
		Params: imp.Params, Cycles: cycles(src), Seconds: rec.Seconds, PeakRSSBytes: rec.PeakRSSBytes})

	// 2. taylor: conversion by distillation from the source.
	student := src
	if o.KeepSoftmax {
		c.n++
		fmt.Fprintf(c.stderr, "stage %d/%d taylor: skipped (--keep-softmax)\n", c.n, compressStages)
		rep.Stages = append(rep.Stages, compressStage{Name: "taylor", Skipped: true})
	} else {
		dir := filepath.Join(o.Out, "taylor")
		var tr pipeline.TrainReport
		rec, err := c.stage("taylor", []string{"train", "--init", src, "--attention", "taylor", "--teacher", src,
			"--epochs", fmt.Sprint(o.TaylorEpochs), "--seed", fmt.Sprint(o.Seed), "--out", dir}, true, &tr)
		if err != nil {
			return nil, err
		}
		student = filepath.Join(dir, training.ModelFile)
		acc := tr.TestAccuracy
		rep.Stages = append(rep.Stages, compressStage{Name: "taylor", Command: rec.Command, Accuracy: &acc, FLOPs: tr.FLOPsPerImage,
			Params: tr.Params, Cycles: cycles(student), Seconds: rec.Seconds, PeakRSSBytes: rec.PeakRSSBytes})
	}

	// 3. prune: to the target, under distillation from the source.
	dir := filepath.Join(o.Out, "prune")
	args = []string{"prune", "--teacher", src, "--init", student, "--hw-batch", fmt.Sprint(o.Batch),
		"--epochs", fmt.Sprint(o.PruneEpochs), "--seed", fmt.Sprint(o.Seed), "--out", dir}
	if o.TargetFLOPs > 0 {
		args = append(args, "--target-flops", fmt.Sprint(o.TargetFLOPs))
	} else {
		args = append(args, "--target-speedup", fmt.Sprint(o.TargetSpeedup))
	}
	if o.HW != "" {
		args = append(args, "--hw", o.HW)
	}
	if o.Int8Weights {
		args = append(args, "--int8-weights")
	}
	var pr pipeline.PruneReport
	rec, err = c.stage("prune", args, true, &pr)
	if err != nil {
		return nil, err
	}
	pruned := filepath.Join(dir, training.ModelFile)
	prAcc := pr.PrunedAccuracy
	rep.Stages = append(rep.Stages, compressStage{Name: "prune", Command: rec.Command, Accuracy: &prAcc, FLOPs: pr.FLOPsAfter,
		Params: pr.ParamsAfter, Cycles: pr.CyclesAfter, Seconds: rec.Seconds, PeakRSSBytes: rec.PeakRSSBytes})
	rep.FinalFloatAccuracy = pr.PrunedAccuracy
	rep.FLOPsReduction = float64(srcFLOPs) / float64(pr.FLOPsAfter)
	rep.ParamsCompression = float64(imp.Params) / float64(pr.ParamsAfter)
	rep.ModelledSpeedup = pr.ModelledSpeedup
	if o.Batch > 1 {
		rep.ModelledSpeedupLatency = pr.ModelledSpeedupLatency
	}

	// 4. export: the pruned model, and the source on the same hardware and
	// batch for the simulator's comparison.
	bundleDir := filepath.Join(o.Out, "export", "bundle")
	sourceBundle := filepath.Join(o.Out, "source-bundle", "bundle")
	var ex exportReport
	rec, err = c.stage("export", []string{"export", "--checkpoint", pruned, "--out", bundleDir, "--act-bits", o.ActBits}, false, &ex)
	if err != nil {
		return nil, err
	}
	exportSeconds, exportPeak := rec.Seconds, rec.PeakRSSBytes
	compare := ""
	args = []string{"export", "--checkpoint", src, "--out", sourceBundle, "--batch", fmt.Sprint(o.Batch), "--act-bits", "8"}
	if o.HW != "" {
		args = append(args, "--hw", o.HW)
	}
	var srcEx exportReport
	if rec, err := c.stage("source-bundle", args, false, &srcEx); err == nil {
		compare = sourceBundle
		exportSeconds += rec.Seconds
		exportPeak = max(exportPeak, rec.PeakRSSBytes)
	} else if c.ctx.Err() != nil {
		return nil, err
	} else {
		fmt.Fprintf(c.stderr, "vitc: no simulated speed-up: the source's bundle: %v\n", err)
	}
	rep.Bundle, rep.ActBits = bundleDir, ex.ActBits
	rep.Stages = append(rep.Stages, compressStage{Name: "export", Command: "vitc " + shellJoin([]string{"export", "--checkpoint", pruned, "--out", bundleDir, "--act-bits", o.ActBits}),
		FLOPs: pr.FLOPsAfter, Params: pr.ParamsAfter, Seconds: exportSeconds, PeakRSSBytes: exportPeak})

	// 5. sim: the bundle on the whole test split.
	args = []string{"sim", "--bundle", bundleDir}
	if compare != "" {
		args = append(args, "--compare", compare)
	}
	if o.HW != "" {
		args = append(args, "--hw", o.HW)
	}
	var sr simReport
	rec, err = c.stage("sim", args, false, &sr)
	if err != nil {
		return nil, err
	}
	intAcc := sr.AccuracyInt
	rep.Stages = append(rep.Stages, compressStage{Name: "sim", Command: rec.Command, Accuracy: &intAcc, FLOPs: pr.FLOPsAfter,
		Params: pr.ParamsAfter, Cycles: sr.Cycles, Seconds: rec.Seconds, PeakRSSBytes: rec.PeakRSSBytes})
	rep.FinalAccuracy, rep.Top1Agreement, rep.SimulatedSpeedup = sr.AccuracyInt, sr.Top1Agreement, sr.SpeedupVsOther
	rep.AccuracyDrop = 100 * (rep.SourceAccuracy - rep.FinalAccuracy)
	if o.MaxDrop >= 0 {
		passed := rep.AccuracyDrop <= o.MaxDrop
		rep.MaxDrop, rep.Passed = &o.MaxDrop, &passed
	}
	for _, s := range rep.Stages {
		rep.TotalSeconds += s.Seconds
	}
	if err := writeCompressReport(o.Out, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// checkSource refuses a source compress cannot start from: no data, not a
// dense softmax model, or near chance on its data (read wrongly, most
// likely: every later stage would distil from it).
func checkSource(o *compressOptions, imp importReport) error {
	switch {
	case imp.Data == "":
		return fmt.Errorf("--from %s records no data: pass --data SPEC", o.From)
	case imp.Config.Attention != "softmax" || imp.Config.LayerHeads != nil || len(imp.Config.TokenLayers) > 0:
		return fmt.Errorf("--from %s is not a dense softmax model (%s attention, pruned: %v): compress starts from one", o.From, imp.Config.Attention,
			imp.Config.LayerHeads != nil || len(imp.Config.TokenLayers) > 0)
	case imp.Config.DistToken:
		return fmt.Errorf("--from %s is a DeiT with a distillation token: compress prunes tokens and writes an int8 bundle, which have one class token (docs/formats.md)", o.From)
	}
	if chance := 1 / float64(imp.Config.Classes); imp.Accuracy < chance+(1-chance)/10 {
		return fmt.Errorf("--from %s scores %.2f%% on the test split of %s, near chance (%.1f%%): it is probably read wrongly: say what its tensors cannot with --heads, --ln-eps and --mean/--std (see vitc inspect)",
			o.From, 100*imp.Accuracy, imp.Data, 100*chance)
	}
	return nil
}

// readArgs are the read flags a stage passes on for a bare source file.
func readArgs(heads int, eps float64, mean, std []float32) []string {
	var args []string
	if heads != 0 {
		args = append(args, "--heads", fmt.Sprint(heads))
	}
	if eps != 0 {
		args = append(args, "--ln-eps", strconv.FormatFloat(eps, 'g', -1, 64))
	}
	if mean != nil {
		args = append(args, "--mean", float32s(mean), "--std", float32s(std))
	}
	return args
}

func float32s(v []float32) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatFloat(float64(x), 'g', -1, 32)
	}
	return strings.Join(parts, ",")
}

// flopsOf is a dense model's FLOPs per image.
func flopsOf(cfg vit.Config) int64 {
	m, err := vit.New(cfg, 0)
	if err != nil {
		return 0
	}
	return m.FLOPs()
}

// shellJoin quotes args for a command line a person can paste.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

func writeCompressReport(dir string, rep *compressReport) error {
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, "report.json"), append(js, '\n')); err != nil {
		return err
	}
	var bars []figures.StageBar
	for _, s := range rep.Stages {
		if s.Skipped {
			continue
		}
		b := figures.StageBar{Name: s.Name, Accuracy: math.NaN(), FLOPs: float64(s.FLOPs), Cycles: float64(s.Cycles)}
		if s.Accuracy != nil {
			b.Accuracy = *s.Accuracy
		}
		bars = append(bars, b)
	}
	title := fmt.Sprintf("%s on %s: %.2f× fewer FLOPs, %.2f× modelled speed-up on %s at batch %d, %+.2f points",
		filepath.Base(rep.Source), rep.Data, rep.FLOPsReduction, rep.ModelledSpeedup, rep.HW, rep.Batch, -rep.AccuracyDrop)
	return figures.WriteStages(filepath.Join(dir, "compress.png"), title, bars)
}

func printCompress(w io.Writer, r *compressReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "stage\taccuracy\tFLOPs/image\tparams\tcycles/image\ttime\tpeak RSS\t\n")
	for _, s := range r.Stages {
		if s.Skipped {
			fmt.Fprintf(tw, "%s\tskipped\t\t\t\t\t\t\n", s.Name)
			continue
		}
		peak := "-"
		if s.PeakRSSBytes > 0 {
			peak = fmt.Sprintf("%.0f MiB", float64(s.PeakRSSBytes)/(1<<20))
		}
		acc := "-"
		if s.Accuracy != nil {
			acc = fmt.Sprintf("%.2f%%", 100**s.Accuracy)
		}
		cy := "-"
		if s.Cycles > 0 {
			cy = fmt.Sprint(s.Cycles)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.3g\t%d\t%s\t%.1fs\t%s\t\n", s.Name, acc, float64(s.FLOPs), s.Params, cy, s.Seconds, peak)
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%s on %s, against the source (dense softmax): %.2f%% → %.2f%% (int%d bundle; %.2f%% float), %+.2f points; %.2f× fewer FLOPs, %.2f× fewer parameters\n",
		r.Source, r.Data, 100*r.SourceAccuracy, 100*r.FinalAccuracy, r.ActBits, 100*r.FinalFloatAccuracy, -r.AccuracyDrop, r.FLOPsReduction, r.ParamsCompression)
	fmt.Fprintf(w, "modelled speed-up on %s at batch %d: %.2f×", r.HW, r.Batch, r.ModelledSpeedup)
	if r.ModelledSpeedupLatency > 0 {
		fmt.Fprintf(w, " (%.2f× at batch 1)", r.ModelledSpeedupLatency)
	}
	if r.SimulatedSpeedup > 0 {
		fmt.Fprintf(w, "; simulated %.2f× against the source's int8 bundle", r.SimulatedSpeedup)
	}
	if r.ActBits == 16 {
		fmt.Fprintf(w, " (the modelled figures are for int8 activations; --act-bits auto chose 16 bits, which the simulated one includes)")
	}
	fmt.Fprintf(w, "\ntop-1 agreement of the bundle with its float model: %.2f%%; bundle %s\n", 100*r.Top1Agreement, r.Bundle)
}
