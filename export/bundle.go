package export

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"

	"vitc/export/bundle"
	"vitc/export/hw"
	"vitc/export/intmath"
	"vitc/export/isa"
	"vitc/export/sim"
	"vitc/vit"
)

// Bundle file names: docs/bundle.md specifies each.
const (
	WeightsFile     = "weights.bin"
	ProgramFile     = "program.bin"
	DisasmFile      = "program.asm"
	HWFile          = "hw.json"
	HeaderFile      = "vitc_isa.h"
	FloatModelFile  = "reference/model.safetensors"
	goldenDir       = "golden/"
	GoldenInputName = "input"
)

// ModelInfo is the manifest's "model" object: the architecture and how to
// feed it.
type ModelInfo struct {
	Config     vit.Config `json:"config"`
	Dataset    string     `json:"dataset,omitempty"`
	NormMean   []float32  `json:"norm_mean,omitempty"`
	NormStd    []float32  `json:"norm_std,omitempty"`
	ClassNames []string   `json:"class_names,omitempty"`
	// Input is the int8 (or int16) matrix the program reads: (patches, C·p·p).
	InputShape []int `json:"input_shape"`
}

// QuantInfo is the manifest's "quant" object.
type QuantInfo struct {
	// InputScale quantizes the normalised image: q = clamp(round(x/s)).
	InputScale  float64            `json:"input_scale"`
	LogitScale  float64            `json:"logit_scale"`
	Scales      map[string]float64 `json:"activation_scales"`
	CalibImages int                `json:"calibration_images"`
	CalibData   string             `json:"calibration_data"`
	// CalibMethod is how the activation scales were chosen (absmax when
	// absent), CalibPercentile the percentile method's percentile.
	CalibMethod     string  `json:"calibration_method,omitempty"`
	CalibPercentile float64 `json:"calibration_percentile,omitempty"`
	// ActBits is the activation width, 8 or 16; absent (bundles written
	// before W8A16) means 8.
	ActBits int `json:"act_bits,omitempty"`
	// ActBitsAuto is set when --act-bits auto chose ActBits.
	ActBitsAuto *AutoChoice `json:"act_bits_auto,omitempty"`
}

// Bits is the activation width, 8 unless the manifest says 16.
func (q QuantInfo) Bits() int {
	if q.ActBits == 16 {
		return 16
	}
	return 8
}

// Options describe one export.
type Options struct {
	HW          hw.Config
	Meta        vit.Meta
	CalibData   string // recorded in the manifest
	CalibImages int
	Created     string // e.g. "vitc dev"
	// Batch is CompileOptions.Batch: above 1, the weights stay resident
	// across that many images.
	Batch int
	// Auto, when set, records --act-bits auto's choice in the manifest.
	Auto *AutoChoice
}

