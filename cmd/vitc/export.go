package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"vitc/datasets"
	"vitc/export"
	"vitc/export/hw"
	"vitc/vit"
)

type exportOptions struct {
	checkpointFlags
	dataFlags
	HW          string
	Calib       string
	CalibImages int
	CalibMethod string
	CalibPct    float64
	GoldenIndex int
	Seed        int64
	Out         string
	JSON        bool
	Batch       int
	ActBits     string
}

func newExportCmd() *cobra.Command {
	o := &exportOptions{}
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Quantize a checkpoint (int8 weights, int8 or int16 activations) and write an accelerator bundle: weights, program, golden vectors",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runExport(o, cmd.OutOrStdout())
		},
	}
	o.checkpointFlags.bind(cmd)
	f := cmd.Flags()
	o.dataFlags.bind(f, false)
	f.StringVar(&o.HW, "hw", "", "hardware config hw.json (default: vitc's, export/hw/default.json)")
	f.StringVar(&o.Calib, "calib", "", "calibration data spec; its train split is used (default: the checkpoint's data)")
	f.IntVar(&o.CalibImages, "calib-images", 1024, "calibration images (at most the train split)")
	f.StringVar(&o.CalibMethod, "calib-method", "", "activation clipping: absmax, percentile (--calib-percentile of the magnitudes) or mse (the clip minimising the quantisation error at the activation width) (default: "+export.DefaultCalibMethod+" for --act-bits 8, "+export.DefaultCalibMethod16+" for 16)")
	f.Float64Var(&o.CalibPct, "calib-percentile", export.DefaultCalibPercentile, "percentile of activation magnitudes that sets the int8 range (--calib-method percentile)")
	f.IntVar(&o.GoldenIndex, "golden-index", 0, "test image whose run becomes the golden vectors")
	f.Int64Var(&o.Seed, "seed", 0, "seed of the synthetic set (when the data is synthetic)")
	f.StringVar(&o.Out, "out", "", "bundle directory to write")
	f.BoolVar(&o.JSON, "json", false, "print one JSON object")
	f.IntVar(&o.Batch, "batch", 1, "compile for throughput: keep the weights resident in the weight buffer across this many images (they must fit it; 1: reload them per image)")
	f.StringVar(&o.ActBits, "act-bits", "8", "activation width: 8, 16 (W8A16: int16 activations, int8 weights; more accurate, more cycles and activation buffer) or auto (8 when int8 agrees with float on ≥ 99.5% of the calibration images, else 16)")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// exportReport is `vitc export --json`.
type exportReport struct {
	Bundle        string `json:"bundle"`
	HW            string `json:"hw"`
	HWFingerprint string `json:"hw_fingerprint"`
	Instructions  int    `json:"instructions"`
	WeightBytes   int    `json:"weight_bytes"`
	SparseLayers  int    `json:"block_sparse_matrices"`
	TilesStored   int    `json:"tiles_stored"`
	TilesDense    int    `json:"tiles_dense"`
	CalibImages   int    `json:"calibration_images"`
	CalibData     string `json:"calibration_data"`
	CalibMethod   string `json:"calibration_method"`
	ActBits       int    `json:"act_bits"`
	// AutoInt8Agreement is --act-bits auto's measure: int8's top-1
	// agreement with float on the calibration images.
	AutoInt8Agreement *float64 `json:"act_bits_auto_int8_agreement,omitempty"`
	Batch             int      `json:"batch"`
	Lockstep          int      `json:"lockstep"`
}

func loadHW(path string) (hw.Config, error) {
	if path == "" {
		return hw.Default(), nil
	}
	return hw.Load(path)
}

