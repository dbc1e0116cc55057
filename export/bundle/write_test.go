package bundle

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestWriteReadRoundTrip(t *testing.T) {
	m, files := testInputs()
	dir := filepath.Join(t.TempDir(), "bundle")
	if err := Write(dir, m, files); err != nil {
		t.Fatal(err)
	}

	// Write filled in what it promises.
	if m.Format != Format || m.Version != Version {
		t.Errorf("format/version = %q/%d", m.Format, m.Version)
	}
	for _, s := range m.Sections {
		if len(s.CRC32C) != 8 {
			t.Errorf("section %s: crc32c %q not filled", s.Name, s.CRC32C)
		}
	}
	var names []string
	for _, f := range m.Files {
		names = append(names, f.Name)
	}
	want := []string{"consts.bin", "golden/input.bin", "golden/input.hex", "golden/logits.bin", "golden/logits.hex", "program.asm", "program.bin", "weights.bin"}
	if !slices.Equal(names, want) {
		t.Errorf("files = %v, want %v", names, want)
	}

	b, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b.Manifest, *m) {
		t.Errorf("manifest read back differs:\n got %+v\nwant %+v", b.Manifest, *m)
	}
	if len(b.Files) != len(files)+2 {
		t.Errorf("read %d files, want %d", len(b.Files), len(files)+2)
	}
	for name, data := range files {
		if !bytes.Equal(b.Files[name], data) {
			t.Errorf("%s differs", name)
		}
	}
	for _, name := range []string{ManifestFile, SumsFile} {
		onDisk, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(b.Files[name], onDisk) {
			t.Errorf("%s: not returned as on disk (%v)", name, err)
		}
	}
	manifestText := string(b.Files[ManifestFile])
	if !strings.HasSuffix(manifestText, "}\n") || !strings.Contains(manifestText, "\n  \"format\": \"vitc-bundle\",\n") {
		t.Errorf("manifest.json is not indented JSON with a trailing newline:\n%s", manifestText)
	}

	sec, err := b.Section("bias")
	if err != nil || !bytes.Equal(sec, files["weights.bin"][128:160]) || cap(sec) != len(sec) {
		t.Errorf("Section(bias) = %v, %v", sec, err)
	}
	tb, tensor, err := b.TensorBytes("gelu.lut")
	if err != nil || !bytes.Equal(tb, files["consts.bin"]) || tensor.DType != "int16" {
		t.Errorf("TensorBytes(gelu.lut) = %v, %+v, %v", tb, tensor, err)
	}
	gb, golden, err := b.GoldenBytes("logits")
	if err != nil || !bytes.Equal(gb, files["golden/logits.bin"]) || golden.DRAMAddr != 0x3000 {
		t.Errorf("GoldenBytes(logits) = %v, %+v, %v", gb, golden, err)
	}
	if _, err := b.Section("nope"); err == nil {
		t.Error("Section(nope) succeeded")
	}
	if _, _, err := b.TensorBytes("nope"); err == nil {
		t.Error("TensorBytes(nope) succeeded")
	}
	if _, _, err := b.GoldenBytes("nope"); err == nil {
		t.Error("GoldenBytes(nope) succeeded")
	}

	// The hardware team checks copies with sha256sum; make sure it agrees.
	if _, err := exec.LookPath("sha256sum"); err == nil {
		cmd := exec.Command("sha256sum", "-c", SumsFile)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("sha256sum -c: %v\n%s", err, out)
		}
	}
}

func TestWriteLeavesCallerManifestOnError(t *testing.T) {
	m, files := testInputs()
	m.Tensors[0].Bytes++
	before := *m
	before.Sections = slices.Clone(m.Sections)
	if err := Write(filepath.Join(t.TempDir(), "b"), m, files); err == nil {
		t.Fatal("Write succeeded")
	}
	if !reflect.DeepEqual(*m, before) {
		t.Error("a failed Write changed the caller's manifest")
	}
}

