package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"strings"
	"unicode/utf8"
)

// Size limits. Readers refuse larger files before reading them, so a hostile
// bundle cannot make them allocate without bound; Write refuses them too so
// that it never produces a bundle that Read rejects.
const (
	maxFileBytes = 1 << 30  // any data file
	maxMetaBytes = 64 << 20 // manifest.json and SHA256SUMS
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// dtypeSize is the element size of every supported dtype. The set is closed
// so that a typo in an exporter is caught here rather than on the FPGA.
var dtypeSize = map[string]int64{
	"int8":   1,
	"int16":  2,
	"int32":  4,
	"uint16": 2,
	"uint32": 4,
}

// problem is a validation failure. file names the bundle file whose
// contents are at fault (a CRC or .hex mismatch); it is empty when the
// manifest itself is inconsistent, and the reader then blames manifest.json.
type problem struct {
	file string
	msg  string
}

func (p *problem) Error() string {
	if p.file == "" {
		return p.msg
	}
	return p.file + ": " + p.msg
}

func probf(file, format string, args ...any) error {
	return &problem{file: file, msg: fmt.Sprintf(format, args...)}
}

// checkPath accepts the bundle-relative slash paths a bundle may contain.
// Besides fs.ValidPath's rules it rejects anything that could escape the
// directory on some platform, or break the line-oriented SHA256SUMS format.
func checkPath(name string) error {
	switch {
	case name == "":
		return errors.New("empty file name")
	case strings.HasPrefix(name, "/"):
		return fmt.Errorf("file name %q is absolute", name)
	case strings.Contains(name, `\`):
		return fmt.Errorf("file name %q contains a backslash", name)
	case strings.Contains(name, ".."):
		return fmt.Errorf("file name %q contains \"..\"", name)
	case !utf8.ValidString(name):
		return fmt.Errorf("file name %q is not valid UTF-8", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("file name %q contains a control character", name)
		}
	}
	for _, elem := range strings.Split(name, "/") {
		if elem == "" || elem == "." {
			return fmt.Errorf("file name %q has an empty or \".\" path element", name)
		}
	}
	return nil
}

// checkDataName is checkPath plus the reserved names, which only Write
// itself may create.
func checkDataName(name string) error {
	if name == ManifestFile || name == SumsFile {
		return fmt.Errorf("file name %q is reserved", name)
	}
	return checkPath(name)
}

// inRange reports whether [off, off+n) lies within [0, size), without
// computing off+n, which could overflow for hostile values.
func inRange(off, n, size int64) bool {
	return off >= 0 && n >= 0 && off <= size && n <= size-off
}

// shapeBytes is product(shape) × the size of dtype, refusing negative
// dimensions and overflow rather than wrapping around.
func shapeBytes(shape []int, dtype string) (int64, error) {
	n, ok := dtypeSize[dtype]
	if !ok {
		return 0, fmt.Errorf("unknown dtype %q", dtype)
	}
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v has a negative dimension", shape)
		}
		if d != 0 && n > math.MaxInt64/int64(d) {
			return 0, fmt.Errorf("shape %v of %s overflows", shape, dtype)
		}
		n *= int64(d)
	}
	return n, nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func isSHA256Hex(s string) bool { return len(s) == 64 && isLowerHex(s) }

func crcHex(data []byte) string {
	return fmt.Sprintf("%08x", crc32.Checksum(data, castagnoli))
}

// isJSONObject reports whether raw is a single valid JSON object.
func isJSONObject(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && t[0] == '{' && json.Valid(t)
}

// validateManifest checks that m describes files consistently: every
// reference resolves, every range lies inside its container, and every size
// agrees with its shape. Write runs it with checkCRC false before filling
// the CRCs; ReadFS runs it with checkCRC true. All arithmetic on values
// from the manifest is overflow-checked because ReadFS feeds it untrusted
// input.
func validateManifest(m *Manifest, files map[string][]byte, checkCRC bool) error {
	if m.Format != Format {
		return probf("", "format is %q, want %q", m.Format, Format)
	}
	if m.Version != Version {
		return probf("", "version %d is not supported by this vitc", m.Version)
	}
	if !isJSONObject(m.Model) {
		return probf("", "model must be a JSON object")
	}
	if len(m.Quant) > 0 && !json.Valid(m.Quant) {
		return probf("", "quant is not valid JSON")
	}
	if fp, ok := strings.CutPrefix(m.HWFingerprint, "sha256:"); !ok || !isSHA256Hex(fp) {
		return probf("", "hw_fingerprint %q is not \"sha256:\" and 64 lowercase hex digits", m.HWFingerprint)
	}

	mem := m.Memory
	if mem.DRAMBytes < 0 {
		return probf("", "memory: dram_bytes %d is negative", mem.DRAMBytes)
	}
	if mem.InputAddr < 0 || mem.InputBytes < 0 || mem.OutputAddr < 0 || mem.OutputBytes < 0 {
		return probf("", "memory: input and output addresses and sizes must not be negative")
	}
	if !inRange(mem.InputAddr, mem.InputBytes, mem.DRAMBytes) {
		return probf("", "memory: input [%d, +%d) is outside DRAM (%d bytes)", mem.InputAddr, mem.InputBytes, mem.DRAMBytes)
	}
	if !inRange(mem.OutputAddr, mem.OutputBytes, mem.DRAMBytes) {
		return probf("", "memory: output [%d, +%d) is outside DRAM (%d bytes)", mem.OutputAddr, mem.OutputBytes, mem.DRAMBytes)
	}
	// checkDRAM checks an item the program loads or stores: -1 means it
	// never lives in DRAM.
	checkDRAM := func(what string, addr, n int64) error {
		if addr == -1 {
			return nil
		}
		if addr < 0 {
			return probf("", "%s: dram_addr %d is neither -1 nor an address", what, addr)
		}
		if !inRange(addr, n, mem.DRAMBytes) {
			return probf("", "%s: DRAM range [%d, +%d) is outside DRAM (%d bytes)", what, addr, n, mem.DRAMBytes)
		}
		return nil
	}
	// file resolves a reference to a data file.
	file := func(what, name string) ([]byte, error) {
		if err := checkDataName(name); err != nil {
			return nil, probf("", "%s: %v", what, err)
		}
		data, ok := files[name]
		if !ok {
			return nil, probf("", "%s: file %s is not in the bundle", what, name)
		}
		return data, nil
	}

	sections := make(map[string]*Section, len(m.Sections))
	for i := range m.Sections {
		s := &m.Sections[i]
		what := fmt.Sprintf("section %q", s.Name)
		if s.Name == "" {
			return probf("", "section %d has no name", i)
		}
		if sections[s.Name] != nil {
			return probf("", "%s is defined twice", what)
		}
		sections[s.Name] = s
		data, err := file(what, s.File)
		if err != nil {
			return err
		}
		if s.Align < 1 || s.Align&(s.Align-1) != 0 {
			return probf("", "%s: align %d is not a power of two", what, s.Align)
		}
		if s.Offset < 0 || s.Bytes < 0 {
			return probf("", "%s: offset %d and bytes %d must not be negative", what, s.Offset, s.Bytes)
		}
		if !inRange(s.Offset, s.Bytes, int64(len(data))) {
			return probf("", "%s: bytes [%d, +%d) are outside %s (%d bytes)", what, s.Offset, s.Bytes, s.File, len(data))
		}
		if s.Offset%s.Align != 0 {
			return probf("", "%s: offset %d is not a multiple of align %d", what, s.Offset, s.Align)
		}
		if err := checkDRAM(what, s.DRAMAddr, s.Bytes); err != nil {
			return err
		}
		if checkCRC {
			if len(s.CRC32C) != 8 || !isLowerHex(s.CRC32C) {
				return probf("", "%s: crc32c %q is not 8 lowercase hex digits", what, s.CRC32C)
			}
			if got := crcHex(data[s.Offset : s.Offset+s.Bytes]); got != s.CRC32C {
				return probf(s.File, "%s: CRC-32C is %s, the manifest says %s; the data is corrupt", what, got, s.CRC32C)
			}
		}
	}

	tensors := make(map[string]bool, len(m.Tensors))
	for i := range m.Tensors {
		t := &m.Tensors[i]
		what := fmt.Sprintf("tensor %q", t.Name)
		if t.Name == "" {
			return probf("", "tensor %d has no name", i)
		}
		if tensors[t.Name] {
			return probf("", "%s is defined twice", what)
		}
		tensors[t.Name] = true
		s := sections[t.Section]
		if s == nil {
			return probf("", "%s: no section named %q", what, t.Section)
		}
		want, err := shapeBytes(t.Shape, t.DType)
		if err != nil {
			return probf("", "%s: %v", what, err)
		}
		if t.Bytes != want {
			return probf("", "%s: bytes is %d, but shape %v of %s is %d bytes", what, t.Bytes, t.Shape, t.DType, want)
		}
		if t.Offset < 0 {
			return probf("", "%s: offset %d is negative", what, t.Offset)
		}
		if !inRange(t.Offset, t.Bytes, s.Bytes) {
			return probf("", "%s: bytes [%d, +%d) are outside section %q (%d bytes)", what, t.Offset, t.Bytes, s.Name, s.Bytes)
		}
		for _, sc := range t.Scale {
			// JSON cannot carry NaN or ±Inf; catch them here with a
			// message naming the tensor instead of failing in the encoder.
			if math.IsNaN(sc) || math.IsInf(sc, 0) {
				return probf("", "%s: scale %v is not finite", what, sc)
			}
		}
	}

	p := &m.Program
	prog, err := file("program", p.File)
	if err != nil {
		return err
	}
	if _, err := file("program disassembly", p.Disassembly); err != nil {
		return err
	}
	if p.InstrBytes < 1 {
		return probf("", "program: instr_bytes %d is not positive", p.InstrBytes)
	}
	if p.Batch < 0 {
		return probf("", "program: batch %d is negative", p.Batch)
	}
	if p.Lockstep < 0 || p.Lockstep > 1 && max(p.Batch, 1)%p.Lockstep != 0 {
		return probf("", "program: lockstep group %d does not divide the batch of %d", p.Lockstep, max(p.Batch, 1))
	}
	if p.Instructions < 0 {
		return probf("", "program: instructions %d is negative", p.Instructions)
	}
	if int64(p.Instructions) > math.MaxInt64/int64(p.InstrBytes) {
		return probf("", "program: %d instructions × %d bytes overflows", p.Instructions, p.InstrBytes)
	}
	if want := int64(p.Instructions) * int64(p.InstrBytes); int64(len(prog)) != want {
		return probf("", "program: %s is %d bytes, want %d instructions × %d bytes = %d", p.File, len(prog), p.Instructions, p.InstrBytes, want)
	}
	prev := -1
	for _, l := range p.Layers {
		what := fmt.Sprintf("program: layer %q", l.Name)
		if l.First < 0 || l.First > l.Last || l.Last >= p.Instructions {
			return probf("", "%s: range [%d, %d] is empty or outside [0, %d)", what, l.First, l.Last, p.Instructions)
		}
		if l.First <= prev {
			return probf("", "%s: starts at %d, not after the previous layer's last instruction %d", what, l.First, prev)
		}
		prev = l.Last
	}

	golden := make(map[string]bool, len(m.Golden))
	for i := range m.Golden {
		g := &m.Golden[i]
		what := fmt.Sprintf("golden %q", g.Name)
		if g.Name == "" {
			return probf("", "golden value %d has no name", i)
		}
		if golden[g.Name] {
			return probf("", "%s is defined twice", what)
		}
		golden[g.Name] = true
		bin, err := file(what, g.File)
		if err != nil {
			return err
		}
		text, err := file(what+" hex", g.Hex)
		if err != nil {
			return err
		}
		want, err := shapeBytes(g.Shape, g.DType)
		if err != nil {
			return probf("", "%s: %v", what, err)
		}
		if int64(len(bin)) != want {
			return probf("", "%s: %s is %d bytes, but shape %v of %s is %d bytes", what, g.File, len(bin), g.Shape, g.DType, want)
		}
		if err := checkDRAM(what, g.DRAMAddr, want); err != nil {
			return err
		}
		if err := hexMatches(text, bin); err != nil {
			return probf(g.Hex, "%s: %v", what, err)
		}
	}
	return nil
}

// hexMatches checks that text is HexWords(bin, w) up to comments, for the
// word size w of its first data line: the manifest does not record w, and
// the test benches may want any bus width.
func hexMatches(text, bin []byte) error {
	w := 1 // a file without words is only right for an empty .bin
	for rest := text; len(rest) > 0; {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte{'\n'})
		if bytes.HasPrefix(line, []byte("//")) {
			continue
		}
		if len(line) == 0 || len(line)%2 != 0 {
			return errors.New("is not a file of hex words")
		}
		w = len(line) / 2
		break
	}
	words, err := parseHexWords(text, w)
	if err != nil {
		return err
	}
	// HexWords pads the data with fewer than w zero bytes.
	pad := len(words) - len(bin)
	if pad < 0 || pad >= w || !bytes.Equal(words[:len(bin)], bin) || bytes.Count(words[len(bin):], []byte{0}) != pad {
		return errors.New("does not match the .bin contents")
	}
	return nil
}

// sha256Hex is the lowercase hex SHA-256 of data, as File and SHA256SUMS
// record it.
func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
