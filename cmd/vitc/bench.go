package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"runtime"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"vitc/autograd"
	"vitc/internal/rss"
	"vitc/taylorattn"
	"vitc/tokenprune"
	"vitc/vit"
	"vitc/vit/pipeline"
	"vitc/vit/training"
)

// benchOptions are `vitc bench`'s flags: whole-model throughput.
type benchOptions struct {
	architectureFlags
	Checkpoint string
	readFlags
	Batch, Steps, Warmup int
	Seed                 int64
	JSON                 bool
	CPUProfile           string
	Engine               string
	Recompute            bool
	Sparse               taylorattn.SparseOptions
	// TokenKeep and TokenLayers prune patch tokens as a pruned model does
	// (dynamic token pruning after those blocks' attention).
	TokenKeep   float64
	TokenLayers []int
}

// benchAttentionOptions are `vitc bench attention`'s flags: one attention
// layer, softmax against Taylor.
type benchAttentionOptions struct {
	Tokens                         []int
	HeadDim, Heads, Batch, Repeats int
	Seed                           int64
	JSON                           bool
}

func newBenchCmd() *cobra.Command {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure training and inference throughput of a model on random data",
		Long: `Time full training steps (forward, cross-entropy, backward, gradient
clipping, AdamW) and batched inference of a preset on random normalised
images, after a warm-up, and report images/s, the GFLOPS they imply, the
process's peak resident memory (after the training steps, and at the end)
and the most the training step's activations and gradients held at once.
--recompute recomputes each block in the backward pass (activation
checkpointing), as train and prune do with it. ` + "`vitc bench attention`" + ` compares one softmax
and one Taylor attention layer instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	o.architectureFlags.bind(f)
	f.StringVar(&o.Checkpoint, "checkpoint", "", "time this checkpoint's model instead of a preset (its architecture and weights; --heads then names a file's without vitc metadata)")
	o.readFlags.bind(f, false)
	f.IntVar(&o.Batch, "batch", 64, "images per step")
	f.IntVar(&o.Steps, "steps", 10, "timed training steps (and as many inference batches)")
	f.IntVar(&o.Warmup, "warmup", 2, "untimed steps first (and as many inference batches)")
	f.Int64Var(&o.Seed, "seed", 0, "seed for weights and the random batch")
	f.BoolVar(&o.JSON, "json", false, "print one JSON object")
	f.StringVar(&o.CPUProfile, "cpuprofile", "", "write a pprof CPU profile of the timed steps to this file")
	f.StringVar(&o.Engine, "engine", "native", "also time the training steps on this engine, side by side with the native engine's (gorgonia)")
	f.BoolVar(&o.Recompute, "recompute", false, "recompute each block in the backward pass instead of keeping its activations (less memory, about one more forward pass of time)")
	d := taylorattn.DefaultSparse
	f.Float64Var(&o.Sparse.Weight, "sparse-weight", 0, "Taylor attention: train with the sparse branch at this weight α (0: without it), as train does")
	f.Float64Var(&o.Sparse.Threshold, "sparse-threshold", d.Threshold, "Taylor attention: threshold θ of the sparse branch's predicted mask")
	f.Float64Var(&o.Sparse.Reg, "sparse-reg", d.Reg, "Taylor attention: weight λ of the sparse branch's mean|S| regulariser")
	f.StringVar(&o.Sparse.Formulation, "sparse-formulation", taylorattn.FormulationVitc, "Taylor attention: the sparse branch's formulation, vitc or vitality")
	f.Float64Var(&o.TokenKeep, "token-keep", 0, "keep this fraction of patch tokens after the --token-layers blocks' attention, as a token-pruned model does (0: no token pruning)")
	f.IntSliceVar(&o.TokenLayers, "token-layers", nil, "blocks (0-based) after whose attention --token-keep prunes tokens (default: the FCCM'24 positions scaled to the depth, as prune plans them)")
	cmd.AddCommand(newBenchAttentionCmd())
	return cmd
}

func newBenchAttentionCmd() *cobra.Command {
	o := &benchAttentionOptions{}
	cmd := &cobra.Command{
		Use:   "attention",
		Short: "Time one softmax and one Taylor attention layer's forward pass at several token counts",
		Long: `Time the inference forward pass of one attention layer on random packed
qkv (batch, tokens, 3·heads·head-dim), softmax and Taylor in the same binary,
after one warm-up pass, keeping the best of --repeats.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBenchAttention(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&o.Tokens, "tokens", []int{197, 785, 3137}, "token counts, comma-separated")
	f.IntVar(&o.HeadDim, "head-dim", 64, "per-head width")
	f.IntVar(&o.Heads, "heads", 1, "attention heads")
	f.IntVar(&o.Batch, "batch", 1, "batch size")
	f.IntVar(&o.Repeats, "repeats", 3, "timed passes per kind and token count; the fastest is kept")
	f.Int64Var(&o.Seed, "seed", 0, "seed for the random qkv")
	f.BoolVar(&o.JSON, "json", false, "print one JSON object")
	return cmd
}