func TestWriteRejects(t *testing.T) {
	tests := []struct {
		name string
		edit func(m *Manifest, files map[string][]byte)
		want string
	}{
		{"absolute name", func(m *Manifest, f map[string][]byte) { f["/etc/x"] = nil }, "absolute"},
		{"dot dot", func(m *Manifest, f map[string][]byte) { f["golden/../x"] = nil }, `".."`},
		{"backslash", func(m *Manifest, f map[string][]byte) { f[`golden\x`] = nil }, "backslash"},
		{"empty element", func(m *Manifest, f map[string][]byte) { f["golden//x"] = nil }, "empty"},
		{"dot element", func(m *Manifest, f map[string][]byte) { f["./x"] = nil }, "empty"},
		{"trailing slash", func(m *Manifest, f map[string][]byte) { f["x/"] = nil }, "empty"},
		{"empty name", func(m *Manifest, f map[string][]byte) { f[""] = nil }, "empty file name"},
		{"control char", func(m *Manifest, f map[string][]byte) { f["a\nb"] = nil }, "control"},
		{"manifest.json", func(m *Manifest, f map[string][]byte) { f[ManifestFile] = nil }, "reserved"},
		{"SHA256SUMS", func(m *Manifest, f map[string][]byte) { f[SumsFile] = nil }, "reserved"},
		{"file and dir", func(m *Manifest, f map[string][]byte) { f["golden"] = nil }, "both a file and a directory"},
		{"format", func(m *Manifest, f map[string][]byte) { m.Format = "other" }, `format is "other"`},
		{"version", func(m *Manifest, f map[string][]byte) { m.Version = 2 }, "version 2 is not supported"},
		{"model missing", func(m *Manifest, f map[string][]byte) { m.Model = nil }, "model must be a JSON object"},
		{"model not object", func(m *Manifest, f map[string][]byte) { m.Model = []byte(`[1]`) }, "model must be a JSON object"},
		{"model invalid", func(m *Manifest, f map[string][]byte) { m.Model = []byte(`{`) }, "model is not valid JSON"},
		{"quant invalid", func(m *Manifest, f map[string][]byte) { m.Quant = []byte(`{"a":}`) }, "quant is not valid JSON"},
		{"fingerprint", func(m *Manifest, f map[string][]byte) { m.HWFingerprint = "sha1:abc" }, "hw_fingerprint"},
		{"dram negative", func(m *Manifest, f map[string][]byte) { m.Memory.DRAMBytes = -1 }, "dram_bytes -1"},
		{"input outside dram", func(m *Manifest, f map[string][]byte) { m.Memory.InputAddr = 0xfff8 }, "memory: input"},
		{"output outside dram", func(m *Manifest, f map[string][]byte) { m.Memory.OutputAddr = 0x10000 }, "memory: output"},
		{"output negative", func(m *Manifest, f map[string][]byte) { m.Memory.OutputBytes = -1 }, "must not be negative"},
		{"section unnamed", func(m *Manifest, f map[string][]byte) { m.Sections[1].Name = "" }, "section 1 has no name"},
		{"section twice", func(m *Manifest, f map[string][]byte) { m.Sections[1].Name = "weights" }, `section "weights" is defined twice`},
		{"section file missing", func(m *Manifest, f map[string][]byte) { delete(f, "consts.bin") }, `section "gelu_lut": file consts.bin is not in the bundle`},
		{"section file reserved", func(m *Manifest, f map[string][]byte) { m.Sections[2].File = ManifestFile }, `section "gelu_lut": file name "manifest.json" is reserved`},
		{"section past end", func(m *Manifest, f map[string][]byte) { m.Sections[1].Bytes = 64 }, `section "bias": bytes [128, +64) are outside weights.bin (160 bytes)`},
		{"section negative offset", func(m *Manifest, f map[string][]byte) { m.Sections[0].Offset = -32 }, `section "weights": offset -32 and bytes 96 must not be negative`},
		{"section unaligned", func(m *Manifest, f map[string][]byte) { m.Sections[1].Offset = 96 }, `section "bias": offset 96 is not a multiple of align 64`},
		{"align not power of two", func(m *Manifest, f map[string][]byte) { m.Sections[0].Align = 24 }, "align 24 is not a power of two"},
		{"align zero", func(m *Manifest, f map[string][]byte) { m.Sections[0].Align = 0 }, "align 0 is not a power of two"},
		{"section outside dram", func(m *Manifest, f map[string][]byte) { m.Sections[0].DRAMAddr = 0xffe0 }, `section "weights": DRAM range`},
		{"section dram below -1", func(m *Manifest, f map[string][]byte) { m.Sections[0].DRAMAddr = -2 }, `section "weights": dram_addr -2 is neither -1 nor an address`},
		{"tensor negative offset", func(m *Manifest, f map[string][]byte) { m.Tensors[0].Offset = -1 }, `tensor "blk0.fc1.w": offset -1 is negative`},
		{"tensor unnamed", func(m *Manifest, f map[string][]byte) { m.Tensors[0].Name = "" }, "tensor 0 has no name"},
		{"tensor twice", func(m *Manifest, f map[string][]byte) { m.Tensors[1].Name = "gelu.lut" }, `tensor "gelu.lut" is defined twice`},
		{"tensor section missing", func(m *Manifest, f map[string][]byte) { m.Tensors[0].Section = "nope" }, `tensor "blk0.fc1.w": no section named "nope"`},
		{"tensor dtype", func(m *Manifest, f map[string][]byte) { m.Tensors[0].DType = "float32" }, `unknown dtype "float32"`},
		{"tensor bytes vs shape", func(m *Manifest, f map[string][]byte) { m.Tensors[1].Shape = []int{9} }, `tensor "blk0.fc1.b": bytes is 32, but shape [9] of int32 is 36 bytes`},
		{"tensor shape overflow", func(m *Manifest, f map[string][]byte) { m.Tensors[0].Shape = []int{1 << 32, 1 << 32} }, "overflows"},
		{"tensor negative dim", func(m *Manifest, f map[string][]byte) { m.Tensors[0].Shape = []int{-8, -12} }, "negative dimension"},
		{"tensor outside section", func(m *Manifest, f map[string][]byte) { m.Tensors[2].Offset = 2 }, `tensor "gelu.lut": bytes [2, +32) are outside section "gelu_lut" (32 bytes)`},
		{"tensor scale nan", func(m *Manifest, f map[string][]byte) { m.Tensors[1].Scale[0] = nan() }, "not finite"},
		{"program missing", func(m *Manifest, f map[string][]byte) { delete(f, "program.bin") }, "program: file program.bin is not in the bundle"},
		{"disassembly missing", func(m *Manifest, f map[string][]byte) { m.Program.Disassembly = "program.s" }, "program disassembly: file program.s is not in the bundle"},
		{"program length", func(m *Manifest, f map[string][]byte) { m.Program.Instructions = 4 }, "program: program.bin is 96 bytes, want 4 instructions × 32 bytes = 128"},
		{"instr bytes zero", func(m *Manifest, f map[string][]byte) { m.Program.InstrBytes = 0 }, "instr_bytes 0"},
		{"instructions overflow", func(m *Manifest, f map[string][]byte) { m.Program.Instructions = 1 << 62 }, "overflows"},
		{"layer past end", func(m *Manifest, f map[string][]byte) { m.Program.Layers[1].Last = 3 }, `layer "block0": range [1, 3] is empty or outside [0, 3)`},
		{"layer reversed", func(m *Manifest, f map[string][]byte) { m.Program.Layers[1].First = 2; m.Program.Layers[1].Last = 1 }, `layer "block0": range [2, 1]`},
		{"layers overlap", func(m *Manifest, f map[string][]byte) { m.Program.Layers[1].First = 0 }, `layer "block0": starts at 0`},
		{"layers out of order", func(m *Manifest, f map[string][]byte) {
			m.Program.Layers[0], m.Program.Layers[1] = m.Program.Layers[1], m.Program.Layers[0]
		}, `layer "embed": starts at 0`},
		{"golden unnamed", func(m *Manifest, f map[string][]byte) { m.Golden[0].Name = "" }, "golden value 0 has no name"},
		{"golden twice", func(m *Manifest, f map[string][]byte) { m.Golden[1].Name = "input" }, `golden "input" is defined twice`},
		{"golden bin missing", func(m *Manifest, f map[string][]byte) { delete(f, "golden/input.bin") }, `golden "input": file golden/input.bin is not in the bundle`},
		{"golden hex missing", func(m *Manifest, f map[string][]byte) { delete(f, "golden/logits.hex") }, `golden "logits" hex: file golden/logits.hex is not in the bundle`},
		{"golden size", func(m *Manifest, f map[string][]byte) { m.Golden[1].Shape = []int{4} }, `golden "logits": golden/logits.bin is 12 bytes, but shape [4] of int32 is 16 bytes`},
		{"golden dtype", func(m *Manifest, f map[string][]byte) { m.Golden[1].DType = "int64" }, `unknown dtype "int64"`},
		{"golden outside dram", func(m *Manifest, f map[string][]byte) { m.Golden[1].DRAMAddr = 0xfffc }, `golden "logits": DRAM range`},
		{"golden hex differs", func(m *Manifest, f map[string][]byte) { f["golden/logits.hex"] = HexWords([]byte{1, 2, 3}, 8) }, `golden/logits.hex: golden "logits": does not match the .bin contents`},
		{"golden hex malformed", func(m *Manifest, f map[string][]byte) { f["golden/input.hex"] = []byte("0a0b0c0d\nzz\n") }, `golden/input.hex: golden "input": line 2`},
		{"golden hex extra word", func(m *Manifest, f map[string][]byte) {
			f["golden/input.hex"] = append(HexWords(f["golden/input.bin"], 4), "00000000\n"...)
		}, "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, files := testInputs()
			tt.edit(m, files)
			parent := t.TempDir()
			err := Write(filepath.Join(parent, "b"), m, files)
			if err == nil {
				t.Fatal("Write succeeded")
			}
			if !strings.HasPrefix(err.Error(), "bundle: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			assertEntries(t, parent)
		})
	}
}

