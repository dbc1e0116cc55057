// Package bundle writes and reads export bundles: the directories handed to
// the FPGA team, holding a JSON manifest, binary sections, the instruction
// stream and golden test vectors.
//
// A bundle is consumed by people and tools outside this repository, so both
// sides are defensive. Write validates the manifest against the files before
// anything touches the disk and installs the directory atomically, so a
// half-written bundle is never observable. ReadFS trusts nothing: every file
// is checked against SHA256SUMS and the manifest, every section against its
// CRC-32C, and every offset, size and shape with overflow-checked
// arithmetic, so that a corrupt or hostile bundle yields an error rather
// than a panic, a huge allocation or silently wrong data.
//
// Layout of a bundle directory:
//
//	manifest.json   the Manifest, indented JSON
//	SHA256SUMS      sha256sum(1) output for every other file, so the hardware
//	                team can check a copy with `sha256sum -c SHA256SUMS`
//	...             the data files named by the manifest
package bundle

import (
	"encoding/json"
	"fmt"
)

// Format and Version identify the manifest schema. Version is bumped on any
// change a version-1 reader would misinterpret; readers refuse versions they
// do not know rather than guess.
const (
	Format  = "vitc-bundle"
	Version = 1
)

// Reserved file names: they are produced by Write itself and cannot be
// supplied as data files.
const (
	ManifestFile = "manifest.json"
	SumsFile     = "SHA256SUMS"
)

// Manifest is the content of manifest.json.
type Manifest struct {
	Format        string          `json:"format"`            // always Format
	Version       int             `json:"version"`           // Version
	Created       string          `json:"created,omitempty"` // free text, e.g. the vitc version
	Model         json.RawMessage `json:"model"`             // opaque JSON object describing the model
	HWFingerprint string          `json:"hw_fingerprint"`    // "sha256:<64 hex>"
	Quant         json.RawMessage `json:"quant,omitempty"`   // opaque JSON (scales etc.)
	Memory        Memory          `json:"memory"`
	Sections      []Section       `json:"sections"`
	Tensors       []Tensor        `json:"tensors"`
	Program       Program         `json:"program"`
	Golden        []Golden        `json:"golden"`
	// Files is filled by Write: every file of the bundle except
	// manifest.json and SHA256SUMS, sorted by name.
	Files []File `json:"files"`
}

// Memory is the DRAM map the program uses. Every DRAM-resident item
// (sections, stored golden values, input and output) must lie inside
// [0, DRAMBytes).
type Memory struct {
	DRAMBytes   int64 `json:"dram_bytes"`
	InputAddr   int64 `json:"input_addr"`
	InputBytes  int64 `json:"input_bytes"`
	OutputAddr  int64 `json:"output_addr"`
	OutputBytes int64 `json:"output_bytes"`
}

// Section is a contiguous byte range of a bundle file, typically loaded to
// DRAM as a whole.
type Section struct {
	Name     string `json:"name"`      // e.g. "weights"
	File     string `json:"file"`      // bundle file holding it, e.g. "weights.bin"
	Offset   int64  `json:"offset"`    // byte offset inside File
	Bytes    int64  `json:"bytes"`     //
	Align    int64  `json:"align"`     // Offset is a multiple of Align (a power of two)
	DRAMAddr int64  `json:"dram_addr"` // where the program expects it in DRAM, -1 when not loaded
	CRC32C   string `json:"crc32c"`    // 8 lowercase hex digits of the CRC-32C of the bytes, filled by Write
}

// Tensor locates one named tensor inside a section.
type Tensor struct {
	Name    string    `json:"name"`
	Section string    `json:"section"`
	Offset  int64     `json:"offset"` // within the section
	Bytes   int64     `json:"bytes"`  // product(Shape) × size of DType
	DType   string    `json:"dtype"`  // "int8", "int16", "int32", "uint16", "uint32"
	Shape   []int     `json:"shape"`
	Layout  string    `json:"layout"`          // "row_major", "tiled", "bsr", … (docs/bundle.md)
	Scale   []float64 `json:"scale,omitempty"` // quantization scale(s): one per tensor or per output channel
	Note    string    `json:"note,omitempty"`
}

// Program describes the instruction stream.
type Program struct {
	File         string  `json:"file"`         // "program.bin"
	Disassembly  string  `json:"disassembly"`  // "program.asm"
	Instructions int     `json:"instructions"` //
	InstrBytes   int     `json:"instr_bytes"`  // bytes per instruction, 32
	Layers       []Range `json:"layers"`       // instruction index ranges per layer, in order
	// Batch above 1: every layer's weights have a weight-buffer place of
	// their own and stay resident across this many images, so the loads
	// into the weight buffer run for the first image of a batch only.
	// Absent (or 1): every image runs every load.
	Batch int `json:"batch,omitempty"`
	// Lockstep above 1 (absent: 1) divides Batch: the images of a batch run
	// in groups of this many, every instruction over the whole group, each
	// image with its own copy of the activation buffer map. Results are
	// those of running the images one by one; only the cycles differ.
	Lockstep int `json:"lockstep,omitempty"`
}

