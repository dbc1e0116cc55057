package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"vitc/autograd"
	"vitc/blockprune"
	"vitc/datasets"
	"vitc/export/hw"
	"vitc/internal/atomicfile"
	"vitc/internal/figures"
	"vitc/internal/rss"
	"vitc/vit"
	"vitc/vit/training"
	"vitc/vit/weightquant"
)

// Outcome is what a finished run reports; exactly one of the reports is set.
type Outcome struct {
	Dir   string
	Train *TrainReport
	Prune *PruneReport
}

// TrainReport is report.json of a training run.
type TrainReport struct {
	TestAccuracy   float64 `json:"test_accuracy"`
	TestTop5       float64 `json:"test_top5,omitempty"`
	ChanceAccuracy float64 `json:"chance_accuracy"`
	TrainSeconds   float64 `json:"train_seconds"`
	Epochs         int     `json:"epochs"`
	Params         int     `json:"params"`
	// TrainableParams leaves out frozen parameters (freeze, linear probe).
	TrainableParams int        `json:"trainable_params"`
	FLOPsPerImage   int64      `json:"flops_per_image"`
	TrainImgPerSec  float64    `json:"train_img_per_s"`
	Data            string     `json:"data"`
	Seed            int64      `json:"seed"`
	Config          vit.Config `json:"config"`
	BLAS            string     `json:"blas"`
	// Engine ran the forward and backward passes (training.Options.Engine).
	Engine        string `json:"engine"`
	Checkpoint    string `json:"checkpoint"`
	SkippedImages int    `json:"skipped_images,omitempty"` // undecodable files left out (skip bad images)
	// Mirrored says augmentation flipped images (the data's claim under
	// the data options' flip setting).
	Mirrored bool `json:"mirrored"`
	// Recipe and Options are the settings the run trained with: the
	// recipe's, less what flags overrode.
	Recipe  string           `json:"recipe,omitempty"`
	Options training.Options `json:"options"`
	// Distill is the distillation (teacher, how it was read, α, T) and
	// TeacherAccuracy the teacher's on the test split, when the run had
	// a teacher.
	Distill         *Distill `json:"distill,omitempty"`
	TeacherAccuracy float64  `json:"teacher_accuracy,omitempty"`
	// PeakRSSBytes is the process's peak resident memory when the report
	// was written (rss.Peak; of the process that finished the run, so a
	// resumed run's is that of its last part).
	PeakRSSBytes int64 `json:"peak_rss_bytes,omitempty"`
}