// benchReport is `vitc bench --json`.
type benchReport struct {
	TrainImgPerSec float64 `json:"train_img_s"`
	InferImgPerSec float64 `json:"infer_img_s"`
	PeakRSSBytes   int64   `json:"peak_rss_bytes"`
	PeakRSSSource  string  `json:"peak_rss_source"` // "VmHWM" or "go-runtime"
	// TrainPeakRSSBytes is the peak resident memory when the training
	// steps are done, before inference; TrainPassPeakBytes the most the
	// tape's activations and gradients held at once in a training step.
	TrainPeakRSSBytes  int64 `json:"train_peak_rss_bytes"`
	TrainPassPeakBytes int64 `json:"train_pass_peak_bytes"`
	Recompute          bool  `json:"recompute"`
	// Resident memory after the training warm-up and after the timed
	// training steps: a steady-state step should not grow it.
	TrainRSSStartBytes int64   `json:"train_rss_start_bytes"`
	TrainRSSEndBytes   int64   `json:"train_rss_end_bytes"`
	TrainGFLOPS        float64 `json:"train_gflops"`
	InferGFLOPS        float64 `json:"infer_gflops"`
	// PeakGFLOPS is this machine's measured best matrix-product rate
	// (autograd.GemmPeakGFLOPS, same threads): the GFLOPS above are
	// fractions of it.
	PeakGFLOPS float64 `json:"peak_gflops"`
	Model      string  `json:"model"`
	Batch      int     `json:"batch"`
	// Config is the model timed (a preset's, or --checkpoint's).
	Config        vit.Config `json:"config"`
	Attention     string     `json:"attention"`
	BLAS          string     `json:"blas"`
	Kernels       string     `json:"kernels"`
	Steps         int        `json:"steps"`
	Warmup        int        `json:"warmup"`
	Params        int        `json:"params"`
	Tokens        int        `json:"tokens"`
	FLOPsPerImage int64      `json:"flops_per_image"`
	Threads       int        `json:"threads"`
	// With --engine gorgonia: the same training steps on the Gorgonia
	// engine, and how many times faster the native engine ran them.
	Engine                 string  `json:"engine"`
	EngineTrainImgPerSec   float64 `json:"engine_train_img_s,omitempty"`
	NativeSpeedupOverOther float64 `json:"native_speedup,omitempty"`
	// CPU time per image of the timed training steps (all threads), on the
	// native engine and on --engine's: less sensitive than img/s to other
	// jobs on a shared machine. 0 where not measured.
	TrainCPUMsPerImg       float64 `json:"train_cpu_ms_per_img"`
	EngineTrainCPUMsPerImg float64 `json:"engine_train_cpu_ms_per_img,omitempty"`
	// Sparse is the sparse branch the training steps ran (nil: none), with
	// its mean mask density over the timed steps and layers.
	Sparse        *taylorattn.SparseOptions `json:"sparse,omitempty"`
	SparseDensity float64                   `json:"sparse_mask_density,omitempty"`
}

// benchAttentionReport is `vitc bench attention --json`.
type benchAttentionReport struct {
	Results []benchAttentionResult `json:"results"`
	HeadDim int                    `json:"head_dim"`
	Heads   int                    `json:"heads"`
	Batch   int                    `json:"batch"`
	Repeats int                    `json:"repeats"`
	BLAS    string                 `json:"blas"`
	Kernels string                 `json:"kernels"`
	Threads int                    `json:"threads"`
}