// WriteBundle compiles qm and writes the bundle directory: the float model
// m rides along for the simulator's agreement check, and golden is the
// normalised image whose run becomes the golden vectors.
func WriteBundle(dir string, m *vit.Model, qm *QModel, golden []float32, o Options) (*Compiled, error) {
	cp, err := CompileWith(qm, o.HW, CompileOptions{Batch: o.Batch})
	if err != nil {
		return nil, err
	}
	prog, err := isa.EncodeProgram(cp.Program)
	if err != nil {
		return nil, fmt.Errorf("encoding the program: %w", err)
	}
	files := map[string][]byte{
		WeightsFile: cp.Weights,
		ProgramFile: prog,
		DisasmFile:  []byte(isa.Disassemble(cp.Program)),
		HeaderFile:  []byte(isa.CHeader()),
	}
	hwJSON, err := json.MarshalIndent(o.HW, "", "  ")
	if err != nil {
		return nil, err
	}
	files[HWFile] = append(hwJSON, '\n')
	var model bytes.Buffer
	if err := m.Encode(&model, o.Meta); err != nil {
		return nil, err
	}
	files[FloatModelFile] = model.Bytes()

	cfg := qm.Config
	info := ModelInfo{Config: cfg, Dataset: o.Meta.Dataset, NormMean: o.Meta.NormMean, NormStd: o.Meta.NormStd,
		ClassNames: o.Meta.ClassNames, InputShape: []int{cfg.Patches(), cfg.Channels * cfg.Patch * cfg.Patch}}
	quant := QuantInfo{InputScale: qm.Scales["input"], LogitScale: qm.Scales["logits"], Scales: qm.Scales,
		CalibImages: o.CalibImages, CalibData: o.CalibData, CalibMethod: qm.Calib.Method, ActBits: qm.bits(), ActBitsAuto: o.Auto}
	if qm.Calib.Method == CalibPercentile {
		quant.CalibPercentile = qm.Calib.Percentile
	}
	man := &bundle.Manifest{Created: o.Created, HWFingerprint: o.HW.Fingerprint(), Tensors: cp.Tensors,
		Memory: cp.Memory}
	if man.Model, err = json.Marshal(info); err != nil {
		return nil, err
	}
	if man.Quant, err = json.Marshal(quant); err != nil {
		return nil, err
	}
	man.Sections = []bundle.Section{
		{Name: "weights", File: WeightsFile, Bytes: int64(len(cp.Weights)), Align: align, DRAMAddr: 0},
		{Name: "program", File: ProgramFile, Bytes: int64(len(prog)), Align: isa.Size, DRAMAddr: -1},
	}
	man.Program = bundle.Program{File: ProgramFile, Disassembly: DisasmFile, Instructions: len(cp.Program),
		InstrBytes: isa.Size, Layers: cp.Layers}
	if cp.Batch > 1 {
		man.Program.Batch = cp.Batch
	}
	if cp.Lockstep > 1 {
		man.Program.Lockstep = cp.Lockstep
	}

	// Golden vectors: the input and every stored value of one run of the
	// integer reference (the simulator must reproduce them; vitc sim checks).
	input := qm.QuantizeInput(golden)
	tr := qm.Reference(input)
	addGolden := func(name, dtype string, shape []int, addr int64, data []byte) {
		bin, hex := goldenDir+name+".bin", goldenDir+name+".hex"
		files[bin] = data
		files[hex] = bundle.HexWords(data, sizeOf(dtype))
		man.Golden = append(man.Golden, bundle.Golden{Name: name, File: bin, Hex: hex, DType: dtype, Shape: shape, DRAMAddr: addr})
	}
	adt := qm.actDType()
	addGolden(GoldenInputName, adt, info.InputShape, cp.Memory.InputAddr, actBytes(input, qm.bits()))
	kept := 0
	for _, s := range cp.Slots {
		var data []byte
		switch {
		case s.Name == "embed":
			data = actBytes(tr.Embed, qm.bits())
		case strings.HasPrefix(s.Name, "block"):
			var l int
			fmt.Sscanf(s.Name, "block%d", &l)
			data = actBytes(tr.Blocks[l], qm.bits())
		case strings.HasPrefix(s.Name, "kept"):
			data = le32(tr.Kept[kept])
			kept++
		case s.Name == "logits":
			data = le32(tr.Logits)
		}
		if int64(len(data)) != s.Bytes() {
			return nil, fmt.Errorf("golden %s: %d bytes for a %d-byte slot", s.Name, len(data), s.Bytes())
		}
		addGolden(s.Name, s.DType, s.Shape, s.Addr, data)
	}
	if err := bundle.Write(dir, man, files); err != nil {
		return nil, err
	}
	return cp, nil
}

func sizeOf(dtype string) int {
	switch dtype {
	case "int8":
		return 1
	case "int16":
		return 2
	}
	return 4
}

// actBytes encodes activation values as int8 bytes or little-endian int16.
func actBytes(xs []int16, bits int) []byte {
	if bits != 16 {
		out := make([]byte, len(xs))
		for i, v := range xs {
			out[i] = byte(int8(v))
		}
		return out
	}
	out := make([]byte, 2*len(xs))
	for i, v := range xs {
		binary.LittleEndian.PutUint16(out[2*i:], uint16(v))
	}
	return out
}

// LoadedBundle is a bundle read back, verified and ready to simulate.
type LoadedBundle struct {
	Dir      string
	Manifest bundle.Manifest
	Model    ModelInfo
	Quant    QuantInfo
	Program  *sim.Program
	Golden   []int16    // the golden input (int8 or int16 values)
	Expected *sim.Trace // the golden values
	files    map[string][]byte
}