// PruneReport is report.json of a pruning run.
type PruneReport struct {
	TeacherAccuracy float64 `json:"teacher_accuracy"`
	PrunedAccuracy  float64 `json:"pruned_accuracy"`
	AccuracyDrop    float64 `json:"accuracy_drop_points"`
	// Baseline names what every ratio below is against (FLOPsBefore,
	// ParamsBefore, the cycles): the dense softmax model of the teacher's
	// shape, the model a user starts from, whatever attention the teacher
	// has. FLOPsTeacher and FLOPsReductionVsTeacher compare with the
	// teacher itself (a Taylor teacher has fewer FLOPs).
	Baseline                string             `json:"baseline"`
	FLOPsBefore             int64              `json:"flops_before"`
	FLOPsAfter              int64              `json:"flops_after"`
	FLOPsReduction          float64            `json:"flops_reduction"`
	FLOPsTeacher            int64              `json:"flops_teacher"`
	FLOPsReductionVsTeacher float64            `json:"flops_reduction_vs_teacher"`
	ParamsBefore            int                `json:"params_before"`
	ParamsAfter             int                `json:"params_after"` // non-zero: stored minus pruned blocks
	ParamsStored            int                `json:"params_stored"`
	Density                 map[string]float64 `json:"density"`
	HeadsRemoved            []int              `json:"heads_removed"`
	MLPUnitsKept            []int              `json:"mlp_units_kept"`
	TokensPerLayer          []int              `json:"mean_kept_tokens"` // tokens each block's MLP sees
	TokenKeep               float64            `json:"token_keep"`
	TokenLayers             []int              `json:"token_layers"`
	Attention               string             `json:"attention"`
	Engine                  string             `json:"engine"`
	TrainSeconds            float64            `json:"train_seconds"`
	Epochs                  int                `json:"epochs"`
	Data                    string             `json:"data"`
	Seed                    int64              `json:"seed"`
	Checkpoint              string             `json:"checkpoint"`
	MaxDrop                 *float64           `json:"max_drop,omitempty"`
	Passed                  *bool              `json:"passed,omitempty"`
	// Int8Weights says the checkpoint's weights lie on the exporter's int8
	// grid (Prune.Int8WeightsFrom): the accuracy above is the model's with
	// them.
	Int8Weights bool `json:"int8_weights,omitempty"`
	// ParamsCompression is ParamsBefore / ParamsAfter.
	ParamsCompression float64 `json:"params_compression"`
	// The cycle model's count for the pruned model (its real block masks)
	// and for the dense softmax model of the teacher's shape, on HW.
	// CyclesBefore, CyclesAfter and ModelledSpeedup are per image at the
	// throughput setting HWBatch (images per load of the weights, run in
	// lockstep groups); the Latency ones at batch 1, one image at a time.
	CyclesBefore           int64   `json:"cycles_dense_softmax,omitempty"`
	CyclesAfter            int64   `json:"cycles,omitempty"`
	ModelledSpeedup        float64 `json:"modelled_speedup,omitempty"`
	HWBatch                int     `json:"hw_batch,omitempty"`
	CyclesLatencyBefore    int64   `json:"cycles_dense_softmax_latency,omitempty"`
	CyclesLatencyAfter     int64   `json:"cycles_latency,omitempty"`
	ModelledSpeedupLatency float64 `json:"modelled_speedup_latency,omitempty"`
	HW                     string  `json:"hw,omitempty"`
	CyclesError            string  `json:"cycles_error,omitempty"` // why there is no cycle count
	// Plan is what a pruning target chose, with its predictions.
	Plan *PrunePlan `json:"plan,omitempty"`
	// The settings the run trained with: the recipe and its options (lr,
	// batch, augmentation, ...), the distillation (teacher, how it was
	// read, α, T), and whether augmentation mirrored images.
	Recipe   string           `json:"recipe,omitempty"`
	Options  training.Options `json:"options"`
	Distill  *Distill         `json:"distill"`
	Mirrored bool             `json:"mirrored"`
	// PeakRSSBytes is as TrainReport's.
	PeakRSSBytes int64 `json:"peak_rss_bytes,omitempty"`
}

// BaselineDenseSoftmax is the one baseline of every ratio vitc reports for
// a pruned model.
const BaselineDenseSoftmax = "the dense softmax model of the teacher's shape"

// Job is a run built from a Spec and ready to train in its directory.
type Job struct {
	Spec Spec
	Run  *training.Run
	// Resumed says the job continues a saved state.
	Resumed bool
	// Teacher is the distillation teacher's score before training (a
	// fresh run with a teacher; nil otherwise).
	Teacher *TeacherCheck
	// Log, when set, receives the lines a run prints as it goes (the
	// closed loop's hold).
	Log io.Writer

	parts *parts
}

// New builds a fresh job of spec on ds (nil: loaded from spec.Train.Data).
func New(spec Spec, ds *datasets.Dataset) (*Job, error) {
	if ds == nil {
		var err error
		if ds, err = datasets.LoadWith(spec.Train.Data, spec.Train.Seed, spec.Train.DataOptions); err != nil {
			return nil, err
		}
	}
	r, p, err := build(spec, ds, nil)
	if err != nil {
		return nil, err
	}
	j := &Job{Spec: spec, Run: r, parts: p}
	if d := spec.Plan.Distill; d != nil {
		if j.Teacher, err = checkTeacher(d, p, r); err != nil {
			return nil, err
		}
	}
	return j, nil
}

// Open rebuilds the job saved in dir with its saved options and plan, at
// the point where it stopped.
func Open(dir string) (*Job, error) {
	saved, err := training.ReadSaved(dir)
	if err != nil {
		return nil, err
	}
	spec, err := SavedSpec(saved)
	if err != nil {
		return nil, err
	}
	ds, err := datasets.LoadWith(spec.Train.Data, spec.Train.Seed, spec.Train.DataOptions)
	if err != nil {
		return nil, err
	}
	r, p, err := build(spec, ds, saved)
	if err != nil {
		return nil, err
	}
	return &Job{Spec: spec, Run: r, Resumed: true, parts: p}, nil
}

