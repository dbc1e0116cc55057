package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"vitc/datasets"
	"vitc/export"
	"vitc/export/hw"
	"vitc/export/sim"
	"vitc/vit"
)

type simOptions struct {
	dataFlags
	Bundle  string
	HW      string
	Data    string
	Seed    int64
	Limit   int
	Compare string
	JSON    bool
	Layers  bool
	Workers int
}

func newSimCmd() *cobra.Command {
	o := &simOptions{}
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run a bundle bit-exactly on the simulator: agreement with the float model, cycles, bytes, PE utilisation",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSim(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	o.dataFlags.bind(f, false)
	f.StringVar(&o.Bundle, "bundle", "", "bundle directory (from vitc export)")
	f.StringVar(&o.HW, "hw", "", "hardware config to run on (default: vitc's); the bundle must have been compiled for it")
	f.StringVar(&o.Data, "data", "", "data spec whose test split is run (default: the data the bundle records)")
	f.Int64Var(&o.Seed, "seed", 0, "seed of the synthetic set (when the data is synthetic)")
	f.IntVar(&o.Limit, "limit", 0, "run at most this many test images (0: all)")
	f.StringVar(&o.Compare, "compare", "", "another bundle for the same hardware: report this bundle's speed-up over it")
	f.BoolVar(&o.JSON, "json", false, "print one JSON object")
	f.BoolVar(&o.Layers, "layers", false, "per-tensor error of int8 against float (cosine, SQNR) over the images run, worst flagged (slower: runs the float graph and the integer reference per image too)")
	f.IntVar(&o.Workers, "workers", 0, "images simulated in parallel (0: one per core)")
	_ = cmd.MarkFlagRequired("bundle")
	return cmd
}

// simReport is `vitc sim --json`.
type simReport struct {
	Bundle         string  `json:"bundle"`
	HW             string  `json:"hw"`
	Data           string  `json:"data"`
	N              int     `json:"n"`
	GoldenOK       bool    `json:"golden_vectors_match"`
	Top1Agreement  float64 `json:"top1_agreement"`
	AccuracyInt    float64 `json:"accuracy_int8"` // the integer pipeline's, whatever ActBits
	ActBits        int     `json:"act_bits"`
	AccuracyFloat  float64 `json:"accuracy_float"`
	ImagesPerSec   float64 `json:"images_per_second_at_clock"`
	SimSeconds     float64 `json:"simulation_seconds"`
	Compare        string  `json:"compare,omitempty"`
	CompareCycles  int64   `json:"compare_cycles,omitempty"`
	SpeedupVsOther float64 `json:"speedup,omitempty"`
	// TensorErrors is --layers: every quantized tensor's error against
	// float, in forward order (the cycle model has "layers").
	TensorErrors []export.TensorError `json:"tensor_errors,omitempty"`
	// KeptAgreement is --layers on a token-pruning model: per pruning
	// block, the share of the float model's kept tokens int8 keeps too.
	KeptAgreement []export.KeptAgreement `json:"kept_agreement,omitempty"`
	sim.Stats
}

func runSim(ctx context.Context, o *simOptions, stdout, stderr io.Writer) error {
	h, err := loadHW(o.HW)
	if err != nil {
		return err
	}
	if o.Limit < 0 {
		return fmt.Errorf("--limit %d: want 0 (all) or more", o.Limit)
	}
	if o.Workers < 0 {
		return fmt.Errorf("--workers %d: want 0 (one per core) or more", o.Workers)
	}
	lb, runner, stats, err := openChecked(o.Bundle, h)
	if err != nil {
		return err
	}
	rep := simReport{Bundle: o.Bundle, HW: h.Name, GoldenOK: true, Stats: stats, ActBits: lb.Quant.Bits()}
	if stats.Cycles > 0 {
		rep.ImagesPerSec = 1 / stats.Seconds
	}
	if o.Compare != "" {
		_, _, s2, err := openChecked(o.Compare, h)
		if err != nil {
			return err
		}
		rep.Compare, rep.CompareCycles = o.Compare, s2.Cycles
		rep.SpeedupVsOther = float64(s2.Cycles) / float64(stats.Cycles)
	}
	if err := simulateData(ctx, o, lb, runner, &rep, newProgress(stderr)); err != nil {
		return err
	}
	if o.JSON {
		return printJSON(stdout, rep)
	}
	printSim(stdout, &rep)
	return nil
}

