package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"testing"
	"testing/fstest"
)

// testInputs returns a small but realistic bundle: two files holding three
// sections, three tensors, a program of three 32-byte instructions with its
// disassembly, and two golden values whose .hex files use different word
// sizes (one of them padded). Every call returns fresh copies.
func testInputs() (*Manifest, map[string][]byte) {
	fill := func(n int, seed byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = seed + byte(i*37)
		}
		return b
	}
	weights := fill(160, 3) // "weights" [0,96), padding, "bias" [128,160)
	consts := fill(32, 11)
	program := fill(3*32, 101)
	input := fill(2*8, 7)
	logits := fill(3*4, 19)
	hwSum := sha256.Sum256([]byte("test hw config"))

	files := map[string][]byte{
		"weights.bin":       weights,
		"consts.bin":        consts,
		"program.bin":       program,
		"program.asm":       []byte("0000  LOAD  wgt, dram[0x1000], 96\n0001  GEMM  acc, inp, wgt\n0002  STORE dram[0x3000], out, 12\n"),
		"golden/input.bin":  input,
		"golden/input.hex":  HexWords(input, 4),
		"golden/logits.bin": logits,
		"golden/logits.hex": HexWords(logits, 8),
	}
	m := &Manifest{
		Created:       "vitc test",
		Model:         json.RawMessage(`{"name": "vit-test", "depth": 1, "embed_dim": 8}`),
		HWFingerprint: fmt.Sprintf("sha256:%x", hwSum),
		Quant:         json.RawMessage(`{"act_scale": 0.0625, "bits": 8}`),
		Memory: Memory{
			DRAMBytes:   0x10000,
			InputAddr:   0x2000,
			InputBytes:  16,
			OutputAddr:  0x3000,
			OutputBytes: 12,
		},
		Sections: []Section{
			{Name: "weights", File: "weights.bin", Offset: 0, Bytes: 96, Align: 32, DRAMAddr: 0x1000},
			{Name: "bias", File: "weights.bin", Offset: 128, Bytes: 32, Align: 64, DRAMAddr: 0x1080},
			{Name: "gelu_lut", File: "consts.bin", Offset: 0, Bytes: 32, Align: 16, DRAMAddr: -1},
		},
		Tensors: []Tensor{
			{Name: "blk0.fc1.w", Section: "weights", Offset: 0, Bytes: 96, DType: "int8", Shape: []int{8, 12}, Layout: "tiled16",
				Scale: []float64{0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08}},
			{Name: "blk0.fc1.b", Section: "bias", Offset: 0, Bytes: 32, DType: "int32", Shape: []int{8}, Layout: "row_major", Scale: []float64{0.0005}},
			{Name: "gelu.lut", Section: "gelu_lut", Offset: 0, Bytes: 32, DType: "int16", Shape: []int{16}, Layout: "row_major", Note: "GELU on int8 inputs"},
		},
		Program: Program{
			File:         "program.bin",
			Disassembly:  "program.asm",
			Instructions: 3,
			InstrBytes:   32,
			Layers:       []Range{{Name: "embed", First: 0, Last: 0}, {Name: "block0", First: 1, Last: 2}},
		},
		Golden: []Golden{
			{Name: "input", File: "golden/input.bin", Hex: "golden/input.hex", DType: "int8", Shape: []int{2, 8}, DRAMAddr: -1},
			{Name: "logits", File: "golden/logits.bin", Hex: "golden/logits.hex", DType: "int32", Shape: []int{3}, DRAMAddr: 0x3000},
		},
	}
	return m, files
}

// testFS is the bundle of testInputs as ReadFS sees it, built without
// touching the disk.
func testFS(t testing.TB) fstest.MapFS {
	t.Helper()
	m, files := testInputs()
	return mapFS(t, m, files)
}

func mapFS(t testing.TB, m *Manifest, files map[string][]byte) fstest.MapFS {
	t.Helper()
	_, manifestData, sumsData, err := prepare(m, files)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	fsys := fstest.MapFS{
		ManifestFile: {Data: manifestData},
		SumsFile:     {Data: sumsData},
	}
	for name, data := range files {
		fsys[name] = &fstest.MapFile{Data: data}
	}
	return fsys
}

// reseal recomputes manifest.json's file list and SHA256SUMS after a test
// has changed files, as an attacker or a buggy tool could, so that tests
// reach the checks behind the checksums. edit, if not nil, changes the
// decoded manifest first.
func reseal(t testing.TB, fsys fstest.MapFS, edit func(m map[string]any)) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(fsys[ManifestFile].Data))
	dec.UseNumber() // keep int64 values exact
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	var list []any
	for _, f := range m["files"].([]any) {
		f := f.(map[string]any)
		data := fsys[f["name"].(string)].Data
		f["bytes"] = len(data)
		f["sha256"] = fmt.Sprintf("%x", sha256.Sum256(data))
		list = append(list, f)
	}
	m["files"] = list
	if edit != nil {
		edit(m)
	}
	manifestData, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	fsys[ManifestFile] = &fstest.MapFile{Data: manifestData}
	fsys[SumsFile] = &fstest.MapFile{Data: sumsFor(fsys, list)}
}

// sumsFor is SHA256SUMS for manifest.json and the listed files, as they
// are in fsys.
func sumsFor(fsys fstest.MapFS, list []any) []byte {
	names := []string{ManifestFile}
	for _, f := range list {
		names = append(names, f.(map[string]any)["name"].(string))
	}
	slices.Sort(names)
	var b bytes.Buffer
	for _, name := range names {
		fmt.Fprintf(&b, "%x  %s\n", sha256.Sum256(fsys[name].Data), name)
	}
	return b.Bytes()
}

// cloneFS copies the map and the file structs (not the data), so a test can
// replace a file without affecting others.
func cloneFS(fsys fstest.MapFS) fstest.MapFS {
	out := make(fstest.MapFS, len(fsys))
	for _, name := range slices.Sorted(maps.Keys(fsys)) {
		f := *fsys[name]
		out[name] = &f
	}
	return out
}