// SavedSpec is the spec a saved state was written by.
func SavedSpec(saved *training.Saved) (Spec, error) {
	var plan Plan
	if err := json.Unmarshal(saved.Plan, &plan); err != nil {
		return Spec{}, fmt.Errorf("saved run: bad plan: %v", err)
	}
	return Spec{Train: saved.Options, Plan: plan}, nil
}

// Train trains the job in dir, saving its state as it goes (so Open(dir)
// continues it after an interrupt, training.ErrInterrupted, or a kill), and
// writes its outputs.
func (j *Job) Train(ctx context.Context, dir string, progress training.Progress) (*Outcome, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	training.RemoveStaleTemps(dir)
	r := j.Run
	save, err := training.DirSaver(dir, r, j.Spec.Plan, j.Spec.Plan.Kind == KindTrain)
	if err != nil {
		return nil, err
	}
	r.Save, r.Progress = save, progress
	if j.parts != nil && j.parts.loop != nil {
		j.parts.loop.log = j.Log
	}
	res, err := r.Train(ctx)
	if err != nil {
		return nil, err
	}
	if j.Spec.Plan.Kind == KindPrune {
		rep, err := finishPrune(j.Spec, r, j.parts, res, dir)
		return &Outcome{Dir: dir, Prune: rep}, err
	}
	rep, err := finishTrain(j.Spec, r, j.parts, res, dir)
	return &Outcome{Dir: dir, Train: rep}, err
}

func finishTrain(spec Spec, r *training.Run, p *parts, res training.Result, dir string) (*TrainReport, error) {
	m := r.Model
	rep := &TrainReport{
		TestAccuracy: res.Test.Accuracy, TestTop5: res.Test.Top5, ChanceAccuracy: 1 / float64(m.Classes),
		TrainSeconds: res.TrainSeconds, Epochs: r.Opts.Epochs, Params: m.Params.Count(),
		FLOPsPerImage: m.FLOPs(), Data: r.Opts.Data, Seed: r.Opts.Seed, Config: m.Config,
		BLAS: autograd.BLASName(), Checkpoint: filepath.Join(dir, training.ModelFile), SkippedImages: r.Data.Skipped,
		Recipe: r.Opts.Recipe, Options: r.Opts, Engine: engineName(r), Mirrored: r.Opts.Augment && r.Data.FlipOK,
	}
	for _, p := range m.Params.List() {
		if p.LRScale != 0 {
			rep.TrainableParams += p.Len()
		}
	}
	if d := spec.Plan.Distill; d != nil {
		rep.Distill = d
		rep.TeacherAccuracy = evaluateTeacher(p, r.TestLoader()).Accuracy
	}
	if res.TrainSeconds > 0 {
		perEpoch := r.Data.Train.Len()
		if r.Opts.MaxSteps > 0 {
			perEpoch = min(perEpoch, r.Opts.MaxSteps*r.Opts.Batch)
		}
		rep.TrainImgPerSec = float64(len(res.History)*perEpoch) / res.TrainSeconds
	}
	rep.PeakRSSBytes, _ = rss.Peak()
	return rep, writeReport(dir, rep, res.History, fmt.Sprintf("%s on %s", m.Attention, r.Opts.Data))
}

func engineName(r *training.Run) string {
	if r.Engine == nil {
		return training.Native{}.Name()
	}
	return r.Engine.Name()
}