func runExport(o *exportOptions, stdout io.Writer) error {
	h, err := loadHW(o.HW)
	if err != nil {
		return err
	}
	if o.CalibImages < 1 {
		return fmt.Errorf("--calib-images %d: need at least one image", o.CalibImages)
	}
	switch o.CalibMethod {
	case "", export.CalibAbsmax, export.CalibPercentile, export.CalibMSE:
	default:
		return fmt.Errorf("--calib-method %q: want %s, %s or %s", o.CalibMethod, export.CalibAbsmax, export.CalibPercentile, export.CalibMSE)
	}
	if o.Batch < 1 || o.Batch > 1<<20 {
		return fmt.Errorf("--batch %d: want 1 to %d images", o.Batch, 1<<20)
	}
	if !(o.CalibPct > 0 && o.CalibPct <= 100) {
		return fmt.Errorf("--calib-percentile %g: want a value in (0, 100]", o.CalibPct)
	}
	var bits int
	switch o.ActBits {
	case "8":
		bits = 8
	case "16":
		bits = 16
	case "auto":
	default:
		return fmt.Errorf("--act-bits %q: want 8, 16 or auto", o.ActBits)
	}
	m, meta, err := o.load()
	if err != nil {
		return err
	}
	spec := o.Calib
	if spec == "" {
		if meta.Dataset == "" {
			return errors.New("the checkpoint does not record its data: pass --calib SPEC")
		}
		spec = meta.Dataset
	}
	ds, err := o.loadDataFor(spec, o.Seed, m, o.cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	if err := checkFits(m, ds, spec); err != nil {
		return err
	}
	stats := statsFor(meta, ds)
	n := min(o.CalibImages, ds.Train.Len())
	calib, _, n := datasets.NewLoader(ds, &ds.Train, datasets.LoaderOptions{Batch: n, Stats: stats}).Batch(0, 0)
	if o.GoldenIndex < 0 || o.GoldenIndex >= ds.Test.Len() {
		return fmt.Errorf("--golden-index %d: the test split has %d images", o.GoldenIndex, ds.Test.Len())
	}
	test := datasets.NewLoader(ds, &ds.Test, datasets.LoaderOptions{Batch: 1, Stats: stats})
	golden, _, _ := test.Batch(0, o.GoldenIndex)
	var auto *export.AutoChoice
	if bits == 0 {
		// auto: int8 unless it disagrees with float on the calibration
		// images more than the target allows.
		q8, err := export.QuantizeWith(m, calib, n, export.CalibOptions{Method: o.CalibMethod, Percentile: o.CalibPct, ActBits: 8})
		if err != nil {
			return err
		}
		auto = &export.AutoChoice{Int8Agreement: q8.Agreement(calib, vit.Predict(m, calib, n, 64), n), Images: n, Threshold: export.AutoAgreement}
		bits = 8
		if auto.Int8Agreement < export.AutoAgreement {
			bits = 16
		}
	}
	qm, err := export.QuantizeWith(m, calib, n, export.CalibOptions{Method: o.CalibMethod, Percentile: o.CalibPct, ActBits: bits})
	if err != nil {
		return err
	}
	meta.Dataset = spec
	if len(meta.NormMean) == 0 {
		meta.NormMean, meta.NormStd = stats.Mean, stats.Std
	}
	cp, err := export.WriteBundle(o.Out, m, qm, golden, export.Options{HW: h, Meta: meta, CalibData: spec, CalibImages: n, Created: "vitc " + version, Batch: o.Batch, Auto: auto})
	var fit *export.WeightsFitError
	if errors.As(err, &fit) {
		return fmt.Errorf("--batch %d: the weights need %d bytes of weight buffer; %s has %d (use --batch 1, or a --hw with a larger wgt_buffer_bytes)", o.Batch, fit.Need, fit.HW, fit.Have)
	}
	if err != nil {
		return err
	}
	rep := exportReport{Bundle: o.Out, HW: h.Name, HWFingerprint: h.Fingerprint(), Instructions: len(cp.Program),
		WeightBytes: len(cp.Weights), SparseLayers: cp.SparseMatrices, TilesStored: cp.StoredTiles,
		TilesDense: cp.DenseTiles, CalibImages: n, CalibData: spec, CalibMethod: qm.Calib.Method, ActBits: qm.Calib.ActBits, Batch: cp.Batch, Lockstep: cp.Lockstep}
	if auto != nil {
		rep.AutoInt8Agreement = &auto.Int8Agreement
	}
	if o.JSON {
		return printJSON(stdout, rep)
	}
	fmt.Fprintf(stdout, "wrote %s for %s (%s)\n", o.Out, h.Name, h.Fingerprint())
	fmt.Fprintf(stdout, "  program      %d instructions\n", rep.Instructions)
	fmt.Fprintf(stdout, "  weights      %d bytes; %d of %d %d×%d tiles stored, %d matrices block-sparse\n",
		rep.WeightBytes, rep.TilesStored, rep.TilesDense, h.Block, h.Block, rep.SparseLayers)
	method := qm.Calib.Method
	if method == export.CalibPercentile {
		method = fmt.Sprintf("%s %g", method, qm.Calib.Percentile)
	}
	fmt.Fprintf(stdout, "  calibration  %d images of %s, %s\n", n, spec, method)
	fmt.Fprintf(stdout, "  activations  int%d (weights int8 per output channel)\n", qm.Calib.ActBits)
	if auto != nil {
		fmt.Fprintf(stdout, "               auto: int8 agreed with float on %.2f%% of the %d calibration images (threshold %.1f%%)\n",
			100*auto.Int8Agreement, auto.Images, 100*auto.Threshold)
	}
	if cp.Batch > 1 {
		fmt.Fprintf(stdout, "  batch        %d images per load of the weights (resident in the weight buffer), in lockstep groups of %d\n", cp.Batch, cp.Lockstep)
	}
	return nil
}

// checkFits refuses data of another shape than the model's.
func checkFits(m *vit.Model, ds *datasets.Dataset, spec string) error {
	if ds.C != m.Channels || ds.H != m.Image || ds.W != m.Image {
		return fmt.Errorf("data %s has %dx%dx%d images, the model takes %dx%dx%d", spec, ds.C, ds.H, ds.W, m.Channels, m.Image, m.Image)
	}
	if len(ds.Classes) > m.Classes {
		return fmt.Errorf("data %s has %d classes, the model predicts %d", spec, len(ds.Classes), m.Classes)
	}
	return nil
}
