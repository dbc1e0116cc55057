package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"vitc/export"
	"vitc/export/bundle"
	"vitc/export/hw"
	"vitc/export/isa"
)

// bundleReport is `vitc inspect BUNDLE --json`.
type bundleReport struct {
	Bundle         string           `json:"bundle"`
	Created        string           `json:"created,omitempty"`
	Model          export.ModelInfo `json:"model"`
	HWFingerprint  string           `json:"hw_fingerprint"`
	HWName         string           `json:"hw_name"`
	MatchesDefault bool             `json:"matches_default_hw"`
	Files          int              `json:"files"`
	Bytes          int64            `json:"bytes"`
	Instructions   int              `json:"instructions"`
	Batch          int              `json:"batch"`    // images per load of the weights (1: reloaded per image)
	Lockstep       int              `json:"lockstep"` // images of a batch run instruction by instruction together
	Opcodes        map[string]int   `json:"opcodes"`
	Layers         []bundle.Range   `json:"layers"`
	Tensors        int              `json:"tensors"`
	SparseTensors  []string         `json:"block_sparse"`
	Golden         []string         `json:"golden"`
	Memory         bundle.Memory    `json:"memory"`
	// ActBits is the activation width (8 or 16), CalibMethod how the
	// activation scales were chosen: the manifest's quant object.
	ActBits     int    `json:"act_bits"`
	CalibMethod string `json:"calibration_method,omitempty"`
}

// runInspectBundle verifies a bundle (checksums, program decoding) and
// summarises it; it runs nothing.
func runInspectBundle(o *inspectOptions, stdout io.Writer) error {
	b, err := bundle.Read(o.Path)
	if err != nil {
		return err
	}
	man := b.Manifest
	rep := bundleReport{Bundle: o.Path, Created: man.Created, HWFingerprint: man.HWFingerprint, Files: len(man.Files),
		Tensors: len(man.Tensors), Layers: man.Program.Layers, Memory: man.Memory, Opcodes: map[string]int{},
		MatchesDefault: man.HWFingerprint == hw.Default().Fingerprint()}
	if err := json.Unmarshal(man.Model, &rep.Model); err != nil {
		return fmt.Errorf("bundle %s: manifest model: %w", o.Path, err)
	}
	if h, err := hw.Parse(b.Files[export.HWFile]); err == nil && h.Fingerprint() == man.HWFingerprint {
		rep.HWName = h.Name
	} else {
		return fmt.Errorf("bundle %s: %s does not match the manifest's hardware fingerprint", o.Path, export.HWFile)
	}
	prog, err := b.Section("program")
	if err != nil {
		return fmt.Errorf("bundle %s: %w", o.Path, err)
	}
	instrs, err := isa.DecodeProgram(prog)
	if err != nil {
		return fmt.Errorf("bundle %s: %w", o.Path, err)
	}
	var q export.QuantInfo
	if len(man.Quant) > 0 {
		if err := json.Unmarshal(man.Quant, &q); err != nil {
			return fmt.Errorf("bundle %s: manifest quant: %w", o.Path, err)
		}
	}
	rep.ActBits, rep.CalibMethod = q.Bits(), q.CalibMethod
	rep.Instructions = len(instrs)
	rep.Batch, rep.Lockstep = max(man.Program.Batch, 1), max(man.Program.Lockstep, 1)
	for _, in := range instrs {
		rep.Opcodes[in.Op.String()]++
	}
	for _, f := range man.Files {
		rep.Bytes += f.Bytes
	}
	for _, t := range man.Tensors {
		if t.Layout == "bsr" {
			rep.SparseTensors = append(rep.SparseTensors, t.Name)
		}
	}
	for _, g := range man.Golden {
		rep.Golden = append(rep.Golden, g.Name)
	}
	if o.JSON {
		return printJSON(stdout, rep)
	}
	c := rep.Model.Config
	fmt.Fprintf(stdout, "%s (bundle, checksums verified)\n", o.Path)
	fmt.Fprintf(stdout, "  model         ViT %dx%dx%d, patch %d, dim %d, depth %d, %s attention, %d classes\n",
		c.Channels, c.Image, c.Image, c.Patch, c.Dim, c.Depth, c.Attention, c.Classes)
	if c.LayerHeads != nil || len(c.TokenLayers) > 0 {
		fmt.Fprintf(stdout, "  pruning       heads %v, MLP units %v, token keep %.3g after blocks %v\n", c.LayerHeads, c.LayerHidden, c.TokenKeep, c.TokenLayers)
	}
	def := ""
	if rep.MatchesDefault {
		def = ", vitc's default"
	}
	fmt.Fprintf(stdout, "  hardware      %s (%s%s)\n", rep.HWName, rep.HWFingerprint, def)
	quant := fmt.Sprintf("weights int8 per output channel, activations int%d", rep.ActBits)
	if rep.CalibMethod != "" {
		quant += ", calibration " + rep.CalibMethod
	}
	if q.ActBitsAuto != nil {
		quant += fmt.Sprintf(" (--act-bits auto: int8 agreed on %.2f%% of %d calibration images)", 100*q.ActBitsAuto.Int8Agreement, q.ActBitsAuto.Images)
	}
	fmt.Fprintf(stdout, "  quantization  %s\n", quant)
	fmt.Fprintf(stdout, "  files         %d, %d bytes\n", rep.Files, rep.Bytes)
	fmt.Fprintf(stdout, "  DRAM          %d bytes: weights at 0, input at 0x%x (%d bytes), outputs at 0x%x (%d bytes)\n",
		man.Memory.DRAMBytes, man.Memory.InputAddr, man.Memory.InputBytes, man.Memory.OutputAddr, man.Memory.OutputBytes)
	fmt.Fprintf(stdout, "  program       %d instructions in %d layers\n", rep.Instructions, len(rep.Layers))
	if rep.Batch > 1 {
		fmt.Fprintf(stdout, "  batch         %d images per load of the weights (resident), run in lockstep groups of %d\n", rep.Batch, rep.Lockstep)
	} else {
		fmt.Fprintf(stdout, "  batch         1 (the weights are reloaded for every image: the latency schedule)\n")
	}
	ops := make([]string, 0, len(rep.Opcodes))
	for op := range rep.Opcodes {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	fmt.Fprint(stdout, "  opcodes      ")
	for _, op := range ops {
		fmt.Fprintf(stdout, " %s×%d", op, rep.Opcodes[op])
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "  tensors       %d, block-sparse: %d\n", rep.Tensors, len(rep.SparseTensors))
	fmt.Fprintf(stdout, "  golden        %v\n", rep.Golden)
	return nil
}
