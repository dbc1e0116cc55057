package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"vitc/datasets"
	"vitc/vit"
)

// dataFlags say how images are read: resized, split when a folder has no
// test/, bad files skipped, classes named, and whether data of another
// shape than a model's may be adapted to it.
type dataFlags struct {
	ImageSize     int
	ValSplit      float64
	SkipBadImages bool
	ClassNames    []string
	AdaptData     bool
}

func (d *dataFlags) bind(f *pflag.FlagSet, withSize bool) {
	if withSize { // train resizes to its model's size
		f.IntVar(&d.ImageSize, "image-size", 0, "resize images to N×N (default: the data's; the checkpoint's with --init)")
	}
	f.Float64Var(&d.ValSplit, "val-split", 0, "folder data without test/: hold out this fraction of each class (deterministic)")
	f.BoolVar(&d.SkipBadImages, "skip-bad-images", false, "leave out image files that do not decode (counted) instead of stopping")
	f.StringSliceVar(&d.ClassNames, "class-names", nil, "the data's class names in label order, comma-separated or @FILE (one per line): for data whose files name none (digits, MNIST-format), or to rename")
}

// bindAdapt adds --adapt-data to the commands that run a given model.
func (d *dataFlags) bindAdapt(f *pflag.FlagSet) {
	f.BoolVar(&d.AdaptData, "adapt-data", false, "convert data of other channels and resize fixed-size images of another size to the model's input (default: refuse them)")
}

func (d *dataFlags) options(size int) (datasets.Options, error) {
	names, err := classNames(d.ClassNames)
	if err != nil {
		return datasets.Options{}, err
	}
	return datasets.Options{ImageSize: size, ValSplit: d.ValSplit, SkipBadImages: d.SkipBadImages, ClassNames: names}, nil
}

// optionsFor is options for reading spec with a model that records meta:
// the data the checkpoint records is split as it was (its --val-split)
// unless the flag says otherwise.
func (d *dataFlags) optionsFor(size int, spec string, meta vit.Meta) (datasets.Options, error) {
	opts, err := d.options(size)
	if err == nil && d.ValSplit == 0 && spec == meta.Dataset {
		opts.ValSplit = meta.ValSplit
	}
	return opts, err
}

// classNames resolves --class-names: a list, or @FILE with a name a line.
func classNames(flag []string) ([]string, error) {
	if len(flag) != 1 || !strings.HasPrefix(flag[0], "@") {
		return flag, nil
	}
	path := flag[0][1:]
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--class-names: %w", err)
	}
	var names []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			names = append(names, l)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("--class-names: %s names no classes", path)
	}
	return names, nil
}

// loadDataFor reads spec for a model of cfg that records meta (converted
// and resized to its input), and refuses data that does not fit it unless
// --adapt-data; what was adapted goes to n.
func (d *dataFlags) loadDataFor(spec string, seed int64, cfg vit.Config, meta vit.Meta, n *notes) (*datasets.Dataset, error) {
	opts, err := d.optionsFor(0, spec, meta)
	if err != nil {
		return nil, err
	}
	ds, err := datasets.LoadWith(spec, seed, vit.DataOptions(cfg, opts))
	if err != nil {
		return nil, flagError(err)
	}
	lines, err := vit.FitData(cfg, meta, ds, spec, vit.FitOptions{Adapt: d.AdaptData})
	if err != nil {
		return nil, flagError(err)
	}
	for _, l := range lines {
		n.printf("%s", l)
	}
	reportSkipped(ds, n)
	return ds, nil
}

func reportSkipped(ds *datasets.Dataset, n *notes) {
	if ds.Skipped > 0 {
		n.printf("skipped %d image files that do not decode", ds.Skipped)
	}
}

// fineTuneFlags are train's flags for --init: how its checkpoint (and a
// --teacher) is read and adapted to the data.
type fineTuneFlags struct {
	dataFlags
	readFlags
	KeepHead          bool
	PosEmbedAntialias bool
}

func (t *fineTuneFlags) bind(f *pflag.FlagSet) {
	t.dataFlags.bind(f, true)
	t.readFlags.bind(f, false)
	f.BoolVar(&t.KeepHead, "keep-head", false, "with --init: refuse data of another class count instead of starting a new head")
	f.BoolVar(&t.PosEmbedAntialias, "pos-embed-antialias", false, "with --init: resample pos_embed with antialias=True, as timm's checkpoint filter (default: plain bicubic)")
}

// readInit reads --init and settles the image size: --image-size, else
// the checkpoint's. Its line and the adaptations go to n.
func (o *trainOptions) readInit(n *notes) (*vit.Checkpoint, vit.InitOptions, error) {
	if o.Init == "" {
		switch {
		case o.KeepHead, o.PosEmbedAntialias:
			return nil, vit.InitOptions{}, fmt.Errorf("--keep-head and --pos-embed-antialias need --init")
		case o.Teacher == "" && (o.LNEps != 0 || o.Mean != nil || o.Std != nil):
			return nil, vit.InitOptions{}, fmt.Errorf("--ln-eps, --mean and --std describe an --init or --teacher checkpoint without vitc metadata")
		}
		return nil, vit.InitOptions{}, nil
	}
	r := o.readFlags
	r.Heads = o.Heads // train's --heads names a timm file's heads
	lo, err := r.options("", "")
	if err != nil {
		return nil, vit.InitOptions{}, err
	}
	lo.Log = n.printf
	pre, err := openCheckpoint("init", o.Init, lo, n)
	if err != nil {
		return nil, vit.InitOptions{}, err
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
	}
	if o.ImageSize%pre.Config.Patch != 0 {
		return nil, vit.InitOptions{}, fmt.Errorf("--image-size %d is not a multiple of the patch size %d of %s", o.ImageSize, pre.Config.Patch, o.Init)
	}
	return pre, vit.InitOptions{Load: lo, KeepHead: o.KeepHead, PosEmbedAntialias: o.PosEmbedAntialias, Attention: o.Attention, Pretrained: pre}, nil
}