// finishPrune compacts the model with the masks the last step trained with,
// evaluates it against the teacher and writes the model, report and figures.
func finishPrune(spec Spec, r *training.Run, p *parts, res training.Result, dir string) (*PruneReport, error) {
	compact, ext, err := p.pruner.Compact()
	if err != nil {
		return nil, err
	}
	compact.TokenKeep = p.keep.Final() // the plan's, or where the closed loop held it
	int8w := spec.Plan.Prune.Int8WeightsFrom > 0
	if int8w {
		weightquant.Snap(compact.Params.List())
	}
	raw, err := json.Marshal(ext)
	if err != nil {
		return nil, err
	}
	meta := r.Meta
	meta.Extensions = map[string]json.RawMessage{blockprune.ExtensionKey: raw}
	// The hardware and batch the report's speed-ups are for, so that the
	// export states the same ones unless told otherwise.
	target, err := json.Marshal(hw.Target{HW: targetHW(spec.Plan.Prune), Batch: max(spec.Plan.Prune.HWBatch, 1)})
	if err != nil {
		return nil, err
	}
	meta.Extensions[hw.TargetExtension] = target
	test := r.TestLoader()
	pruned := vit.Evaluate(compact, test)
	tm := p.teacher.Model()
	teacherEval := evaluateTeacher(p, test)
	ckpt := filepath.Join(dir, training.ModelFile)
	meta.TestAccuracy = pruned.Accuracy
	if err := compact.Save(ckpt, meta); err != nil {
		return nil, err
	}
	st := p.pruner.Stats()
	pr := spec.Plan.Prune
	rep := &PruneReport{
		TeacherAccuracy: teacherEval.Accuracy, PrunedAccuracy: pruned.Accuracy,
		AccuracyDrop: 100 * (teacherEval.Accuracy - pruned.Accuracy),
		Baseline:     BaselineDenseSoftmax,
		FLOPsBefore:  denseSoftmax(tm.Config).FLOPs(), FLOPsAfter: compact.SparseFLOPs(ext.DensityOf), FLOPsTeacher: tm.FLOPs(),
		ParamsBefore: tm.Params.Count(), ParamsStored: compact.Params.Count(),
		Density: st.Density, HeadsRemoved: st.HeadsRemoved, MLPUnitsKept: st.MLPKept,
		TokenKeep: compact.TokenKeep, TokenLayers: compact.TokenLayers, Attention: compact.Attention,
		TrainSeconds: res.TrainSeconds, Epochs: r.Opts.Epochs, Data: r.Opts.Data, Seed: r.Opts.Seed, Checkpoint: ckpt,
		Engine: engineName(r), Int8Weights: int8w,
		Recipe: r.Opts.Recipe, Options: r.Opts, Distill: spec.Plan.Distill, Mirrored: r.Opts.Augment && r.Data.FlipOK,
	}
	rep.ParamsAfter = rep.ParamsStored - ext.PrunedValues()
	rep.FLOPsReduction = float64(rep.FLOPsBefore) / float64(rep.FLOPsAfter)
	rep.FLOPsReductionVsTeacher = float64(rep.FLOPsTeacher) / float64(rep.FLOPsAfter)
	rep.ParamsCompression = float64(rep.ParamsBefore) / float64(rep.ParamsAfter)
	rep.Plan = pr.Target
	if p.loop != nil {
		rep.Plan = p.loop.result()
	}
	modelSpeedup(rep, pr, tm.Config, compact)
	for i := 0; i < compact.Depth; i++ {
		_, n := compact.TokensAt(i)
		rep.TokensPerLayer = append(rep.TokensPerLayer, n)
	}
	if pr.MaxDrop >= 0 {
		passed := rep.AccuracyDrop <= pr.MaxDrop
		rep.MaxDrop, rep.Passed = &pr.MaxDrop, &passed
	}
	rep.PeakRSSBytes, _ = rss.Peak()
	if err := writeReport(dir, rep, res.History, "pruning on "+r.Opts.Data, figures.Reference{Label: "teacher", Accuracy: rep.TeacherAccuracy}); err != nil {
		return nil, err
	}
	var panels []figures.MaskPanel
	for _, g := range p.pruner.MaskGrids() {
		panels = append(panels, figures.MaskPanel(g))
	}
	if err := figures.WriteMaskHeatmaps(filepath.Join(dir, "masks.png"),
		fmt.Sprintf("kept weight blocks and MLP neurons (target density %.3g)", p.pruner.Target()), panels); err != nil {
		return nil, err
	}
	return rep, writeKeptTokens(filepath.Join(dir, "kept_tokens.png"), compact, r)
}

// targetHW is the accelerator a pruning run states its speed-ups for.
func targetHW(pr *Prune) hw.Config {
	if pr.HW != nil {
		return *pr.HW
	}
	return hw.Default()
}