func nan() float64 {
	zero := 0.0
	return zero / zero
}

// assertEntries checks that dir holds exactly the named entries: in
// particular no temporary directory left behind by Write.
func assertEntries(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s holds %q, want %q", dir, got, want)
	}
}

func TestWriteReplacesBundle(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "b")
	m1, files1 := testInputs()
	files1["notes.txt"] = []byte("only in the first bundle\n")
	if err := Write(dir, m1, files1); err != nil {
		t.Fatal(err)
	}
	// A file nobody listed, as a user might leave in the directory; it
	// goes with the old bundle.
	if err := os.WriteFile(filepath.Join(dir, "stray"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	m2, files2 := testInputs()
	m2.Created = "second"
	files2["weights.bin"][0] ^= 0xff
	if err := Write(dir, m2, files2); err != nil {
		t.Fatal(err)
	}
	b, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b.Manifest.Created != "second" || !bytes.Equal(b.Files["weights.bin"], files2["weights.bin"]) {
		t.Error("the bundle was not replaced")
	}
	for _, gone := range []string{"notes.txt", "stray"} {
		if _, err := os.Stat(filepath.Join(dir, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s of the old bundle survived: %v", gone, err)
		}
	}
	assertEntries(t, parent, "b")
}

func TestWriteIntoEmptyDir(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "b")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m, files := testInputs()
	if err := Write(dir, m, files); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("bundle directory mode = %v, %v; want 0755", fi.Mode(), err)
	}
	assertEntries(t, parent, "b")
}

