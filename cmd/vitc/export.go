package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"vitc/export"
	"vitc/export/hw"
	"vitc/export/onnx"
	"vitc/vit"
)

type exportOptions struct {
	checkpointFlags
	dataFlags
	HW          string
	Data        string
	CalibImages int
	CalibMethod string
	CalibPct    float64
	GoldenIndex int
	Seed        int64
	Out         string
	JSON        bool
	Batch       int
	ActBits     string
	Format      string
	// Set on the command line: a pruned model's recorded target does not
	// replace them.
	hwSet, batchSet bool
}

func newExportCmd() *cobra.Command {
	o := &exportOptions{}
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Quantize a checkpoint (int8 weights, int8 or int16 activations) and write an accelerator bundle: weights, program, golden vectors; or write the float model as ONNX (--format onnx)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.hwSet, o.batchSet = cmd.Flags().Changed("hw"), cmd.Flags().Changed("batch")
			return runExport(o, cmd.OutOrStdout())
		},
	}
	o.checkpointFlags.bind(cmd)
	f := cmd.Flags()
	o.dataFlags.bind(f, false)
	o.dataFlags.bindAdapt(f)
	f.StringVar(&o.HW, "hw", "", "hardware config hw.json (default: the one a pruned model was made for, else vitc's, export/hw/default.json)")
	f.StringVar(&o.Data, "data", "", "data whose train split calibrates and whose test split gives the golden image (default: the checkpoint's)")
	f.StringVar(&o.Data, "calib", "", "old name of --data")
	_ = f.MarkDeprecated("calib", "use --data")
	f.IntVar(&o.CalibImages, "calib-images", 1024, "calibration images (at most the train split)")
	f.StringVar(&o.CalibMethod, "calib-method", "", "activation clipping: absmax, percentile (--calib-percentile of the magnitudes) or mse (the clip minimising the quantisation error at the activation width) (default: "+export.DefaultCalibMethod+" for --act-bits 8, "+export.DefaultCalibMethod16+" for 16)")
	f.Float64Var(&o.CalibPct, "calib-percentile", export.DefaultCalibPercentile, "percentile of activation magnitudes that sets the int8 range (--calib-method percentile)")
	f.IntVar(&o.GoldenIndex, "golden-index", 0, "test image whose run becomes the golden vectors")
	f.Int64Var(&o.Seed, "seed", 0, "seed of the synthetic set (when the data is synthetic)")
	f.StringVar(&o.Format, "format", "bundle", "what to write: bundle (the accelerator's int8 bundle directory) or onnx (the float model as one ONNX file, opset 17, for onnxruntime and the like; softmax, Taylor and pruned models, token pruning as a top-k gather)")
	f.StringVar(&o.Out, "out", "", "bundle directory to write (--format onnx: the .onnx file)")
	f.BoolVar(&o.JSON, "json", false, "print one JSON object")
	f.IntVar(&o.Batch, "batch", 1, "compile for throughput: keep the weights resident in the weight buffer across this many images (they must fit it; 1: reload them per image) (default: the batch a pruned model was made for, else 1)")
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
	switch o.Format {
	case "onnx":
		return runExportONNX(o, stdout)
	case "bundle":
	default:
		return fmt.Errorf("--format %q: want bundle or onnx", o.Format)
	}
	switch o.CalibMethod {
	case "", export.CalibAbsmax, export.CalibPercentile, export.CalibMSE:
	default:
		return fmt.Errorf("--calib-method %q: want %s, %s or %s", o.CalibMethod, export.CalibAbsmax, export.CalibPercentile, export.CalibMSE)
	}
	if o.Batch < 1 || o.Batch > 1<<20 {
		return fmt.Errorf("--batch %d: want 1 to %d images", o.Batch, 1<<20)
	}
	if o.CalibImages < 1 {
		return fmt.Errorf("--calib-images %d: need at least one image", o.CalibImages)
	}
	if !(o.CalibPct > 0 && o.CalibPct <= 100) {
		return fmt.Errorf("--calib-percentile %g: want a value in (0, 100]", o.CalibPct)
	}
	bits, err := actBits(o.ActBits)
	if err != nil {
		return err
	}
	m, meta, ck, err := o.load()
	if err != nil {
		return err
	}
	if m.DistToken {
		return export.ErrDistToken
	}
	h, batch, err := exportTarget(o.HW, o.hwSet, o.Batch, o.batchSet, meta, o.notes)
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
	if o.GoldenIndex < 0 || o.GoldenIndex >= ds.Test.Len() {
		return fmt.Errorf("--golden-index %d: the test split has %d images", o.GoldenIndex, ds.Test.Len())
	}
	if err := checkHeads("checkpoint", ck, ds, o.notes); err != nil {
		return err
	}
	ex, err := export.Export(o.Out, m, meta, ds, export.ExportOptions{HW: h, Batch: batch, ActBits: bits,
		Calib: export.CalibOptions{Method: o.CalibMethod, Percentile: o.CalibPct}, CalibImages: o.CalibImages,
		GoldenIndex: o.GoldenIndex, Data: spec, Created: "vitc " + version})
	var fit *export.WeightsFitError
	if errors.As(err, &fit) {
		return fmt.Errorf("--batch %d: the weights need %d bytes of weight buffer; %s has %d (use --batch 1, or a --hw with a larger wgt_buffer_bytes)", batch, fit.Need, fit.HW, fit.Have)
	}
	if err != nil {
		return flagError(err)
	}
	o.notes.flush() // after the bundle is written: refused input gets one line
	rep := newExportReport(ex, h, spec)
	if o.JSON {
		return printJSON(stdout, rep)
	}
	printExport(stdout, ex, h, spec)
	return nil
}

