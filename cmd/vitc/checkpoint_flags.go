package main

import (
	"github.com/spf13/cobra"

	"vitc/datasets"
	"vitc/vit"
)

// checkpointFlags are shared by the commands that read a model: the file,
// and how to read one without vitc metadata (a timm/DeiT checkpoint).
type checkpointFlags struct {
	Checkpoint string
	Model      string
	Attention  string
}

func (c *checkpointFlags) bind(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&c.Checkpoint, "checkpoint", "", "model checkpoint (.safetensors)")
	f.StringVar(&c.Model, "model", "", "preset of a checkpoint without vitc metadata (timm/DeiT files)")
	f.StringVar(&c.Attention, "attention", "", "attention kind of a checkpoint without vitc metadata")
	_ = cmd.MarkFlagRequired("checkpoint")
}

func (c *checkpointFlags) load() (*vit.Model, vit.Meta, error) {
	if c.Model != "" {
		if _, err := vit.Preset(c.Model); err != nil {
			return nil, vit.Meta{}, err
		}
	}
	return vit.Load(c.Checkpoint, vit.LoadOptions{Preset: c.Model, Attention: c.Attention})
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