type benchAttentionResult struct {
	Tokens   int     `json:"tokens"`
	SoftmaxS float64 `json:"softmax_s"`
	TaylorS  float64 `json:"taylor_s"`
	Speedup  float64 `json:"speedup"`
}

// machinePeakGFLOPS is the machine's matrix-product peak, measured once per
// process (a third of a second of 1024³ products: a few dozen of them).
var machinePeakGFLOPS = sync.OnceValue(func() float64 { return autograd.GemmPeakGFLOPS(300 * time.Millisecond) })

// benchInterrupted ends a benchmark cut short by Ctrl-C.
func benchInterrupted(ctx context.Context) error {
	if ctx.Err() == nil {
		return nil
	}
	return &exitError{code: exitInterrupted, err: errors.New("benchmark interrupted")}
}

func benchConfig(o *benchOptions) (vit.Config, error) {
	cfg, err := vit.Preset(o.Model)
	if err != nil {
		return vit.Config{}, err
	}
	cfg = o.overrides().Apply(cfg)
	return cfg, cfg.Validate()
}

func runBench(ctx context.Context, o *benchOptions, stdout, stderr io.Writer) error {
	if o.Engine == "" {
		o.Engine = pipeline.Engines[0]
	}
	if err := checkEngine(o.Engine); err != nil {
		return err
	}
	if o.Recompute && o.Engine != "native" {
		return errors.New("--recompute runs on the native engine only: leave out --engine")
	}
	if o.Sparse.Weight != 0 {
		if err := o.Sparse.Validate(); err != nil {
			return err
		}
	}
	if o.Batch <= 0 || o.Steps <= 0 || o.Warmup < 0 {
		return fmt.Errorf("--batch (%d) and --steps (%d) must be positive and --warmup (%d) not negative", o.Batch, o.Steps, o.Warmup)
	}
	var m *vit.Model
	if o.Checkpoint != "" {
		if o.Patch != 0 || o.Dim != 0 || o.Depth != 0 || o.MLPRatio != 0 {
			return errors.New("--patch, --dim, --depth and --mlp-ratio build a preset: with --checkpoint the architecture is the file's")
		}
		r := o.readFlags
		r.Heads = o.architectureFlags.Heads
		read, err := r.options("", o.Attention)
		if err != nil {
			return err
		}
		n := newNotes(stderr)
		ck, err := openCheckpoint("checkpoint", o.Checkpoint, read, n)
		if err != nil {
			return err
		}
		if m, err = ck.Model(); err != nil {
			return err
		}
		n.flush()
		o.Model = filepath.Base(ck.Path)
	} else {
		cfg, err := benchConfig(o)
		if err != nil {
			return err
		}
		if m, err = vit.New(cfg, o.Seed); err != nil {
			return err
		}
	}
	if err := applyBenchTokenKeep(m, o); err != nil {
		return err
	}
	cfg := m.Config
	var sparse *taylorattn.Sparse
	if o.Sparse.Weight > 0 {
		if cfg.Attention != "taylor" {
			return errors.New("--sparse-weight needs --attention taylor")
		}
		if o.Recompute {
			return errors.New("the sparse branch cannot run with --recompute")
		}
		sparse = taylorattn.NewSparse(o.Sparse, cfg.Depth)
	}
	// Random normalised images (zero mean, unit variance) and labels.
	rng := autograd.NewRNG(o.Seed, 0xbe7c)
	x := make([]float32, o.Batch*cfg.Channels*cfg.Image*cfg.Image)
	for i := range x {
		x[i] = float32(rng.Normal())
	}
	labels := make([]int, o.Batch)
	for i := range labels {
		labels[i] = rng.IntN(cfg.Classes)
	}
	images := autograd.FromData(x, o.Batch, cfg.Channels, cfg.Image, cfg.Image)

	// Training steps, as vit.Run.Train's steady-state loop (with its
	// default label smoothing, clipping and weight decay).
	ps := m.Params
	opt := autograd.NewAdamW(0.05)
	tp := autograd.NewTape(true)
	stepOn := func(engine training.Engine) func() error {
		return func() error {
			tp.Reset()
			ps.ZeroGrad()
			pass := &vit.Pass{Tape: tp, Recompute: o.Recompute}
			if sparse != nil {
				sparse.BeforeStep(0, 1) // α at its start value, every step
				pass.Attention = []vit.AttentionHook{sparse}
			}
			_, loss, err := engine.Step(m, pass, images, func(logits *autograd.Tensor) *autograd.Tensor {
				loss := autograd.CrossEntropy(tp, logits, labels, 0.1)
				if sparse != nil {
					if reg := sparse.Loss(tp); reg != nil {
						loss = autograd.Add(tp, loss, reg)
					}
				}
				return loss
			})
			if err != nil {
				return err
			}
			if lv := float64(loss.Data[0]); math.IsNaN(lv) || math.IsInf(lv, 0) {
				return fmt.Errorf("non-finite loss %v on random data", lv)
			}
			if norm := ps.ClipGradNorm(1); math.IsNaN(norm) || math.IsInf(norm, 0) {
				return fmt.Errorf("non-finite gradient norm %v on random data", norm)
			}
			opt.Update(ps, 1e-4)
			return nil
		}
	}
	trainStep := stepOn(training.Native{})
	// The profile covers the timed steps only, not set-up or warm-up.
	profile := newStepProfile(o.CPUProfile)
	defer profile.discard()
	if _, err := timeSteps(ctx, o.Warmup, 0, nil, trainStep); err != nil {
		return err
	}
	rssStart, _ := rss.Status("VmRSS")
	cpu0 := processCPU()
	if sparse != nil {
		sparse.EpochMetrics() // forget the warm-up's statistics
	}
	trainS, err := timeSteps(ctx, 0, o.Steps, profile, trainStep)
	if err != nil {
		return err
	}
	var sparseDensity float64
	if sparse != nil {
		dens := sparse.EpochMetrics()["sparse_mask_density"].([]float64)
		for _, v := range dens {
			sparseDensity += v / float64(len(dens))
		}
	}
	trainCPU := processCPU() - cpu0
	rssEnd, _ := rss.Status("VmRSS")
	trainPeak, _ := rss.Peak()
	passPeak := tp.Memory().PeakBytes
	var engineS, engineCPU float64
	if o.Engine != "native" {
		engine, err := pipeline.NewEngine(o.Engine)
		if err != nil {
			return err
		}
		// Timed after the native steps, on the same model and batch: the
		// two figures are side by side in one process.
		if _, err := timeSteps(ctx, o.Warmup, 0, nil, stepOn(engine)); err != nil {
			return err
		}
		cpu0 := processCPU()
		if engineS, err = timeSteps(ctx, 0, o.Steps, nil, stepOn(engine)); err != nil {
			return err
		}
		engineCPU = processCPU() - cpu0
	}

	// Inference takes its buffers from the pool the training steps filled,
	// as evaluation within a training run does.
	tp.Reset()
	itp := tp.Shared(false)
	inferStep := func() error {
		itp.Reset()
		m.Forward(itp, images)
		return nil
	}
	inferS, err := timeSteps(ctx, o.Warmup, o.Steps, profile, inferStep)
	if err != nil {
		return err
	}
	if err := profile.save(); err != nil {
		return err
	}

	imgs := float64(o.Batch * o.Steps)
	flops := m.FLOPs()
	peakGFLOPS := machinePeakGFLOPS()
	peak, src := rss.Peak()
	rep := benchReport{
		TrainImgPerSec: imgs / trainS, InferImgPerSec: imgs / inferS,
		PeakRSSBytes: peak, PeakRSSSource: src,
		TrainRSSStartBytes: rssStart, TrainRSSEndBytes: rssEnd,
		TrainPeakRSSBytes: trainPeak, TrainPassPeakBytes: passPeak, Recompute: o.Recompute,
		Model: o.Model, Config: cfg, Batch: o.Batch, Attention: cfg.Attention, BLAS: autograd.BLASName(), Kernels: autograd.KernelsName(),
		Steps: o.Steps, Warmup: o.Warmup, Params: ps.Count(), Tokens: cfg.Tokens(),
		FLOPsPerImage: flops, Threads: runtime.GOMAXPROCS(0), Engine: o.Engine, PeakGFLOPS: peakGFLOPS,
	}
	rep.TrainCPUMsPerImg = 1e3 * trainCPU / imgs
	if sparse != nil {
		rep.Sparse, rep.SparseDensity = &o.Sparse, sparseDensity
	}
	if engineS > 0 {
		rep.EngineTrainImgPerSec = imgs / engineS
		rep.NativeSpeedupOverOther = engineS / trainS
		rep.EngineTrainCPUMsPerImg = 1e3 * engineCPU / imgs
	}
	// A training step costs about three forward passes (forward, and the
	// backward's gradients for activations and for weights).
	rep.TrainGFLOPS = rep.TrainImgPerSec * 3 * float64(flops) / 1e9
	rep.InferGFLOPS = rep.InferImgPerSec * float64(flops) / 1e9
	if o.JSON {
		return printJSON(stdout, rep)
	}
	recompute := ""
	if cfg.TokenKeep > 0 && cfg.TokenKeep < 1 && len(cfg.TokenLayers) > 0 {
		recompute = fmt.Sprintf(", %.3g of patch tokens kept after blocks %v", cfg.TokenKeep, cfg.TokenLayers)
	}
	if o.Recompute {
		recompute += ", blocks recomputed in the backward pass"
	}
	fmt.Fprintf(stdout, "%s (%s attention, %d tokens, %d params, %.3f GFLOPs/image), batch %d, %d steps after %d warm-up%s; %s, %s kernels, %d threads\n",
		o.Model, cfg.Attention, cfg.Tokens(), rep.Params, float64(flops)/1e9, o.Batch, o.Steps, o.Warmup, recompute, rep.BLAS, rep.Kernels, rep.Threads)
	fmt.Fprintf(stdout, "  train      %10.1f img/s  %8.2f GFLOPS  %3.0f%% of peak  (%.1f ms/step)\n", rep.TrainImgPerSec, rep.TrainGFLOPS, 100*rep.TrainGFLOPS/peakGFLOPS, 1e3*trainS/float64(o.Steps))
	if engineS == 0 {
		fmt.Fprintf(stdout, "  train CPU  %10.2f ms/img (all threads)\n", rep.TrainCPUMsPerImg)
	}
	if sparse != nil {
		fmt.Fprintf(stdout, "  sparse branch (%s, α %g, θ %g): mask density %.3f\n", o.Sparse.Formulation, o.Sparse.Weight, o.Sparse.Threshold, sparseDensity)
	}
	if engineS > 0 {
		fmt.Fprintf(stdout, "  train (%s) %6.1f img/s  (%.1f ms/step; the native engine is %.2fx faster)\n",
			o.Engine, rep.EngineTrainImgPerSec, 1e3*engineS/float64(o.Steps), rep.NativeSpeedupOverOther)
		fmt.Fprintf(stdout, "  train CPU  %10.2f ms/img native, %.2f ms/img %s (all threads)\n",
			rep.TrainCPUMsPerImg, rep.EngineTrainCPUMsPerImg, o.Engine)
	}
	fmt.Fprintf(stdout, "  inference  %10.1f img/s  %8.2f GFLOPS  %3.0f%% of peak  (%.1f ms/batch)\n", rep.InferImgPerSec, rep.InferGFLOPS, 100*rep.InferGFLOPS/peakGFLOPS, 1e3*inferS/float64(o.Steps))
	fmt.Fprintf(stdout, "  peak       %10.1f GFLOPS: this machine's best float32 matrix product, measured now\n", peakGFLOPS)
	fmt.Fprintf(stdout, "  peak RSS   %10.1f MiB (%s); %.1f MiB after the training steps, whose activations and gradients held at most %.1f MiB\n",
		float64(peak)/(1<<20), src, float64(trainPeak)/(1<<20), float64(passPeak)/(1<<20))
	if rssStart > 0 {
		fmt.Fprintf(stdout, "  RSS        %10.1f MiB after warm-up, %.1f MiB after %d training steps\n",
			float64(rssStart)/(1<<20), float64(rssEnd)/(1<<20), o.Steps)
	}
	return nil
}

