package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"vitc/autograd"
	"vitc/blockprune"
	"vitc/datasets"
	"vitc/distill"
	"vitc/tokenprune"
	"vitc/vit"
)

// pruneOptions are `vitc prune`'s flags.
type pruneOptions struct {
	Teacher, Init, Data, Out string
	Block                    int
	Density                  float64
	TokenKeep                float64
	TokenLayers              []int
	Epochs, Batch            int
	LR, KDAlpha, KDTemp      float64
	Seed                     int64
	MaxDrop                  float64
	JSON                     bool
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
1 when the accuracy drop against the teacher exceeds it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPrune(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	d := blockprune.DefaultOptions
	f.StringVar(&o.Teacher, "teacher", "", "the trained dense model (frozen; distillation teacher and the accuracy reference)")
	f.StringVar(&o.Init, "init", "", "start the student from this checkpoint (e.g. a Taylor model); default the teacher")
	f.StringVar(&o.Data, "data", "", "data (default: the teacher's, from its checkpoint)")
	f.IntVar(&o.Block, "block", d.Block, "block side b of the weight blocks (must divide the head dimension)")
	f.Float64Var(&o.Density, "density", d.Density, "fraction of attention weight blocks and MLP neurons kept")
	f.Float64Var(&o.TokenKeep, "token-keep", 0.7, "fraction of patch tokens kept at each token-pruning layer (1: no token pruning)")
	f.IntSliceVar(&o.TokenLayers, "token-layers", nil, "blocks after whose attention tokens are pruned (default: 2, 6, 9 of 12, scaled to the depth)")
	f.IntVar(&o.Epochs, "epochs", 10, "training epochs")
	f.IntVar(&o.Batch, "batch", 32, "batch size")
	f.Float64Var(&o.LR, "lr", 1e-3, "peak learning rate")
	f.Float64Var(&o.KDAlpha, "kd-alpha", 0.9, "distillation: weight of the KL term")
	f.Float64Var(&o.KDTemp, "kd-temp", 2, "distillation: temperature")
	f.Int64Var(&o.Seed, "seed", 0, "seed for data order and augmentation")
	f.StringVar(&o.Out, "out", "", "output directory (default runs/prune-<teacher name>)")
	f.Float64Var(&o.MaxDrop, "max-drop", -1, "fail (exit 1) when accuracy drops by more than this many points (negative: no gate)")
	f.BoolVar(&o.JSON, "json", false, "print the report as JSON on stdout")
	_ = cmd.MarkFlagRequired("teacher")
	return cmd
}

// pruneReport is report.json of a prune run.
type pruneReport struct {
	TeacherAccuracy float64            `json:"teacher_accuracy"`
	PrunedAccuracy  float64            `json:"pruned_accuracy"`
	AccuracyDrop    float64            `json:"accuracy_drop_points"`
	FLOPsBefore     int64              `json:"flops_before"`
	FLOPsAfter      int64              `json:"flops_after"`
	FLOPsReduction  float64            `json:"flops_reduction"`
	ParamsBefore    int                `json:"params_before"`
	ParamsAfter     int                `json:"params_after"` // non-zero: stored minus pruned blocks
	ParamsStored    int                `json:"params_stored"`
	Density         map[string]float64 `json:"density"`
	HeadsRemoved    []int              `json:"heads_removed"`
	MLPUnitsKept    []int              `json:"mlp_units_kept"`
	TokensPerLayer  []int              `json:"mean_kept_tokens"` // tokens each block's MLP sees
	TokenKeep       float64            `json:"token_keep"`
	TokenLayers     []int              `json:"token_layers"`
	Attention       string             `json:"attention"`
	TrainSeconds    float64            `json:"train_seconds"`
	Epochs          int                `json:"epochs"`
	Data            string             `json:"data"`
	Seed            int64              `json:"seed"`
	Checkpoint      string             `json:"checkpoint"`
	MaxDrop         *float64           `json:"max_drop,omitempty"`
	Passed          *bool              `json:"passed,omitempty"`
}

func runPrune(ctx context.Context, o *pruneOptions, stdout, stderr io.Writer) error {
	teacher, tmeta, err := distill.LoadTeacher(o.Teacher, vit.LoadOptions{})
	if err != nil {
		return err
	}
	if o.Data == "" {
		if tmeta.Dataset == "" {
			return fmt.Errorf("teacher %s does not record its data: pass --data SPEC", o.Teacher)
		}
		o.Data = tmeta.Dataset
	}
	ds, err := datasets.Load(o.Data, o.Seed)
	if err != nil {
		return err
	}
	init := o.Init
	if init == "" {
		init = o.Teacher
	}
	start, _, err := vit.Load(init, vit.LoadOptions{})
	if err != nil {
		return err
	}
	cfg := start.Config
	if cfg.LayerHeads != nil || cfg.TokenLayers != nil {
		return fmt.Errorf("%s is already pruned: start from a dense model", init)
	}
	keep := tokenprune.DefaultSchedule(o.TokenKeep)
	if err := keep.Validate(); err != nil {
		return err
	}
	if math.IsNaN(o.MaxDrop) {
		return errors.New("--max-drop is not a number")
	}
	layers := o.TokenLayers
	if layers == nil {
		layers = tokenprune.Layers(cfg.Depth)
	}
	cfg.TokenKeep, cfg.TokenLayers = o.TokenKeep, layers
	if err := cfg.Validate(); err != nil {
		return err
	}
	bopts := blockprune.DefaultOptions
	bopts.Block, bopts.Density = o.Block, o.Density
	if err := bopts.Validate(cfg); err != nil {
		return err
	}

	run, err := vit.NewRun(vit.TrainOptions{
		Data: o.Data, Config: cfg, Epochs: o.Epochs, Batch: o.Batch, LR: o.LR, MinLR: 1e-5,
		WeightDecay: 0.05, WarmupEpochs: 0.05 * float64(o.Epochs), LabelSmoothing: 0.1, ClipNorm: 1,
		Augment: true, Seed: o.Seed, Init: init, Teacher: o.Teacher, KDAlpha: o.KDAlpha, KDTemp: o.KDTemp,
	}, ds)
	if err != nil {
		return err
	}
	if err := attachTeacher(run); err != nil {
		return err
	}
	pruner, err := blockprune.New(run.Model, bopts)
	if err != nil {
		return err
	}
	run.Hooks = append(run.Hooks, pruner, &keepRateHook{model: run.Model, schedule: keep})

	if o.Out == "" {
		base := filepath.Base(filepath.Dir(o.Teacher)) // runs/NAME/model.safetensors → NAME
		o.Out = filepath.Join("runs", "prune-"+base)
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return err
	}
	// The pruning state (scores, masks, schedule positions) is not in
	// vit's resumable state yet, so a prune run saves its metrics as it
	// goes and writes the model once, at the end.
	run.Save = func(s *vit.State) error { return vit.WriteMetrics(filepath.Join(o.Out, vit.MetricsFile), s.History) }
	run.Progress = newProgress(stderr)
	fmt.Fprintf(stderr, "pruning %s (%s attention, from %s) on %s: density %g in %d×%d blocks, token keep %g at blocks %v; writing %s\n",
		o.Teacher, cfg.Attention, init, o.Data, o.Density, o.Block, o.Block, o.TokenKeep, layers, o.Out)
	res, err := run.Train(ctx)
	if errors.Is(err, vit.ErrInterrupted) {
		return &exitError{code: exitInterrupted, err: errors.New("pruning interrupted (prune runs cannot be resumed yet: start again)")}
	}
	if err != nil {
		return err
	}

	// Final masks are the ones the last step trained with.
	compact, ext, err := pruner.Compact()
	if err != nil {
		return err
	}
	compact.TokenKeep = o.TokenKeep
	raw, err := json.Marshal(ext)
	if err != nil {
		return err
	}
	meta := run.Meta
	meta.Extensions = map[string]json.RawMessage{blockprune.ExtensionKey: raw}
	test := run.TestLoader()
	pruned := vit.Evaluate(compact, test)
	teacherEval := vit.Evaluate(teacher.Model(), test)
	ckpt := filepath.Join(o.Out, vit.ModelFile)
	if err := compact.Save(ckpt, meta); err != nil {
		return err
	}
	st := pruner.Stats()
	rep := pruneReport{
		TeacherAccuracy: teacherEval.Accuracy, PrunedAccuracy: pruned.Accuracy,
		AccuracyDrop: 100 * (teacherEval.Accuracy - pruned.Accuracy),
		FLOPsBefore:  teacher.Model().FLOPs(), FLOPsAfter: compact.SparseFLOPs(ext.DensityOf),
		ParamsBefore: teacher.Model().Params.Count(), ParamsStored: compact.Params.Count(),
		Density: st.Density, HeadsRemoved: st.HeadsRemoved, MLPUnitsKept: st.MLPKept,
		TokenKeep: o.TokenKeep, TokenLayers: layers, Attention: cfg.Attention,
		TrainSeconds: res.TrainSeconds, Epochs: o.Epochs, Data: o.Data, Seed: o.Seed, Checkpoint: ckpt,
	}
	rep.ParamsAfter = rep.ParamsStored - ext.PrunedValues()
	rep.FLOPsReduction = float64(rep.FLOPsBefore) / float64(rep.FLOPsAfter)
	for i := 0; i < compact.Depth; i++ {
		_, n := compact.TokensAt(i)
		rep.TokensPerLayer = append(rep.TokensPerLayer, n)
	}
	passed := true
	if o.MaxDrop >= 0 {
		passed = rep.AccuracyDrop <= o.MaxDrop
		rep.MaxDrop, rep.Passed = &o.MaxDrop, &passed
	}
	if err := writePruneOutputs(o.Out, rep, res, pruner, compact, run); err != nil {
		return err
	}
	if o.JSON {
		if err := printJSON(stdout, rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "teacher %.2f%% → pruned %.2f%% (drop %.2f points); %.2f× fewer FLOPs (%.3g → %.3g per image), %d → %d non-zero params; wrote %s\n",
			100*rep.TeacherAccuracy, 100*rep.PrunedAccuracy, rep.AccuracyDrop, rep.FLOPsReduction,
			float64(rep.FLOPsBefore), float64(rep.FLOPsAfter), rep.ParamsBefore, rep.ParamsAfter, o.Out)
	}
	if !passed {
		return &exitError{code: exitGate, err: fmt.Errorf("accuracy drop %.2f points exceeds --max-drop %g (teacher %.2f%%, pruned %.2f%%)",
			rep.AccuracyDrop, o.MaxDrop, 100*rep.TeacherAccuracy, 100*rep.PrunedAccuracy)}
	}
	return nil
}

// keepRateHook lowers the model's token keep rate along its schedule.
type keepRateHook struct {
	model    *vit.Model
	schedule tokenprune.Schedule
}

func (h *keepRateHook) BeforeStep(step, total int) { h.model.TokenKeep = h.schedule.At(step, total) }
func (h *keepRateHook) EpochMetrics() map[string]any {
	return map[string]any{"token_keep": h.model.TokenKeep}
}

func writePruneOutputs(dir string, rep pruneReport, res vit.Result, pruner *blockprune.Pruner, m *vit.Model, run *vit.Run) error {
	if _, err := writeReport(dir, rep, res.History, "pruning on "+run.Opts.Data); err != nil {
		return err
	}
	if err := blockprune.WriteMaskHeatmaps(filepath.Join(dir, "masks.png"),
		fmt.Sprintf("kept weight blocks and MLP neurons (target density %g)", pruner.Target()), pruner.MaskPanels()); err != nil {
		return err
	}
	return writeKeptTokens(filepath.Join(dir, "kept_tokens.png"), m, run)
}

// writeKeptTokens draws the first test images with the patches each token
// pruning stage keeps.
func writeKeptTokens(path string, m *vit.Model, run *vit.Run) error {
	if len(m.TokenLayers) == 0 || m.TokenKeep >= 1 {
		return nil
	}
	test := run.TestLoader()
	x, y, n := test.Batch(0, 0)
	n = min(n, 6)
	chw := m.Channels * m.Image * m.Image
	var stages [][][]int // per layer, per image
	m.TokensKept = func(_ int, kept [][]int) { stages = append(stages, kept) }
	defer func() { m.TokensKept = nil }()
	m.Forward(autograd.NewTape(false), autograd.FromData(x[:n*chw], n, m.Channels, m.Image, m.Image))
	names := className(run.Meta, run.Data, m.Classes)
	images := make([]tokenprune.KeptImage, n)
	for i := range images {
		kept := make([][]int, len(stages))
		for l := range stages {
			kept[l] = stages[l][i]
		}
		images[i] = tokenprune.KeptImage{Pixels: x[i*chw : (i+1)*chw], Channels: m.Channels, Size: m.Image,
			Patch: m.Patch, Kept: kept, Label: names[y[i]]}
	}
	return tokenprune.WriteKeptPNG(path, images)
}