// OpenBundle reads dir, verifies every checksum, and refuses a bundle
// compiled for hardware other than h.
func OpenBundle(dir string, h hw.Config) (*LoadedBundle, error) {
	b, err := bundle.Read(dir)
	if err != nil {
		return nil, err
	}
	man := b.Manifest
	if man.HWFingerprint != h.Fingerprint() {
		return nil, fmt.Errorf("bundle %s was compiled for hardware %s, not for %q (%s): export it again for this hardware", dir, man.HWFingerprint, h.Name, h.Fingerprint())
	}
	// The copy of hw.json must be the configuration the manifest names.
	if bh, err := hw.Parse(b.Files[HWFile]); err != nil || bh.Fingerprint() != man.HWFingerprint {
		return nil, fmt.Errorf("bundle %s: %s does not match the manifest's hardware fingerprint %s", dir, HWFile, man.HWFingerprint)
	}
	lb := &LoadedBundle{Dir: dir, Manifest: man, files: b.Files}
	if err := strictJSON(man.Model, &lb.Model); err != nil {
		return nil, fmt.Errorf("bundle %s: manifest model: %w", dir, err)
	}
	if err := strictJSON(man.Quant, &lb.Quant); err != nil {
		return nil, fmt.Errorf("bundle %s: manifest quant: %w", dir, err)
	}
	if err := lb.Model.Config.Validate(); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	if lb.Quant.ActBits != 0 && lb.Quant.ActBits != 8 && lb.Quant.ActBits != 16 {
		return nil, fmt.Errorf("bundle %s: quant act_bits %d: want 8 or 16", dir, lb.Quant.ActBits)
	}
	if !(lb.Quant.InputScale > 0) {
		return nil, fmt.Errorf("bundle %s: input scale %g", dir, lb.Quant.InputScale)
	}
	progBytes, err := b.Section("program")
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	instrs, err := isa.DecodeProgram(progBytes)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %s: %w", dir, ProgramFile, err)
	}
	weights, err := b.Section("weights")
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	for _, s := range man.Sections {
		if s.Name == "weights" && s.DRAMAddr != 0 {
			return nil, fmt.Errorf("bundle %s: the weights section is at DRAM 0x%x; this simulator loads it at 0", dir, s.DRAMAddr)
		}
	}
	p := &sim.Program{HW: h, Instrs: instrs, Weights: weights, DRAMBytes: man.Memory.DRAMBytes,
		InputAddr: man.Memory.InputAddr, InputLen: man.Memory.InputBytes, Batch: man.Program.Batch,
		Lockstep: man.Program.Lockstep, ActBytes: lb.Quant.Bits() / 8}
	for _, l := range man.Program.Layers {
		p.Layers = append(p.Layers, sim.LayerRange{Name: l.Name, First: l.First, Last: l.Last})
	}
	lb.Expected = &sim.Trace{}
	for _, g := range man.Golden {
		data, _, err := b.GoldenBytes(g.Name)
		if err != nil {
			return nil, fmt.Errorf("bundle %s: %w", dir, err)
		}
		adt := "int8"
		if lb.Quant.Bits() == 16 {
			adt = "int16"
		}
		if g.Name == GoldenInputName {
			if g.DType != adt {
				return nil, fmt.Errorf("bundle %s: golden input has dtype %s; %d-bit activations are %s", dir, g.DType, lb.Quant.Bits(), adt)
			}
			lb.Golden = sim.ActValues(adt, data)
			continue
		}
		if g.DType != adt && g.DType != "int32" {
			return nil, fmt.Errorf("bundle %s: golden %s has dtype %s", dir, g.Name, g.DType)
		}
		p.Slots = append(p.Slots, bundle.Slot{Name: g.Name, Addr: g.DRAMAddr, DType: g.DType, Shape: g.Shape})
		lb.Expected.Add(g.Name, g.DType, data)
	}
	if lb.Golden == nil || len(p.Slots) == 0 {
		return nil, fmt.Errorf("bundle %s has no golden input or outputs", dir)
	}
	lb.Program = p
	return lb, nil
}

// FloatModel is the float checkpoint the bundle carries.
func (lb *LoadedBundle) FloatModel() (*vit.Model, vit.Meta, error) {
	return vit.LoadBytes(lb.Dir+"/"+FloatModelFile, lb.files[FloatModelFile], vit.LoadOptions{})
}

// QuantizeInput maps a normalised image to the program's int8 (or int16)
// input with the bundle's input scale.
func (lb *LoadedBundle) QuantizeInput(img []float32) []int16 {
	c := lb.Model.Config
	return quantizeVec(patchesOf(img, c.Channels, c.Image, c.Patch), lb.Quant.InputScale, intmath.Top(lb.Quant.Bits()))
}

func strictJSON(raw json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