// applyBenchTokenKeep sets --token-keep and --token-layers on the model
// timed. A checkpoint that already prunes tokens keeps its own rate and
// layers unless the flags are given.
func applyBenchTokenKeep(m *vit.Model, o *benchOptions) error {
	if o.TokenKeep == 0 && o.TokenLayers == nil {
		return nil
	}
	if o.TokenKeep <= 0 || o.TokenKeep >= 1 || math.IsNaN(o.TokenKeep) {
		return fmt.Errorf("--token-keep %g: want a fraction of tokens in (0, 1)", o.TokenKeep)
	}
	layers := o.TokenLayers
	if layers == nil {
		layers = tokenprune.Layers(m.Depth)
	}
	cfg := m.Config
	cfg.TokenKeep, cfg.TokenLayers = o.TokenKeep, layers
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("--token-layers %v: %v", o.TokenLayers, err)
	}
	m.Config = cfg
	return nil
}

// timeSteps runs step warmup times untimed, then steps times, and returns
// the seconds the timed ones took.
func timeSteps(ctx context.Context, warmup, steps int, profile *stepProfile, step func() error) (float64, error) {
	for i := 0; i < warmup; i++ {
		if err := benchInterrupted(ctx); err != nil {
			return 0, err
		}
		if err := step(); err != nil {
			return 0, err
		}
	}
	if err := profile.start(); err != nil {
		return 0, err
	}
	var total time.Duration
	for i := 0; i < steps; i++ {
		if err := benchInterrupted(ctx); err != nil {
			return 0, err
		}
		t0 := time.Now()
		if err := step(); err != nil {
			return 0, err
		}
		total += time.Since(t0)
	}
	return max(total.Seconds(), 1e-9), nil
}