func TestWriteRefusesNonBundle(t *testing.T) {
	t.Run("non-empty directory", func(t *testing.T) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "b")
		if err := os.MkdirAll(filepath.Join(dir, "src"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "important.go"), []byte("package main\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		m, files := testInputs()
		err := Write(dir, m, files)
		if err == nil || !strings.Contains(err.Error(), "not a bundle") {
			t.Fatalf("Write = %v, want refusal", err)
		}
		assertEntries(t, parent, "b")
		assertEntries(t, dir, "important.go", "src")
		if data, err := os.ReadFile(filepath.Join(dir, "important.go")); err != nil || string(data) != "package main\n" {
			t.Errorf("important.go changed: %q, %v", data, err)
		}
	})
	t.Run("regular file", func(t *testing.T) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "b")
		if err := os.WriteFile(dir, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		m, files := testInputs()
		if err := Write(dir, m, files); err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Fatalf("Write = %v, want refusal", err)
		}
		assertEntries(t, parent, "b")
	})
	t.Run("symlink", func(t *testing.T) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "b")
		if err := os.Mkdir(filepath.Join(parent, "target"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("target", dir); err != nil {
			t.Skip(err)
		}
		m, files := testInputs()
		if err := Write(dir, m, files); err == nil || !strings.Contains(err.Error(), "symbolic link") {
			t.Fatalf("Write = %v, want refusal", err)
		}
		assertEntries(t, parent, "b", "target")
	})
}

func TestWriteFailureLeavesOldBundle(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "b")
	m1, files1 := testInputs()
	if err := Write(dir, m1, files1); err != nil {
		t.Fatal(err)
	}
	old, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}

	injected := errors.New("injected failure")
	var sawTmp string
	writeHook = func(tmp string) error {
		sawTmp = tmp
		return injected
	}
	defer func() { writeHook = nil }()
	m2, files2 := testInputs()
	m2.Created = "second"
	if err := Write(dir, m2, files2); !errors.Is(err, injected) {
		t.Fatalf("Write = %v, want the injected failure", err)
	}
	if !strings.HasPrefix(filepath.Base(sawTmp), ".b.tmp-") || filepath.Dir(sawTmp) != parent {
		t.Errorf("temporary directory %s is not .b.tmp-* beside the bundle", sawTmp)
	}
	assertEntries(t, parent, "b")
	b, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b, old) {
		t.Error("the old bundle changed")
	}
}
