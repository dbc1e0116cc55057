package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"vitc/datasets"
	"vitc/vit"
)

type evalOptions struct {
	checkpointFlags
	dataFlags
	Data  string
	Seed  int64
	Batch int
	JSON  bool
}

func newEvalCmd() *cobra.Command {
	o := &evalOptions{}
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Evaluate a checkpoint on a test split: top-1/top-5, per-class accuracy, confusion matrix",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runEval(o, cmd.OutOrStdout())
		},
	}
	o.checkpointFlags.bind(cmd)
	f := cmd.Flags()
	o.dataFlags.bind(f, false)
	o.dataFlags.bindAdapt(f)
	f.StringVar(&o.Data, "data", "", "data spec (default: the data the checkpoint was trained on)")
	f.Int64Var(&o.Seed, "seed", 0, "seed of the synthetic set (when --data is synthetic)")
	f.IntVar(&o.Batch, "batch", 256, "evaluation batch size")
	f.BoolVar(&o.JSON, "json", false, "print one JSON object")
	return cmd
}

// evalReport is `vitc eval --json`.
type evalReport struct {
	Checkpoint string             `json:"checkpoint"`
	Data       string             `json:"data"`
	N          int                `json:"n"`
	Accuracy   float64            `json:"accuracy"`
	Top5       *float64           `json:"top5,omitempty"`
	Loss       float64            `json:"loss"`
	PerClass   map[string]float64 `json:"per_class"`
	Classes    []string           `json:"classes"`
	Confusion  [][]int            `json:"confusion"`
}

func runEval(o *evalOptions, stdout io.Writer) error {
	m, meta, ck, err := o.load()
	if err != nil {
		return err
	}
	spec, err := dataOf(o.Data, meta, "--data")
	if err != nil {
		return err
	}
	ds, err := o.loadDataFor(spec, o.Seed, m.Config, meta, o.notes)
	if err != nil {
		return err
	}
	if err := checkHeads("checkpoint", ck, ds, o.notes); err != nil {
		return err
	}
	o.notes.flush()
	loader := datasets.NewLoader(ds, &ds.Test, datasets.LoaderOptions{Batch: max(1, o.Batch), Stats: statsFor(meta, ds), Prefetch: true})
	res := vit.Evaluate(m, loader)
	classes := className(meta, ds, m.Classes)
	rep := evalReport{Checkpoint: o.Checkpoint, Data: spec, N: res.N, Accuracy: res.Accuracy, Loss: res.Loss,
		PerClass: map[string]float64{}, Classes: classes, Confusion: res.Confusion}
	if m.Classes > 5 {
		rep.Top5 = &res.Top5
	}
	for k, acc := range res.PerClass {
		if acc == acc { // classes absent from the test split have no accuracy
			rep.PerClass[classes[k]] = acc
		}
	}
	if o.JSON {
		return printJSON(stdout, rep)
	}
	fmt.Fprintf(stdout, "%s on %s (%d images)\n", o.Checkpoint, spec, res.N)
	fmt.Fprintf(stdout, "top-1 accuracy  %.2f%%\n", 100*res.Accuracy)
	if rep.Top5 != nil {
		fmt.Fprintf(stdout, "top-5 accuracy  %.2f%%\n", 100*res.Top5)
	}
	fmt.Fprintf(stdout, "loss            %.4f\n\nper-class accuracy:\n", res.Loss)
	for k, acc := range res.PerClass {
		if acc == acc {
			fmt.Fprintf(stdout, "  %-20s %6.2f%%\n", classes[k], 100*acc)
		}
	}
	if m.Classes <= 20 {
		fmt.Fprintf(stdout, "\nconfusion matrix (rows: true class, columns: predicted):\n")
		writeConfusion(stdout, res.Confusion)
	}
	return nil
}

// dataOf is the data a command runs on: the flag's, else what the
// checkpoint records.
func dataOf(flag string, meta vit.Meta, name string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if meta.Dataset == "" {
		return "", fmt.Errorf("the checkpoint does not record its data: pass %s SPEC", name)
	}
	return meta.Dataset, nil
}

func className(meta vit.Meta, ds *datasets.Dataset, n int) []string {
	names := make([]string, n)
	for k := range names {
		switch {
		case k < len(meta.ClassNames):
			names[k] = meta.ClassNames[k]
		case ds != nil && k < len(ds.Classes):
			names[k] = ds.Classes[k]
		default:
			names[k] = fmt.Sprint(k)
		}
	}
	return names
}

func writeConfusion(w io.Writer, conf [][]int) {
	var b strings.Builder
	b.WriteString("      ")
	for j := range conf {
		fmt.Fprintf(&b, "%5d", j)
	}
	b.WriteString("\n")
	for i, row := range conf {
		fmt.Fprintf(&b, "%5d ", i)
		for _, v := range row {
			fmt.Fprintf(&b, "%5d", v)
		}
		b.WriteString("\n")
	}
	fmt.Fprint(w, b.String())
}
