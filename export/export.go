package export

import (
	"fmt"
	"os"
	"path/filepath"

	"vitc/datasets"
	"vitc/export/hw"
	"vitc/vit"
)

// ExportOptions describe one export of a model on its data.
type ExportOptions struct {
	HW hw.Config
	// Batch is images per load of the weights (CompileOptions.Batch).
	Batch int
	// ActBits is the activation width, 8 or 16; 0 measures it (auto):
	// int8 unless int8 agrees with float on fewer than AutoAgreement of
	// the calibration images, then 16.
	ActBits int
	// Calib chooses the clipping method (its ActBits is set from ActBits).
	Calib CalibOptions
	// CalibImages is how many training images calibrate (at most the
	// split); GoldenIndex the test image whose run becomes the golden
	// vectors.
	CalibImages, GoldenIndex int
	// Data is the data spec ds was read from, recorded in the bundle.
	Data    string
	Created string // e.g. "vitc dev"
}

// Exported is what Export wrote.
type Exported struct {
	Dir         string
	Compiled    *Compiled
	Quant       *QModel
	Auto        *AutoChoice // the measurement of an auto activation width
	CalibImages int
}

// Export calibrates m on ds's training split, quantises it and writes the
// bundle directory dir (its parent folders made as needed, checked before
// the calibration starts). meta is recorded in the bundle, with the data
// and normalisation used.
func Export(dir string, m *vit.Model, meta vit.Meta, ds *datasets.Dataset, o ExportOptions) (*Exported, error) {
	switch {
	case o.CalibImages < 1:
		return nil, fmt.Errorf("calibration images %d: need at least one (ExportOptions.CalibImages)", o.CalibImages)
	case o.GoldenIndex < 0 || o.GoldenIndex >= ds.Test.Len():
		return nil, fmt.Errorf("golden index %d: the test split has %d images (ExportOptions.GoldenIndex)", o.GoldenIndex, ds.Test.Len())
	case o.Batch < 1:
		return nil, fmt.Errorf("batch %d: want at least 1 image (ExportOptions.Batch)", o.Batch)
	case o.ActBits != 0 && o.ActBits != 8 && o.ActBits != 16:
		return nil, fmt.Errorf("activation width %d: want 8, 16 or 0 for auto (ExportOptions.ActBits)", o.ActBits)
	}
	// A folder that cannot be made fails now, not after the calibration.
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(dir)), 0o755); err != nil {
		return nil, err
	}
	stats := datasets.Stats{Mean: meta.NormMean, Std: meta.NormStd}
	if len(stats.Mean) == 0 {
		stats = datasets.ComputeStats(ds)
		meta.NormMean, meta.NormStd = stats.Mean, stats.Std
	}
	n := min(o.CalibImages, ds.Train.Len())
	calib, _, n := datasets.NewLoader(ds, &ds.Train, datasets.LoaderOptions{Batch: n, Stats: stats}).Batch(0, 0)
	golden, _, _ := datasets.NewLoader(ds, &ds.Test, datasets.LoaderOptions{Batch: 1, Stats: stats}).Batch(0, o.GoldenIndex)
	out := &Exported{Dir: dir, CalibImages: n}
	bits := o.ActBits
	if bits == 0 {
		c := o.Calib
		c.ActBits = 8
		q8, err := QuantizeWith(m, calib, n, c)
		if err != nil {
			return nil, err
		}
		out.Auto = &AutoChoice{Int8Agreement: q8.Agreement(calib, vit.Predict(m, calib, n, 64), n), Images: n, Threshold: AutoAgreement}
		bits = 8
		if out.Auto.Int8Agreement < AutoAgreement {
			bits = 16
		}
	}
	c := o.Calib
	c.ActBits = bits
	qm, err := QuantizeWith(m, calib, n, c)
	if err != nil {
		return nil, err
	}
	out.Quant = qm
	meta.Dataset = o.Data
	cp, err := WriteBundle(dir, m, qm, golden, Options{HW: o.HW, Meta: meta, CalibData: o.Data, CalibImages: n, Created: o.Created, Batch: o.Batch, Auto: out.Auto})
	if err != nil {
		return nil, err
	}
	out.Compiled = cp
	return out, nil
}

// TargetOf is the accelerator and batch a pruned model was made for, as
// its checkpoint records them (ok false: none recorded).
func TargetOf(meta vit.Meta) (hw.Target, bool, error) {
	raw, ok := meta.Extensions[hw.TargetExtension]
	if !ok {
		return hw.Target{}, false, nil
	}
	t, err := hw.ParseTarget(raw)
	if err != nil {
		return hw.Target{}, false, fmt.Errorf("checkpoint metadata %s: %w", hw.TargetExtension, err)
	}
	return t, true, nil
}