// modelSpeedup puts the cycle model's speed-up of the pruned model against
// the dense softmax model of the teacher's shape into rep. A model the
// hardware cannot hold is no reason to lose the run: the report says why
// instead.
func modelSpeedup(rep *PruneReport, pr *Prune, teacher vit.Config, pruned *vit.Model) {
	h := targetHW(pr)
	rep.HW = h.Name
	rep.HWBatch = max(pr.HWBatch, 1)
	pair := func(batch int) (before, after int64, err error) {
		if before, err = structureCycles(denseSoftmax(teacher), pr.Blocks.Block, 1, h, batch); err == nil {
			after, err = ModelledCycles(pruned, h, batch)
		}
		return before, after, err
	}
	var err error
	rep.CyclesLatencyBefore, rep.CyclesLatencyAfter, err = pair(1)
	if err == nil {
		rep.CyclesBefore, rep.CyclesAfter = rep.CyclesLatencyBefore, rep.CyclesLatencyAfter
		if rep.HWBatch > 1 {
			rep.CyclesBefore, rep.CyclesAfter, err = pair(rep.HWBatch)
		}
	}
	if err != nil {
		rep.CyclesError = err.Error()
		return
	}
	rep.ModelledSpeedup = float64(rep.CyclesBefore) / float64(rep.CyclesAfter)
	rep.ModelledSpeedupLatency = float64(rep.CyclesLatencyBefore) / float64(rep.CyclesLatencyAfter)
}

// evaluateTeacher scores the teacher on the test split, fed the way it was
// trained (its own normalisation), as it was during distillation.
func evaluateTeacher(p *parts, test *datasets.Loader) vit.EvalResult {
	return vit.EvaluateWith(p.teacher.Model(), test, p.teacher.Input)
}

// writeReport writes a run's report.json and its curves.png, with refs
// drawn across the accuracy panel.
func writeReport(dir string, rep any, history []training.EpochMetrics, title string, refs ...figures.Reference) error {
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, "report.json"), append(js, '\n')); err != nil {
		return err
	}
	pts := make([]figures.Point, len(history))
	for i, h := range history {
		pts[i] = figures.Point{Epoch: h.Epoch, TrainLoss: h.TrainLoss, TestLoss: h.TestLoss, TrainAcc: h.TrainAcc, TestAcc: h.TestAcc}
	}
	return figures.WriteCurves(filepath.Join(dir, "curves.png"), title, pts, refs...)
}

// keptRecorder collects each token-pruning stage's kept indices.
type keptRecorder struct{ stages [][][]int }

func (k *keptRecorder) KeptTokens(_ int, kept [][]int) { k.stages = append(k.stages, kept) }

// writeKeptTokens draws the first test images with the patches each token
// pruning stage keeps.
func writeKeptTokens(path string, m *vit.Model, r *training.Run) error {
	if len(m.TokenLayers) == 0 || m.TokenKeep >= 1 {
		return nil
	}
	return figures.WriteKeptTokens(path, keptImages(m, r))
}

// keptImages runs the first test images through m, recording what each
// token-pruning stage keeps.
func keptImages(m *vit.Model, r *training.Run) []figures.KeptImage {
	x, y, n := r.TestLoader().Batch(0, 0)
	n = min(n, 6)
	chw := m.Channels * m.Image * m.Image
	rec := &keptRecorder{}
	m.ForwardPass(&vit.Pass{Tape: autograd.NewTape(false), Kept: []vit.KeptObserver{rec}},
		autograd.FromData(x[:n*chw], n, m.Channels, m.Image, m.Image))
	names := r.Meta.ClassNames
	var blocks []int
	for l := 0; l < m.Depth; l++ {
		if m.PrunesTokens(l) {
			blocks = append(blocks, l)
		}
	}
	images := make([]figures.KeptImage, n)
	for i := range images {
		kept := make([][]int, len(rec.stages))
		for l := range rec.stages {
			kept[l] = rec.stages[l][i]
		}
		label := fmt.Sprint(y[i])
		if y[i] < len(names) {
			label = names[y[i]]
		}
		images[i] = figures.KeptImage{Pixels: x[i*chw : (i+1)*chw], Channels: m.Channels, Size: m.Image,
			Patch: m.Patch, Kept: kept, Label: label, Blocks: blocks}
	}
	return images
}