// openChecked opens a bundle for h and runs its golden input, which must
// reproduce every golden value; it returns the runner and that run's cycle
// account (every image takes the same cycles; in a bundle compiled for a
// batch, the account per image over the batch).
func openChecked(dir string, h hw.Config) (*export.LoadedBundle, *sim.Runner, sim.Stats, error) {
	lb, err := export.OpenBundle(dir, h)
	if err != nil {
		return nil, nil, sim.Stats{}, err
	}
	runner, err := sim.NewRunner(lb.Program)
	if err != nil {
		return nil, nil, sim.Stats{}, fmt.Errorf("bundle %s: %w", dir, err)
	}
	tr, stats, err := runner.Run(lb.Golden)
	if err != nil {
		return nil, nil, sim.Stats{}, fmt.Errorf("bundle %s: %w", dir, err)
	}
	if d := tr.Diff(lb.Expected); d != "" {
		return nil, nil, sim.Stats{}, fmt.Errorf("bundle %s: the golden vectors do not reproduce: %s", dir, d)
	}
	if b := lb.Program.Batch; b > 1 {
		// A batch: the golden input again, now with the weights resident
		// (no weight loads), must reproduce too; its account is every image
		// after the first.
		tr, steady, err := runner.Run(lb.Golden)
		if err != nil {
			return nil, nil, sim.Stats{}, fmt.Errorf("bundle %s: %w", dir, err)
		}
		if d := tr.Diff(lb.Expected); d != "" {
			return nil, nil, sim.Stats{}, fmt.Errorf("bundle %s: with the weights resident, the golden vectors do not reproduce: %s", dir, d)
		}
		stats = sim.Amortise(h, stats, steady, b)
	}
	return lb, runner, stats, nil
}

// simulateData runs the test split on the simulator and the float model:
// images in parallel, one runner (machine state) per worker, results kept
// by image index so that everything reported is independent of scheduling.
func simulateData(ctx context.Context, o *simOptions, lb *export.LoadedBundle, runner *sim.Runner, rep *simReport, bar *progressBar) error {
	spec := o.Data
	if spec == "" {
		if lb.Model.Dataset == "" {
			return errors.New("the bundle does not record its data: pass --data SPEC")
		}
		spec = lb.Model.Dataset
	}
	rep.Data = spec
	m, meta, err := lb.FloatModel()
	if err != nil {
		return err
	}
	ds, err := o.loadDataFor(spec, o.Seed, m, nil)
	if err != nil {
		return err
	}
	if err := checkFits(m, ds, spec); err != nil {
		return err
	}
	var probe *export.LayerProbe
	if o.Layers {
		if probe, err = lb.LayerProbe(m); err != nil {
			return fmt.Errorf("bundle %s: %w", o.Bundle, err)
		}
	}
	n := ds.Test.Len()
	if o.Limit > 0 {
		n = min(n, o.Limit)
	}
	loader := datasets.NewLoader(ds, &ds.Test, datasets.LoaderOptions{Batch: max(n, 1), Stats: statsFor(meta, ds)})
	x, y, _ := loader.Batch(0, 0)
	logits := vit.Predict(m, x[:n*m.Channels*m.Image*m.Image], n, 64)
	chw := m.Channels * m.Image * m.Image
	start := time.Now()

	workers := max(1, min(o.Workers, n))
	if o.Workers == 0 {
		workers = max(1, min(runtime.GOMAXPROCS(0), n))
	}
	runners := []*sim.Runner{runner}
	for len(runners) < workers {
		r, err := sim.NewRunner(lb.Program)
		if err != nil {
			return fmt.Errorf("bundle %s: %w", o.Bundle, err)
		}
		runners = append(runners, r)
	}
	pred := make([]int, n)
	sums := make([]export.LayerSums, n)
	errs := make([]error, n)
	var (
		next    atomic.Int64
		failed  atomic.Bool
		mu      sync.Mutex
		done    int
		agreeN  int
		okIntN  int
		wg      sync.WaitGroup
		stopped = func() bool { return failed.Load() || ctx.Err() != nil }
	)
	bar.Start(n, 0, "simulating")
	defer bar.Finish()
	for _, r := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stopped() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				img := x[i*chw : (i+1)*chw]
				in := lb.QuantizeInput(img)
				tr, _, err := r.Run(in)
				if err == nil && probe != nil {
					sums[i], err = probe.Image(img, in, tr)
				}
				if err != nil {
					errs[i] = fmt.Errorf("bundle %s: image %d: %w", o.Bundle, i, err)
					failed.Store(true)
					return
				}
				pred[i] = sim.Argmax(tr.Logits)
				pf := vit.Argmax(logits[i*m.Classes : (i+1)*m.Classes])
				mu.Lock()
				done++
				if pred[i] == pf {
					agreeN++
				}
				if pred[i] == y[i] {
					okIntN++
				}
				elapsed := time.Since(start).Seconds()
				bar.Update(done, fmt.Sprintf("agreement %5.1f%% int8 acc %5.1f%% %4.0f img/s", 100*float64(agreeN)/float64(done), 100*float64(okIntN)/float64(done), float64(done)/elapsed))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return &exitError{code: exitInterrupted, err: errors.New("interrupted")}
	}
	rep.SimSeconds = time.Since(start).Seconds()
	rep.N = n
	agree, okInt, okFloat := 0, 0, 0
	var total export.LayerSums
	for i := 0; i < n; i++ {
		pf := vit.Argmax(logits[i*m.Classes : (i+1)*m.Classes])
		if pred[i] == pf {
			agree++
		}
		if pred[i] == y[i] {
			okInt++
		}
		if pf == y[i] {
			okFloat++
		}
		if probe != nil {
			if total, err = total.Add(sums[i]); err != nil {
				return fmt.Errorf("bundle %s: image %d: %w", o.Bundle, i, err)
			}
		}
	}
	if n > 0 {
		rep.Top1Agreement = float64(agree) / float64(n)
		rep.AccuracyInt = float64(okInt) / float64(n)
		rep.AccuracyFloat = float64(okFloat) / float64(n)
	}
	if probe != nil {
		rep.TensorErrors = total.Errors(lb.Quant.Scales, worstTensors)
		rep.KeptAgreement = total.KeptAgreements()
	}
	return nil
}