// Range is an inclusive range of instruction indices.
type Range struct {
	Name  string `json:"name"`
	First int    `json:"first"`
	Last  int    `json:"last"`
}

// Golden is a reference value for bit-exact comparison with the hardware,
// stored twice: raw little-endian (.bin) and as $readmemh text (.hex, see
// HexWords) for Verilog test benches. The manifest does not record the .hex
// word size; readers take it from the first word line, and the words must
// decode to exactly the .bin contents plus HexWords' zero padding.
type Golden struct {
	Name     string `json:"name"` // e.g. "input", "block0", "logits", "kept2"
	File     string `json:"file"` // "golden/block0.bin"
	Hex      string `json:"hex"`  // "golden/block0.hex", see HexWords
	DType    string `json:"dtype"`
	Shape    []int  `json:"shape"`
	DRAMAddr int64  `json:"dram_addr"` // where the value lives in DRAM (the input: where the host writes it), -1 when nowhere
}

// File records the size and SHA-256 (64 lowercase hex digits) of a file.
type File struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Bundle is a bundle that has passed every check of ReadFS.
type Bundle struct {
	Manifest Manifest
	// Files holds every file listed in Manifest.Files, plus manifest.json
	// and SHA256SUMS. The accessors return sub-slices of these buffers.
	Files map[string][]byte
}

// Section returns the bytes of the named section. The result aliases
// b.Files; its capacity is clipped so that appending to it cannot clobber
// the neighbouring data.
func (b *Bundle) Section(name string) ([]byte, error) {
	for i := range b.Manifest.Sections {
		if s := &b.Manifest.Sections[i]; s.Name == name {
			return b.sectionBytes(s)
		}
	}
	return nil, fmt.Errorf("bundle: no section named %q", name)
}

// sectionBytes re-checks the bounds although ReadFS validated them: Bundle's
// fields are exported and may have been modified since.
func (b *Bundle) sectionBytes(s *Section) ([]byte, error) {
	data, ok := b.Files[s.File]
	if !ok {
		return nil, fmt.Errorf("bundle: section %q: file %q is not in the bundle", s.Name, s.File)
	}
	if !inRange(s.Offset, s.Bytes, int64(len(data))) {
		return nil, fmt.Errorf("bundle: section %q: bytes [%d, +%d) are outside %s (%d bytes)", s.Name, s.Offset, s.Bytes, s.File, len(data))
	}
	return data[s.Offset : s.Offset+s.Bytes : s.Offset+s.Bytes], nil
}

// TensorBytes returns the bytes of the named tensor and its description.
// The bytes alias b.Files (capacity clipped) and the *Tensor points into
// b.Manifest.
func (b *Bundle) TensorBytes(name string) ([]byte, *Tensor, error) {
	for i := range b.Manifest.Tensors {
		t := &b.Manifest.Tensors[i]
		if t.Name != name {
			continue
		}
		var sec []byte
		var err error
		found := false
		for j := range b.Manifest.Sections {
			if s := &b.Manifest.Sections[j]; s.Name == t.Section {
				sec, err = b.sectionBytes(s)
				found = true
				break
			}
		}
		if !found {
			return nil, nil, fmt.Errorf("bundle: tensor %q: no section named %q", name, t.Section)
		}
		if err != nil {
			return nil, nil, err
		}
		if !inRange(t.Offset, t.Bytes, int64(len(sec))) {
			return nil, nil, fmt.Errorf("bundle: tensor %q: bytes [%d, +%d) are outside section %q (%d bytes)", name, t.Offset, t.Bytes, t.Section, len(sec))
		}
		return sec[t.Offset : t.Offset+t.Bytes : t.Offset+t.Bytes], t, nil
	}
	return nil, nil, fmt.Errorf("bundle: no tensor named %q", name)
}

// GoldenBytes returns the raw little-endian contents (the .bin file) of the
// named golden value and its description. The bytes alias b.Files.
func (b *Bundle) GoldenBytes(name string) ([]byte, *Golden, error) {
	for i := range b.Manifest.Golden {
		g := &b.Manifest.Golden[i]
		if g.Name != name {
			continue
		}
		data, ok := b.Files[g.File]
		if !ok {
			return nil, nil, fmt.Errorf("bundle: golden %q: file %q is not in the bundle", name, g.File)
		}
		return data[:len(data):len(data)], g, nil
	}
	return nil, nil, fmt.Errorf("bundle: no golden value named %q", name)
}

// Slot is a value a bundle's program stores to DRAM: a golden vector. The
// compiler places slots and the simulator reads them back.
type Slot struct {
	Name  string // "embed", "block3", "kept1", "logits"
	Addr  int64
	DType string // "int8", "int16" (16-bit activations) or "int32"
	Shape []int
}

// Bytes is the slot's size.
func (s Slot) Bytes() int64 {
	n := int64(1)
	if sz, ok := dtypeSize[s.DType]; ok {
		n = sz
	}
	for _, d := range s.Shape {
		n *= int64(d)
	}
	return n
}