// actBits maps --act-bits to export.ExportOptions.ActBits (0: auto).
func actBits(flag string) (int, error) {
	switch flag {
	case "8":
		return 8, nil
	case "16":
		return 16, nil
	case "auto":
		return 0, nil
	}
	return 0, fmt.Errorf("--act-bits %q: want 8, 16 or auto", flag)
}

// exportTarget settles the hardware and batch of an export: the flags, else
// what a pruned model records it was made for (so that its export states
// the speed-ups its prune report did), else vitc's hardware at batch 1.
func exportTarget(hwPath string, hwSet bool, batch int, batchSet bool, meta vit.Meta, n *notes) (hw.Config, int, error) {
	t, ok, err := export.TargetOf(meta)
	if err != nil {
		return hw.Config{}, 0, err
	}
	h, err := loadHW(hwPath)
	if err != nil {
		return hw.Config{}, 0, err
	}
	if ok && !hwSet {
		h = t.HW
		n.printf("hardware %s (%s): the one the model was pruned for (set it with --hw)", h.Name, h.Fingerprint())
	}
	if ok && !batchSet {
		batch = t.Batch
		n.printf("batch %d: the one the model's speed-ups were stated for (set it with --batch)", batch)
	}
	return h, batch, nil
}

func newExportReport(ex *export.Exported, h hw.Config, spec string) exportReport {
	cp, qm := ex.Compiled, ex.Quant
	rep := exportReport{Bundle: ex.Dir, HW: h.Name, HWFingerprint: h.Fingerprint(), Instructions: len(cp.Program),
		WeightBytes: len(cp.Weights), SparseLayers: cp.SparseMatrices, TilesStored: cp.StoredTiles,
		TilesDense: cp.DenseTiles, CalibImages: ex.CalibImages, CalibData: spec, CalibMethod: qm.Calib.Method, ActBits: qm.Calib.ActBits, Batch: cp.Batch, Lockstep: cp.Lockstep}
	if ex.Auto != nil {
		rep.AutoInt8Agreement = &ex.Auto.Int8Agreement
	}
	return rep
}

func printExport(w io.Writer, ex *export.Exported, h hw.Config, spec string) {
	cp, qm := ex.Compiled, ex.Quant
	fmt.Fprintf(w, "wrote %s for %s (%s)\n", ex.Dir, h.Name, h.Fingerprint())
	fmt.Fprintf(w, "  program      %d instructions\n", len(cp.Program))
	fmt.Fprintf(w, "  weights      %d bytes; %d of %d %d×%d tiles stored, %d matrices block-sparse\n",
		len(cp.Weights), cp.StoredTiles, cp.DenseTiles, h.Block, h.Block, cp.SparseMatrices)
	method := qm.Calib.Method
	if method == export.CalibPercentile {
		method = fmt.Sprintf("%s %g", method, qm.Calib.Percentile)
	}
	fmt.Fprintf(w, "  calibration  %d images of %s, %s\n", ex.CalibImages, spec, method)
	fmt.Fprintf(w, "  activations  int%d (weights int8 per output channel)\n", qm.Calib.ActBits)
	if a := ex.Auto; a != nil {
		fmt.Fprintf(w, "               auto: int8 agreed with float on %.2f%% of the %d calibration images (threshold %.1f%%)\n",
			100*a.Int8Agreement, a.Images, 100*a.Threshold)
	} else if qm.Calib.ActBits == 8 {
		fmt.Fprintf(w, "               (--act-bits auto measures int8's agreement with float first and takes 16 bits below %.1f%%)\n", 100*export.AutoAgreement)
	}
	batch := "1 image per load of the weights"
	if cp.Batch > 1 {
		batch = fmt.Sprintf("%d images per load of the weights (resident in the weight buffer), in lockstep groups of %d", cp.Batch, cp.Lockstep)
	}
	fmt.Fprintf(w, "  batch        %s\n", batch)
}

// runExportONNX writes the float model as ONNX: nothing of the bundle's
// (hardware, calibration data, activation width) applies.
func runExportONNX(o *exportOptions, stdout io.Writer) error {
	for _, flag := range []string{"hw", "batch", "act-bits", "calib-images", "calib-method", "calib-percentile", "golden-index", "data"} {
		if o.cmd.Flags().Changed(flag) {
			return fmt.Errorf("--%s configures the accelerator bundle: --format onnx writes the float model", flag)
		}
	}
	if !strings.HasSuffix(o.Out, ".onnx") {
		return fmt.Errorf("--out %s: name the ONNX file FILE.onnx", o.Out)
	}
	m, meta, _, err := o.load()
	if err != nil {
		return err
	}
	if err := onnx.Write(o.Out, m, version); err != nil {
		return err
	}
	o.notes.flush()
	fmt.Fprintf(stdout, "wrote %s: ONNX opset %d, input %s [batch, %d, %d, %d] normalised with mean %s std %s, output %s [batch, %d]",
		o.Out, onnx.Opset, onnx.InputName, m.Channels, m.Image, m.Image, floatList(meta.NormMean), floatList(meta.NormStd), onnx.OutputName, m.Classes)
	if m.TokenKeep > 0 && m.TokenKeep < 1 && len(m.TokenLayers) > 0 {
		fmt.Fprintf(stdout, "; token pruning after blocks %v as top-k gathers", m.TokenLayers)
	}
	fmt.Fprintln(stdout)
	return nil
}