// worstTensors is how many tensors --layers flags.
const worstTensors = 3

func printSim(w io.Writer, r *simReport) {
	fmt.Fprintf(w, "%s on %s: golden vectors reproduce bit for bit\n", r.Bundle, r.HW)
	fmt.Fprintf(w, "%d test images of %s (%.1fs of simulation)\n", r.N, r.Data, r.SimSeconds)
	fmt.Fprintf(w, "  top-1 agreement with the float model  %.2f%%\n", 100*r.Top1Agreement)
	fmt.Fprintf(w, "  accuracy: int%d %.2f%%, float %.2f%%\n\n", r.ActBits, 100*r.AccuracyInt, 100*r.AccuracyFloat)
	if len(r.TensorErrors) > 0 {
		printTensorErrors(w, r.TensorErrors)
	}
	for _, k := range r.KeptAgreement {
		fmt.Fprintf(w, "block %d keeps %.2f%% of the tokens the float model keeps\n", k.Block, 100*k.Agreement)
	}
	if len(r.KeptAgreement) > 0 {
		fmt.Fprintln(w)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "layer\tcycles\tMACs\tDRAM bytes\tPE util\troofline\tcycles/roofline\t")
	for _, l := range r.Layers {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.1f%%\t%d\t%s\t\n", l.Name, l.Cycles, l.MACs, l.BytesMoved, 100*l.Utilisation, l.Roofline, gap(l.Cycles, l.Roofline))
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%.1f%%\t%d\t%s\t\n", r.Cycles, r.MACs, r.BytesMoved, 100*r.Utilisation, r.Roofline, gap(r.Cycles, r.Roofline))
	tw.Flush()
	if r.Batch > 1 {
		fmt.Fprintf(w, "\nbatch of %d images, weights loaded once, in lockstep groups of %d: per image %d cycles amortised (the first group %d)\n", r.Batch, max(r.Group, 1), r.Cycles, r.FirstImageCycles)
		fmt.Fprintf(w, "%.1f µs per image at the configured clock (%.0f images/s)\n", 1e6*r.Seconds, r.ImagesPerSec)
	} else {
		fmt.Fprintf(w, "\n%.1f µs per image at the configured clock (%.0f images/s)\n", 1e6*r.Seconds, r.ImagesPerSec)
	}
	if r.Compare != "" {
		fmt.Fprintf(w, "speed-up over %s: %.2f× (%d against %d cycles)\n", r.Compare, r.SpeedupVsOther, r.Cycles, r.CompareCycles)
	}
}

// printTensorErrors is --layers: one line per quantized tensor, the worst
// marked, then the worst named.
func printTensorErrors(w io.Writer, errs []export.TensorError) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "tensor\tscale\tcosine\tSQNR dB\t\t")
	var worst []export.TensorError
	for _, e := range errs {
		mark := ""
		if e.Worst {
			mark = "<- worst"
			worst = append(worst, e)
		}
		fmt.Fprintf(tw, "%s\t%.4g\t%.5f\t%.1f\t%s\t\n", e.Name, e.Scale, e.Cosine, e.SQNR, mark)
	}
	tw.Flush()
	slices.SortStableFunc(worst, func(a, b export.TensorError) int { return cmp.Compare(a.SQNR, b.SQNR) })
	fmt.Fprint(w, "worst:")
	for i, e := range worst {
		sep := ","
		if i == 0 {
			sep = ""
		}
		fmt.Fprintf(w, "%s %s (%.1f dB)", sep, e.Name, e.SQNR)
	}
	fmt.Fprint(w, "\n\n")
}

// gap is modelled cycles over the roofline bound, "-" without a bound.
func gap(cycles, roofline int64) string {
	if roofline == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", float64(cycles)/float64(roofline))
}
