package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"vitc/export"
	"vitc/export/sim"
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
	o.dataFlags.bindAdapt(f)
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
	// Batch is the images per load of the weights the bundle (and the one
	// compared with) is compiled for: the batch of every figure here.
	Batch int `json:"batch"`
	// CompareBatch is the compared bundle's batch: a speed-up is a ratio
	// at one batch only when it equals Batch.
	CompareBatch int `json:"compare_batch,omitempty"`
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
	cb, err := export.OpenChecked(o.Bundle, h)
	if err != nil {
		return err
	}
	rep := simReport{Bundle: o.Bundle, HW: h.Name, GoldenOK: true, Stats: cb.Stats, ActBits: cb.Quant.Bits(), Batch: max(cb.Program.Batch, 1)}
	if cb.Stats.Cycles > 0 {
		rep.ImagesPerSec = 1 / cb.Stats.Seconds
	}
	if o.Compare != "" {
		other, err := export.OpenChecked(o.Compare, h)
		if err != nil {
			return err
		}
		rep.CompareBatch = max(other.Program.Batch, 1)
		rep.Compare, rep.CompareCycles = o.Compare, other.Stats.Cycles
		rep.SpeedupVsOther = float64(other.Stats.Cycles) / float64(cb.Stats.Cycles)
	}
	m, meta, err := cb.FloatModel()
	if err != nil {
		return err
	}
	spec, err := dataOf(o.Data, meta, "--data")
	if err != nil {
		return errors.New("the bundle does not record its data: pass --data SPEC")
	}
	rep.Data = spec
	n := newNotes(stderr)
	ds, err := o.loadDataFor(spec, o.Seed, m.Config, meta, n)
	if err != nil {
		return err
	}
	n.flush()
	bar := newProgress(stderr)
	total := ds.Test.Len()
	if o.Limit > 0 {
		total = min(total, o.Limit)
	}
	bar.Start(total, 0, "simulating")
	start := time.Now()
	res, err := cb.Simulate(ctx, ds, export.SimOptions{Limit: o.Limit, Workers: o.Workers, Layers: o.Layers,
		Progress: func(done, total int, agree, acc float64) {
			bar.Update(done, fmt.Sprintf("agreement %5.1f%% int%d acc %5.1f%% %4.0f img/s", 100*agree, rep.ActBits, 100*acc, float64(done)/time.Since(start).Seconds()))
		}})
	bar.Finish()
	if errors.Is(err, export.ErrInterrupted) {
		return &exitError{code: exitInterrupted, err: errors.New("interrupted")}
	}
	if err != nil {
		return err
	}
	rep.N, rep.SimSeconds = res.N, res.Seconds
	rep.Top1Agreement, rep.AccuracyInt, rep.AccuracyFloat = res.Top1Agreement, res.AccuracyInt, res.AccuracyFloat
	rep.TensorErrors, rep.KeptAgreement = res.TensorErrors, res.KeptAgreement
	if o.JSON {
		return printJSON(stdout, rep)
	}
	printSim(stdout, &rep)
	return nil
}

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
		if r.CompareBatch == r.Batch {
			fmt.Fprintf(w, "speed-up over %s: %.2f× at batch %d, both (%d against %d cycles per image)\n", r.Compare, r.SpeedupVsOther, r.Batch, r.Cycles, r.CompareCycles)
		} else {
			fmt.Fprintf(w, "speed-up over %s: %.2f× with this bundle at batch %d and that one at batch %d: not one setting (%d against %d cycles per image); export both at one --batch to compare the models\n",
				r.Compare, r.SpeedupVsOther, r.Batch, r.CompareBatch, r.Cycles, r.CompareCycles)
		}
	}
	if r.ActBits == 8 && r.N > 0 && r.Top1Agreement < export.AutoAgreement {
		fmt.Fprintf(w, "agreement below %.1f%%: export with --act-bits auto (or 16), or prune with --int8-weights, to close it\n", 100*export.AutoAgreement)
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
