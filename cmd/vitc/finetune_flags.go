package main

import (
	"bytes"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"vitc/datasets"
	"vitc/vit"
)

// dataFlags say how images are read: resized to the model, split when a
// folder has no test/, bad files skipped.
type dataFlags struct {
	ImageSize     int
	ValSplit      float64
	SkipBadImages bool
}

func (d *dataFlags) bind(f *pflag.FlagSet, withSize bool) {
	if withSize { // eval, export and sim resize to the model's size
		f.IntVar(&d.ImageSize, "image-size", 0, "resize images to N×N (default: the data's; the checkpoint's with --init)")
	}
	f.Float64Var(&d.ValSplit, "val-split", 0, "folder data without test/: hold out this fraction of each class (deterministic)")
	f.BoolVar(&d.SkipBadImages, "skip-bad-images", false, "leave out image files that do not decode (counted) instead of stopping")
}

func (d *dataFlags) options(size int) datasets.Options {
	return datasets.Options{ImageSize: size, ValSplit: d.ValSplit, SkipBadImages: d.SkipBadImages}
}

// loadDataFor reads spec resized to m's input, as eval does.
func (d *dataFlags) loadDataFor(spec string, seed int64, m *vit.Model, stderr io.Writer) (*datasets.Dataset, error) {
	opts := d.options(m.Image)
	opts.Channels = m.Channels
	ds, err := datasets.LoadWith(spec, seed, opts)
	if err != nil {
		return nil, flagError(err)
	}
	reportSkipped(ds, stderr)
	return ds, nil
}

func reportSkipped(ds *datasets.Dataset, stderr io.Writer) {
	if ds.Skipped > 0 && stderr != nil {
		fmt.Fprintf(stderr, "vitc: skipped %d image files that do not decode\n", ds.Skipped)
	}
}

// fineTuneFlags are train's flags for --init: how a timm file is read and
// adapted to the data.
type fineTuneFlags struct {
	dataFlags
	timmFlags
	KeepHead          bool
	PosEmbedAntialias bool
	// initLog holds the lines about --init until the run is set up, so
	// that a refused one prints a single line.
	initLog bytes.Buffer
}

func (t *fineTuneFlags) bind(f *pflag.FlagSet) {
	t.dataFlags.bind(f, true)
	t.timmFlags.bind(f, false)
	f.BoolVar(&t.KeepHead, "keep-head", false, "with --init: refuse data of another class count instead of starting a new head")
	f.BoolVar(&t.PosEmbedAntialias, "pos-embed-antialias", false, "with --init: resample pos_embed with antialias=True, as timm's checkpoint filter (default: plain bicubic)")
}

// readInit reads --init and settles the image size: --image-size, else
// the checkpoint's. Inferred values and adaptations go to stderr.
func (o *trainOptions) readInit() (*vit.Pretrained, vit.InitOptions, error) {
	if o.Init == "" {
		switch {
		case o.KeepHead, o.PosEmbedAntialias:
			return nil, vit.InitOptions{}, fmt.Errorf("--keep-head and --pos-embed-antialias need --init")
		case o.LNEps != 0, o.Mean != nil, o.Std != nil:
			return nil, vit.InitOptions{}, fmt.Errorf("--ln-eps, --mean and --std describe an --init checkpoint without vitc metadata")
		}
		return nil, vit.InitOptions{}, nil
	}
	t := o.timmFlags
	t.Heads = o.Heads // train's --heads names a timm file's heads
	lo, err := t.options("", "", &o.initLog)
	if err != nil {
		return nil, vit.InitOptions{}, err
	}
	pre, err := vit.ReadPretrained(o.Init, lo)
	if err != nil {
		return nil, vit.InitOptions{}, flagError(err)
	}
	// The architecture is the checkpoint's: a flag may restate it (scripts
	// that name the model they fine-tune), not change it.
	pc := pre.Config
	for _, c := range []struct {
		name     string
		set      bool
		got, has float64
	}{{"--patch", o.Patch != 0, float64(o.Patch), float64(pc.Patch)}, {"--dim", o.Dim != 0, float64(o.Dim), float64(pc.Dim)},
		{"--depth", o.Depth != 0, float64(o.Depth), float64(pc.Depth)}, {"--mlp-ratio", o.MLPRatio != 0, o.MLPRatio, pc.MLPRatio}} {
		if c.set && c.got != c.has {
			return nil, vit.InitOptions{}, fmt.Errorf("%s %g: with --init the architecture comes from %s, which has %g", c.name, c.got, o.Init, c.has)
		}
	}
	if o.ImageSize == 0 {
		o.ImageSize = pre.Config.Image
		lo.Log("image size %d (the checkpoint's; set it with --image-size)", o.ImageSize)
	}
	if o.ImageSize%pre.Config.Patch != 0 {
		return nil, vit.InitOptions{}, fmt.Errorf("--image-size %d is not a multiple of the patch size %d of %s", o.ImageSize, pre.Config.Patch, o.Init)
	}
	return pre, vit.InitOptions{Load: lo, KeepHead: o.KeepHead, PosEmbedAntialias: o.PosEmbedAntialias, Attention: o.Attention, Pretrained: pre}, nil
}
