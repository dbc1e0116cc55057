package vit

import (
	"fmt"
	"slices"

	"vitc/datasets"
	"vitc/internal/opterr"
)

// ErrDataMismatch: data that does not fit a model (channels, size,
// classes or their names), refused rather than adapted silently.
var ErrDataMismatch = fmt.Errorf("the data does not fit the model")

// FitOptions say how far data may be adapted to a model.
type FitOptions struct {
	// Adapt converts channels and resizes fixed-size images to the model's
	// input; without it such data is refused.
	Adapt bool
}

// DataOptions are the datasets.Options that read data for a model of cfg:
// converted to its channels and resized to its input (FitData then says
// whether that was an adaptation the caller allowed).
func DataOptions(cfg Config, base datasets.Options) datasets.Options {
	base.ImageSize, base.Channels = cfg.Image, cfg.Channels
	return base
}

// FitData checks that ds, read with DataOptions, fits a model of cfg that
// records meta, and names its classes: the data's own names in the
// model's order when they are a subset of the model's (labels moved to
// match), the model's names when the data has none and is the data the
// model records (spec equal to meta.Dataset). It refuses other channels or
// image sizes unless opts.Adapt, more classes than the model predicts, and
// class names that are not the model's. The lines say what was adapted.
func FitData(cfg Config, meta Meta, ds *datasets.Dataset, spec string, opts FitOptions) ([]string, error) {
	var lines []string
	adapt := func(what string) error {
		if !opts.Adapt {
			return &opterr.Error{What: fmt.Sprintf("data %s %s", spec, what), Advice: "allow the conversion with %s",
				Option: "FitOptions.Adapt", Kind: ErrDataMismatch}
		}
		return nil
	}
	if ds.NativeC != cfg.Channels {
		if err := adapt(fmt.Sprintf("has %d-channel images, the model takes %d", ds.NativeC, cfg.Channels)); err != nil {
			return nil, err
		}
		how := "luma"
		if cfg.Channels == 3 {
			how = "grey repeated"
		}
		lines = append(lines, fmt.Sprintf("converted the %d-channel images of %s to %d (%s)", ds.NativeC, spec, cfg.Channels, how))
	}
	switch {
	case ds.NativeH == 0:
		lines = append(lines, fmt.Sprintf("resized the images of several sizes in %s to %d×%d (shorter side to %d, centre crop)",
			spec, cfg.Image, cfg.Image, int(float64(cfg.Image)/datasets.DefaultCropPct)))
	case ds.NativeH != cfg.Image || ds.NativeW != cfg.Image:
		if err := adapt(fmt.Sprintf("has %d×%d images, the model takes %d×%d", ds.NativeW, ds.NativeH, cfg.Image, cfg.Image)); err != nil {
			return nil, err
		}
		lines = append(lines, fmt.Sprintf("resized the %d×%d images of %s to %d×%d", ds.NativeW, ds.NativeH, spec, cfg.Image, cfg.Image))
	}
	if len(ds.Classes) > cfg.Classes {
		return nil, fmt.Errorf("data %s has %d classes, the model predicts %d: %w", spec, len(ds.Classes), cfg.Classes, ErrDataMismatch)
	}
	fit, err := FitClassNames(meta.ClassNames, ds, spec, meta.Dataset)
	if err != nil {
		return nil, err
	}
	if fit.Line != "" {
		lines = append(lines, fit.Line)
	}
	return lines, nil
}

// ClassFit is what FitClassNames did to the data's classes; a run that
// reads the data again (a resumed one) repeats it through
// datasets.Options.ClassOrder and ClassNames.
type ClassFit struct {
	// Order, when set, is the model's names: the data's labels were moved
	// into their order.
	Order []string
	// Adopted, when set, are the model's names given to data that names
	// none.
	Adopted []string
	// Line says what was done, for people ("": nothing to say).
	Line string
}

// FitClassNames puts ds's classes into the order of a model's names (see
// FitData); recorded is the data spec the model records.
func FitClassNames(model []string, ds *datasets.Dataset, spec, recorded string) (ClassFit, error) {
	modelNamed := len(model) > 0 && !datasets.IndexNames(model)
	switch {
	case !modelNamed:
		return ClassFit{}, nil
	case !ds.NamesClasses():
		if spec != recorded {
			return ClassFit{}, &opterr.Error{What: fmt.Sprintf("data %s names no classes and is not the data the model records (%s); the model's are %s",
				spec, cmpOr(recorded, "none"), shortList(model)), Advice: "name the data's classes in label order with %s", Option: "datasets.Options.ClassNames", Kind: ErrDataMismatch}
		}
		if len(ds.Classes) > len(model) {
			return ClassFit{}, fmt.Errorf("data %s has %d classes, the model names %d: %w", spec, len(ds.Classes), len(model), ErrDataMismatch)
		}
		names := append([]string(nil), model[:len(ds.Classes)]...)
		ds.Classes, ds.Named = names, true
		return ClassFit{Adopted: names}, nil
	}
	order := make([]int, len(ds.Classes))
	for i, c := range ds.Classes {
		j := slices.Index(model, c)
		if j < 0 {
			return ClassFit{}, &opterr.Error{What: fmt.Sprintf("data %s has class %q, which the model does not name (its classes: %s)", spec, c, shortList(model)),
				Advice: "name the data's classes as the model does, in label order, with %s", Option: "datasets.Options.ClassNames", Kind: ErrDataMismatch}
		}
		order[i] = j
	}
	if slices.Equal(order, identity(len(order))) && len(ds.Classes) == len(model) {
		return ClassFit{}, nil
	}
	moved := !slices.Equal(order, identity(len(order)))
	ds.Relabel(order, model)
	fit := ClassFit{Order: append([]string(nil), model...)}
	if moved {
		fit.Line = fmt.Sprintf("labels of %s put in the model's class order (%s)", spec, shortList(model))
	}
	return fit, nil
}

func identity(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
