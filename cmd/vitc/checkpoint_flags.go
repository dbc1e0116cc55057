package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"vitc/datasets"
	"vitc/vit"
)

// checkpointFlags are shared by the commands that read a model: the file,
// and how to read one without vitc metadata (a timm/DeiT checkpoint).
type checkpointFlags struct {
	Checkpoint string
	Model      string
	Attention  string
	timmFlags
	cmd *cobra.Command // its stderr gets the inferred values
}

func (c *checkpointFlags) bind(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&c.Checkpoint, "checkpoint", "", "model checkpoint (.safetensors)")
	f.StringVar(&c.Model, "model", "", "preset of a checkpoint without vitc metadata (default: read the architecture from its tensors)")
	f.StringVar(&c.Attention, "attention", "", "attention kind of a checkpoint without vitc metadata")
	c.timmFlags.bind(f, true)
	_ = cmd.MarkFlagRequired("checkpoint")
	c.cmd = cmd
}

func (c *checkpointFlags) load() (*vit.Model, vit.Meta, error) {
	if c.Model != "" {
		if _, err := vit.Preset(c.Model); err != nil {
			return nil, vit.Meta{}, err
		}
	}
	opts, err := c.timmFlags.options(c.Model, c.Attention, c.cmd.ErrOrStderr())
	if err != nil {
		return nil, vit.Meta{}, err
	}
	return loadCheckpoint(c.Checkpoint, opts)
}

// loadCheckpoint is vit.Load with its option names turned into flags.
func loadCheckpoint(path string, opts vit.LoadOptions) (*vit.Model, vit.Meta, error) {
	m, meta, err := vit.Load(path, opts)
	return m, meta, flagError(err)
}

// flagError names the flag where a library error names an option.
func flagError(err error) error {
	switch {
	case errors.Is(err, vit.ErrNeedHeads):
		return fmt.Errorf("%s", strings.Replace(err.Error(), "(LoadOptions.Heads)", "with --heads N", 1))
	case errors.Is(err, datasets.ErrMixedSizes):
		return fmt.Errorf("%s", strings.Replace(err.Error(), "an image size to resize them to (Options.ImageSize)", "--image-size N to resize them to", 1))
	case errors.Is(err, datasets.ErrBadImage):
		return fmt.Errorf("%s", strings.Replace(err.Error(), datasets.ErrBadImage.Error(), "--skip-bad-images leaves out files that do not decode", 1))
	}
	return err
}

// timmFlags say what the tensors of a timm file cannot: its head count,
// LayerNorm eps and input normalisation.
type timmFlags struct {
	Heads     int
	LNEps     float64
	Mean, Std []float32
}

func (t *timmFlags) bind(f *pflag.FlagSet, withHeads bool) {
	if withHeads { // train has --heads among its architecture flags
		f.IntVar(&t.Heads, "heads", 0, "attention heads of a checkpoint without vitc metadata (default dim/64, as timm)")
	}
	f.Float64Var(&t.LNEps, "ln-eps", 0, "LayerNorm eps of a checkpoint without vitc metadata (default 1e-6, timm's)")
	f.Float32SliceVar(&t.Mean, "mean", nil, "input mean per channel of a checkpoint without vitc metadata (default ImageNet's for RGB, 0.5 otherwise)")
	f.Float32SliceVar(&t.Std, "std", nil, "input std per channel of a checkpoint without vitc metadata (default ImageNet's for RGB, 0.5 otherwise)")
}

// options maps the flags onto vit.LoadOptions; inferred and defaulted
// values are printed on stderr.
func (t *timmFlags) options(preset, attention string, stderr io.Writer) (vit.LoadOptions, error) {
	if t.Heads < 0 {
		return vit.LoadOptions{}, fmt.Errorf("--heads %d must be positive", t.Heads)
	}
	if t.LNEps < 0 {
		return vit.LoadOptions{}, fmt.Errorf("--ln-eps %g must be positive", t.LNEps)
	}
	if (t.Mean == nil) != (t.Std == nil) {
		return vit.LoadOptions{}, fmt.Errorf("--mean and --std go together")
	}
	logf := func(format string, args ...any) {
		if stderr != nil {
			fmt.Fprintf(stderr, "vitc: "+format+"\n", args...)
		}
	}
	return vit.LoadOptions{Preset: preset, Attention: attention, Heads: t.Heads, LNEps: t.LNEps, Mean: t.Mean, Std: t.Std, Log: logf}, nil
}

// statsFor returns the normalisation a model was trained with, or the
// given data's own statistics for a checkpoint that recorded none.
func statsFor(meta vit.Meta, ds *datasets.Dataset) datasets.Stats {
	if len(meta.NormMean) > 0 {
		return datasets.Stats{Mean: meta.NormMean, Std: meta.NormStd}
	}
	if ds != nil {
		return datasets.ComputeStats(ds)
	}
	return datasets.Stats{}
}