func runBenchAttention(ctx context.Context, o *benchAttentionOptions, stdout io.Writer) error {
	if len(o.Tokens) == 0 {
		return errors.New("--tokens needs at least one token count")
	}
	for _, n := range o.Tokens {
		if n <= 0 {
			return fmt.Errorf("--tokens: %d is not a positive token count", n)
		}
	}
	if o.HeadDim <= 0 || o.Heads <= 0 || o.Batch <= 0 || o.Repeats <= 0 {
		return fmt.Errorf("--head-dim (%d), --heads (%d), --batch (%d) and --repeats (%d) must be positive", o.HeadDim, o.Heads, o.Batch, o.Repeats)
	}
	kinds := []vit.AttentionFunc{autograd.SoftmaxAttention, taylorattn.Attention}
	rep := benchAttentionReport{HeadDim: o.HeadDim, Heads: o.Heads, Batch: o.Batch, Repeats: o.Repeats,
		BLAS: autograd.BLASName(), Kernels: autograd.KernelsName(), Threads: runtime.GOMAXPROCS(0)}
	rng := autograd.NewRNG(o.Seed, 0xa77e)
	for _, n := range o.Tokens {
		d3 := 3 * o.Heads * o.HeadDim
		data := make([]float32, o.Batch*n*d3)
		for i := range data {
			data[i] = float32(rng.Normal())
		}
		qkv := autograd.FromData(data, o.Batch, n, d3)
		var best [2]float64
		for k, attn := range kinds {
			// One tape per kind and size, so the timed passes reuse the
			// arena buffers the warm-up allocated.
			tp := autograd.NewTape(false)
			best[k] = math.Inf(1)
			for r := -1; r < o.Repeats; r++ { // r = -1 is the warm-up
				if err := benchInterrupted(ctx); err != nil {
					return err
				}
				tp.Reset()
				t0 := time.Now()
				attn(tp, qkv, o.Heads, false)
				if dt := time.Since(t0).Seconds(); r >= 0 {
					best[k] = min(best[k], max(dt, 1e-9))
				}
			}
		}
		rep.Results = append(rep.Results, benchAttentionResult{Tokens: n, SoftmaxS: best[0], TaylorS: best[1], Speedup: best[0] / best[1]})
	}
	if o.JSON {
		return printJSON(stdout, rep)
	}
	fmt.Fprintf(stdout, "one attention layer, forward (inference): batch %d, %d head(s) of width %d, best of %d; %s, %d threads\n",
		o.Batch, o.Heads, o.HeadDim, o.Repeats, rep.BLAS, rep.Threads)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tokens\tsoftmax ms\ttaylor ms\tspeed-up\tsoftmax µs/token\ttaylor µs/token\t")
	for _, r := range rep.Results {
		fmt.Fprintf(tw, "%d\t%.3f\t%.3f\t%.2fx\t%.3f\t%.3f\t\n", r.Tokens, 1e3*r.SoftmaxS, 1e3*r.TaylorS, r.Speedup,
			1e6*r.SoftmaxS/float64(r.Tokens), 1e6*r.TaylorS/float64(r.Tokens))
	}
	return tw.Flush()
}
