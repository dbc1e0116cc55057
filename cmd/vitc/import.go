package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"vitc/datasets"
	"vitc/vit"
)

// importOptions are `vitc import`'s flags.
type importOptions struct {
	checkpointFlags
	dataFlags
	Data string
	Seed int64
	Out  string
	JSON bool
}

func newImportCmd() *cobra.Command {
	o := &importOptions{}
	cmd := &cobra.Command{
		Use:   "import CHECKPOINT --out M.safetensors",
		Short: "Write a checkpoint someone else published as a self-describing vitc checkpoint, read once with the flags it needs",
		Long: `Read a checkpoint (a timm/DeiT .safetensors file without vitc metadata, a
folder with model.safetensors and config.json, or a vitc checkpoint) the way
every command reads one, and write it with vitc's metadata: its architecture
(heads, LayerNorm eps), input normalisation and class names, so that later
commands need no flags. With --data the model is scored on that data's test
split and the data and accuracy are recorded too: later commands default to
that data, and a teacher read wrongly is caught against that accuracy.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Checkpoint = args[0]
			return runImport(o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Model, "model", "", "preset body of a checkpoint without vitc metadata (default: read the architecture from its tensors)")
	f.StringVar(&o.Attention, "attention", "", "attention kind of a checkpoint without vitc metadata (default softmax)")
	o.readFlags.bind(f, true)
	o.dataFlags.bind(f, false)
	o.dataFlags.bindAdapt(f)
	f.StringVar(&o.Data, "data", "", "score the model on this data's test split and record the data and accuracy (default: the data a vitc checkpoint records)")
	f.Int64Var(&o.Seed, "seed", 0, "seed of the synthetic set (when --data is synthetic)")
	f.StringVar(&o.Out, "out", "", "the vitc checkpoint to write (.safetensors)")
	f.BoolVar(&o.JSON, "json", false, "print one JSON object")
	_ = cmd.MarkFlagRequired("out")
	o.cmd = cmd
	return cmd
}

// importReport is `vitc import --json`.
type importReport struct {
	Source     string     `json:"source"`
	Checkpoint string     `json:"checkpoint"`
	Config     vit.Config `json:"config"`
	Facts      []vit.Fact `json:"facts"`
	NormMean   []float32  `json:"norm_mean"`
	NormStd    []float32  `json:"norm_std"`
	ClassNames []string   `json:"class_names,omitempty"`
	Data       string     `json:"data,omitempty"`
	Accuracy   float64    `json:"test_accuracy,omitempty"`
	TestImages int        `json:"test_images,omitempty"`
	Params     int        `json:"params"`
}

func runImport(o *importOptions, stdout io.Writer) error {
	if !strings.HasSuffix(o.Out, ".safetensors") {
		return fmt.Errorf("--out %s: name the checkpoint FILE.safetensors", o.Out)
	}
	m, meta, ck, err := o.load()
	if err != nil {
		return err
	}
	names, err := classNames(o.ClassNames)
	if err != nil {
		return err
	}
	if names != nil {
		// Here --class-names names the model's classes, and the data's:
		// the model was trained on it.
		if len(names) != m.Classes {
			return fmt.Errorf("--class-names gives %d names, the model has %d classes", len(names), m.Classes)
		}
		o.notes.printf("class names %s (--class-names)", strings.Join(names, ", "))
		meta.ClassNames = names
	}
	rep := importReport{Source: o.Checkpoint, Checkpoint: o.Out, Config: m.Config, Facts: ck.Facts, Params: m.Params.Count()}
	if o.Data == "" {
		o.Data = meta.Dataset // a vitc checkpoint is scored on its own data again
	}
	if o.Data != "" {
		ds, err := o.loadDataFor(o.Data, o.Seed, m.Config, meta, o.notes)
		if err != nil {
			return err
		}
		if err := checkHeads("checkpoint", ck, ds, o.notes); err != nil {
			return err
		}
		if len(meta.ClassNames) == 0 && ds.NamesClasses() && len(ds.Classes) == m.Classes {
			meta.ClassNames = ds.Classes
			o.notes.printf("class names %s (the data's; name them otherwise with --class-names)", strings.Join(ds.Classes, ", "))
		}
		res := vit.Evaluate(m, datasets.NewLoader(ds, &ds.Test, datasets.LoaderOptions{Batch: 256, Stats: statsFor(meta, ds), Prefetch: true}))
		meta.Dataset, meta.TestAccuracy, meta.ValSplit = o.Data, res.Accuracy, o.ValSplit
		rep.Data, rep.Accuracy, rep.TestImages = o.Data, res.Accuracy, res.N
	}
	if err := m.Save(o.Out, meta); err != nil {
		return err
	}
	o.notes.flush()
	rep.NormMean, rep.NormStd, rep.ClassNames = meta.NormMean, meta.NormStd, meta.ClassNames
	if o.JSON {
		return printJSON(stdout, rep)
	}
	fmt.Fprintf(stdout, "wrote %s: %s attention, %d heads, LayerNorm eps %g, normalisation mean %s std %s",
		o.Out, m.Attention, m.Heads, m.Eps(), floatList(meta.NormMean), floatList(meta.NormStd))
	if rep.Data != "" {
		fmt.Fprintf(stdout, ", %.2f%% on the %d test images of %s", 100*rep.Accuracy, rep.TestImages, rep.Data)
	}
	fmt.Fprintf(stdout, "\nlater commands read it without flags, e.g. vitc eval --checkpoint %s\n", filepath.Clean(o.Out))
	return nil
}
