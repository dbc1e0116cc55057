package bundle

import (
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestReadFSValid(t *testing.T) {
	fsys := testFS(t)
	fsys["README.txt"] = &fstest.MapFile{Data: []byte("not listed, ignored")}
	b, err := ReadFS(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Files["README.txt"]; ok {
		t.Error("an unlisted file was read")
	}
	checkAccessors(t, b)
}

// TestReadFSDetectsEveryBitFlip flips one bit at every byte of every file
// and requires ReadFS to refuse each result.
func TestReadFSDetectsEveryBitFlip(t *testing.T) {
	fsys := testFS(t)
	if _, err := ReadFS(fsys); err != nil {
		t.Fatal(err)
	}
	flips := 0
	for _, name := range slices.Sorted(maps.Keys(fsys)) {
		orig := fsys[name].Data
		for i := range orig {
			for _, mask := range []byte{0x01, 0x80} {
				if mask == 0x80 && i%7 != 0 {
					continue // a sample suffices for the high bit
				}
				data := slices.Clone(orig)
				data[i] ^= mask
				corrupt := cloneFS(fsys)
				corrupt[name].Data = data
				flips++
				_, err := ReadFS(corrupt)
				if err == nil {
					t.Fatalf("%s: flipping bit %#02x of byte %d went unnoticed", name, mask, i)
				}
				if msg := err.Error(); strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "bundle: ") {
					t.Fatalf("%s byte %d: error is not one line starting with \"bundle: \": %q", name, i, msg)
				}
			}
		}
	}
	t.Logf("%d corrupted bundles refused", flips)
}

// TestReadFSChecksBehindChecksums corrupts data and then recomputes every
// checksum, as a tool that "fixes" SHA256SUMS would: the CRC-32C of the
// sections and the .hex/.bin comparison must still catch it.
func TestReadFSChecksBehindChecksums(t *testing.T) {
	tests := []struct {
		file string
		at   int
		want string
	}{
		{"weights.bin", 5, `bundle: weights.bin: section "weights": CRC-32C is`},
		{"weights.bin", 150, `bundle: weights.bin: section "bias": CRC-32C is`},
		{"consts.bin", 31, `bundle: consts.bin: section "gelu_lut": CRC-32C is`},
		{"golden/input.bin", 0, `bundle: golden/input.hex: golden "input": does not match the .bin contents`},
		{"golden/logits.bin", 11, `bundle: golden/logits.hex: golden "logits": does not match the .bin contents`},
		{"golden/logits.hex", 60, `bundle: golden/logits.hex: golden "logits": `},
	}
	for _, tt := range tests {
		fsys := testFS(t)
		data := slices.Clone(fsys[tt.file].Data)
		data[tt.at] ^= 0x04
		fsys[tt.file].Data = data
		reseal(t, fsys, nil)
		_, err := ReadFS(fsys)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s[%d]: ReadFS = %v, want %q", tt.file, tt.at, err, tt.want)
		}
	}
	// Bytes outside every section and the padding of a .hex word are
	// covered by the checksums only; with those recomputed the bundle is
	// consistent again, which is what makes the tests above meaningful.
	fsys := testFS(t)
	fsys["weights.bin"].Data = slices.Clone(fsys["weights.bin"].Data)
	fsys["weights.bin"].Data[100] ^= 1
	reseal(t, fsys, nil)
	if _, err := ReadFS(fsys); err != nil {
		t.Errorf("resealed bundle with a changed padding byte: %v", err)
	}
}

func TestReadFSErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(t *testing.T, fsys fstest.MapFS)
		want string
	}{
		{"no SHA256SUMS", func(t *testing.T, fsys fstest.MapFS) { delete(fsys, SumsFile) }, "bundle: SHA256SUMS: is missing"},
		{"no manifest", func(t *testing.T, fsys fstest.MapFS) { delete(fsys, ManifestFile) }, "bundle: manifest.json: is missing"},
		{"data file missing", func(t *testing.T, fsys fstest.MapFS) { delete(fsys, "golden/input.hex") }, "bundle: golden/input.hex: is missing"},
		{"SHA256SUMS without manifest", func(t *testing.T, fsys fstest.MapFS) {
			fsys[SumsFile].Data = dropLine(fsys[SumsFile].Data, ManifestFile)
		}, "bundle: SHA256SUMS: does not list manifest.json"},
		{"SHA256SUMS without a file", func(t *testing.T, fsys fstest.MapFS) {
			fsys[SumsFile].Data = dropLine(fsys[SumsFile].Data, "program.asm")
		}, "bundle: SHA256SUMS: does not list program.asm"},
		{"SHA256SUMS lists extra", func(t *testing.T, fsys fstest.MapFS) {
			fsys["x"] = &fstest.MapFile{}
			fsys[SumsFile].Data = append(fsys[SumsFile].Data, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  x\n"...)
		}, "bundle: SHA256SUMS: lists x, which manifest.json does not"},
		{"SHA256SUMS unsorted", func(t *testing.T, fsys fstest.MapFS) {
			lines := strings.SplitAfter(string(fsys[SumsFile].Data), "\n")
			lines[0], lines[1] = lines[1], lines[0]
			fsys[SumsFile].Data = []byte(strings.Join(lines, ""))
		}, "bundle: SHA256SUMS: line 2: consts.bin is out of order"},
		{"SHA256SUMS duplicate", func(t *testing.T, fsys fstest.MapFS) {
			lines := strings.SplitAfter(string(fsys[SumsFile].Data), "\n")
			fsys[SumsFile].Data = []byte(lines[0] + strings.Join(lines, ""))
		}, "bundle: SHA256SUMS: line 2: consts.bin is listed twice"},
		{"SHA256SUMS binary marker", func(t *testing.T, fsys fstest.MapFS) {
			fsys[SumsFile].Data = []byte(strings.Replace(string(fsys[SumsFile].Data), "  ", " *", 1))
		}, "bundle: SHA256SUMS: line 1 is not"},
		{"SHA256SUMS uppercase", func(t *testing.T, fsys fstest.MapFS) {
			fsys[SumsFile].Data = []byte(strings.ToUpper(string(fsys[SumsFile].Data)))
		}, "bundle: SHA256SUMS: line 1 is not"},
		{"SHA256SUMS no final newline", func(t *testing.T, fsys fstest.MapFS) {
			d := fsys[SumsFile].Data
			fsys[SumsFile].Data = d[:len(d)-1]
		}, "bundle: SHA256SUMS: does not end with a newline"},
		{"SHA256SUMS empty", func(t *testing.T, fsys fstest.MapFS) { fsys[SumsFile].Data = nil }, "bundle: SHA256SUMS: is empty"},
		{"SHA256SUMS path escape", func(t *testing.T, fsys fstest.MapFS) {
			fsys[SumsFile].Data = append([]byte("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  ../x\n"), fsys[SumsFile].Data...)
		}, `bundle: SHA256SUMS: line 1: file name "../x" contains ".."`},
		{"manifest changed", func(t *testing.T, fsys fstest.MapFS) {
			fsys[ManifestFile].Data = append(slices.Clone(fsys[ManifestFile].Data), ' ')
		}, "bundle: manifest.json: SHA-256 mismatch, the file is corrupt or was changed"},
		{"data changed", func(t *testing.T, fsys fstest.MapFS) {
			d := slices.Clone(fsys["weights.bin"].Data)
			d[0]++
			fsys["weights.bin"].Data = d
		}, "bundle: weights.bin: SHA-256 mismatch, the file is corrupt or was changed"},
		{"data size changed", func(t *testing.T, fsys fstest.MapFS) {
			fsys["weights.bin"].Data = append(slices.Clone(fsys["weights.bin"].Data), 0)
		}, "bundle: weights.bin: is 161 bytes, the manifest says 160"},
		{"version 2", func(t *testing.T, fsys fstest.MapFS) {
			reseal(t, fsys, func(m map[string]any) { m["version"] = 2; m["new_field"] = true })
		}, "bundle: version 2 is not supported by this vitc"},
		{"other format", func(t *testing.T, fsys fstest.MapFS) {
			reseal(t, fsys, func(m map[string]any) { m["format"] = "onnx" })
		}, `bundle: manifest.json: format is "onnx", want "vitc-bundle"`},
		{"unknown field", func(t *testing.T, fsys fstest.MapFS) {
			reseal(t, fsys, func(m map[string]any) { m["sections"].([]any)[0].(map[string]any)["compressed"] = true })
		}, `bundle: manifest.json: invalid: json: unknown field "compressed"`},
		{"trailing data", func(t *testing.T, fsys fstest.MapFS) {
			list := filesOf(t, fsys)
			fsys[ManifestFile].Data = append(slices.Clone(fsys[ManifestFile].Data), "{}"...)
			fsys[SumsFile].Data = sumsFor(fsys, list)
		}, "bundle: manifest.json: invalid: data after the JSON object"},
		{"files unsorted", func(t *testing.T, fsys fstest.MapFS) {
			reseal(t, fsys, func(m map[string]any) {
				f := m["files"].([]any)
				f[0], f[1] = f[1], f[0]
			})
		}, "bundle: manifest.json: files: consts.bin is listed twice or out of order"},
		{"files lists SHA256SUMS", func(t *testing.T, fsys fstest.MapFS) {
			reseal(t, fsys, func(m map[string]any) {
				m["files"] = append(m["files"].([]any), map[string]any{"name": SumsFile, "bytes": 0, "sha256": strings.Repeat("0", 64)})
			})
		}, `bundle: manifest.json: files[8]: file name "SHA256SUMS" is reserved`},
		{"files size over limit", func(t *testing.T, fsys fstest.MapFS) {
			reseal(t, fsys, func(m map[string]any) { m["files"].([]any)[0].(map[string]any)["bytes"] = int64(maxFileBytes) + 1 })
		}, "bundle: manifest.json: files: consts.bin: size 1073741825 is outside [0, 1024 MiB]"},
		{"sums and manifest disagree", func(t *testing.T, fsys fstest.MapFS) {
			reseal(t, fsys, func(m map[string]any) { m["files"].([]any)[0].(map[string]any)["sha256"] = strings.Repeat("a", 64) })
			fsys[SumsFile].Data = sumsFor(fsys, filesOf(t, fsys))
		}, "bundle: SHA256SUMS: consts.bin: SHA-256 differs from the one in manifest.json"},
		{"section past end", func(t *testing.T, fsys fstest.MapFS) {
			reseal(t, fsys, func(m map[string]any) { m["sections"].([]any)[0].(map[string]any)["offset"] = int64(1) << 62 })
		}, `bundle: manifest.json: section "weights": bytes [4611686018427387904, +96) are outside weights.bin (160 bytes)`},
		{"bad crc syntax", func(t *testing.T, fsys fstest.MapFS) {
			reseal(t, fsys, func(m map[string]any) { m["sections"].([]any)[0].(map[string]any)["crc32c"] = "ABCDEF01" })
		}, `bundle: manifest.json: section "weights": crc32c "ABCDEF01" is not 8 lowercase hex digits`},
		{"shape overflow", func(t *testing.T, fsys fstest.MapFS) {
			reseal(t, fsys, func(m map[string]any) {
				m["golden"].([]any)[0].(map[string]any)["shape"] = []any{int64(1) << 40, int64(1) << 40}
			})
		}, `bundle: manifest.json: golden "input": shape [1099511627776 1099511627776] of int8 overflows`},
		{"symlinked file", func(t *testing.T, fsys fstest.MapFS) {
			fsys["real.asm"] = fsys["program.asm"]
			fsys["program.asm"] = &fstest.MapFile{Data: []byte("real.asm"), Mode: fs.ModeSymlink}
		}, "bundle: program.asm: is a symbolic link"},
		{"symlinked directory", func(t *testing.T, fsys fstest.MapFS) {
			for _, name := range []string{"input.bin", "input.hex", "logits.bin", "logits.hex"} {
				fsys["elsewhere/"+name] = fsys["golden/"+name]
				delete(fsys, "golden/"+name)
			}
			fsys["golden"] = &fstest.MapFile{Data: []byte("elsewhere"), Mode: fs.ModeSymlink}
		}, "bundle: golden/input.bin: directory golden is a symbolic link"},
		{"directory instead of file", func(t *testing.T, fsys fstest.MapFS) {
			delete(fsys, "program.asm")
			fsys["program.asm/x"] = &fstest.MapFile{}
		}, "bundle: program.asm: is not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := cloneFS(testFS(t))
			tt.edit(t, fsys)
			_, err := ReadFS(fsys)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("ReadFS = %v\nwant prefix %q", err, tt.want)
			}
		})
	}
}

func dropLine(data []byte, name string) []byte {
	var out []string
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if !strings.HasSuffix(line, "  "+name+"\n") {
			out = append(out, line)
		}
	}
	return []byte(strings.Join(out, ""))
}

func filesOf(t *testing.T, fsys fstest.MapFS) []any {
	t.Helper()
	var m struct{ Files []File }
	if err := json.Unmarshal(fsys[ManifestFile].Data, &m); err != nil {
		t.Fatal(err)
	}
	var list []any
	for _, f := range m.Files {
		list = append(list, map[string]any{"name": f.Name})
	}
	return list
}

// hugeFS serves one file whose Stat claims 2 GiB and whose reads never
// end, to show that the size limit is applied before and while reading.
type hugeFS struct {
	fstest.MapFS
	name string
	size int64
}

func (h hugeFS) Open(name string) (fs.File, error) {
	if name == h.name {
		return &hugeFile{size: h.size}, nil
	}
	return h.MapFS.Open(name)
}

type hugeFile struct{ size int64 }

func (f *hugeFile) Stat() (fs.FileInfo, error) { return hugeInfo{f.size}, nil }
func (f *hugeFile) Read(p []byte) (int, error) { clear(p); return len(p), nil }
func (f *hugeFile) Close() error               { return nil }

type hugeInfo struct{ size int64 }

func (i hugeInfo) Name() string       { return "huge" }
func (i hugeInfo) Size() int64        { return i.size }
func (i hugeInfo) Mode() fs.FileMode  { return 0o644 }
func (i hugeInfo) ModTime() time.Time { return time.Time{} }
func (i hugeInfo) IsDir() bool        { return false }
func (i hugeInfo) Sys() any           { return nil }

func TestReadFSSizeLimits(t *testing.T) {
	fsys := testFS(t)
	_, err := ReadFS(hugeFS{MapFS: fsys, name: "weights.bin", size: 2 << 30})
	if err == nil || err.Error() != "bundle: weights.bin: is 2147483648 bytes, over the 1024 MiB limit" {
		t.Errorf("ReadFS = %v", err)
	}
	_, err = ReadFS(hugeFS{MapFS: fsys, name: SumsFile, size: 100 << 20})
	if err == nil || err.Error() != "bundle: SHA256SUMS: is 104857600 bytes, over the 64 MiB limit" {
		t.Errorf("ReadFS = %v", err)
	}
	// A file that lies about its size is cut off just past the limit.
	fsys["x"] = &fstest.MapFile{}
	_, err = loadFile(hugeFS{MapFS: fsys, name: "x", size: 10}, "x", 1<<20, -1)
	if err == nil || !strings.Contains(err.Error(), "changed size while being read") {
		t.Errorf("loadFile = %v", err)
	}
}

func TestRead(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "b")
	m, files := testInputs()
	if err := Write(dir, m, files); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "weights.bin"), []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Read(dir)
	if want := "bundle " + dir + ": weights.bin: is 5 bytes, the manifest says 160"; err == nil || err.Error() != want {
		t.Errorf("Read = %v, want %q", err, want)
	}
	if err := os.Remove(filepath.Join(dir, "weights.bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(parent, "elsewhere"), filepath.Join(dir, "weights.bin")); err != nil {
		t.Skip(err)
	}
	if err := os.WriteFile(filepath.Join(parent, "elsewhere"), files["weights.bin"], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Read(dir)
	if want := "bundle " + dir + ": weights.bin: is a symbolic link"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Read = %v, want %q", err, want)
	}
	if _, err := Read(filepath.Join(parent, "missing")); err == nil || !strings.Contains(err.Error(), "SHA256SUMS: is missing") {
		t.Errorf("Read(missing) = %v", err)
	}
}

// TestAccessorsAfterTampering changes a verified Bundle's exported fields:
// the accessors must report errors, not panic.
func TestAccessorsAfterTampering(t *testing.T) {
	b, err := ReadFS(testFS(t))
	if err != nil {
		t.Fatal(err)
	}
	b.Manifest.Sections[0].Offset = 1 << 62
	if _, err := b.Section("weights"); err == nil {
		t.Error("Section with a huge offset succeeded")
	}
	if _, _, err := b.TensorBytes("blk0.fc1.w"); err == nil {
		t.Error("TensorBytes in a broken section succeeded")
	}
	b.Manifest.Tensors[1].Bytes = -1
	if _, _, err := b.TensorBytes("blk0.fc1.b"); err == nil {
		t.Error("TensorBytes with negative size succeeded")
	}
	b.Manifest.Tensors[2].Section = "gone"
	if _, _, err := b.TensorBytes("gelu.lut"); err == nil {
		t.Error("TensorBytes with a missing section succeeded")
	}
	delete(b.Files, "golden/input.bin")
	if _, _, err := b.GoldenBytes("input"); err == nil {
		t.Error("GoldenBytes of a missing file succeeded")
	}
}

// checkAccessors calls every accessor for every item of a bundle ReadFS
// accepted and checks that each succeeds with a slice of the right size.
func checkAccessors(t *testing.T, b *Bundle) {
	t.Helper()
	for _, s := range b.Manifest.Sections {
		data, err := b.Section(s.Name)
		if err != nil || int64(len(data)) != s.Bytes || cap(data) != len(data) {
			t.Fatalf("Section(%q) = %d bytes (cap %d), %v; want %d", s.Name, len(data), cap(data), err, s.Bytes)
		}
	}
	for _, tensor := range b.Manifest.Tensors {
		data, tp, err := b.TensorBytes(tensor.Name)
		if err != nil || int64(len(data)) != tensor.Bytes || cap(data) != len(data) || tp == nil || tp.Name != tensor.Name {
			t.Fatalf("TensorBytes(%q) = %d bytes, %v, %v; want %d", tensor.Name, len(data), tp, err, tensor.Bytes)
		}
	}
	for _, g := range b.Manifest.Golden {
		data, gp, err := b.GoldenBytes(g.Name)
		want, serr := shapeBytes(g.Shape, g.DType)
		if err != nil || serr != nil || int64(len(data)) != want || gp == nil || gp.Name != g.Name {
			t.Fatalf("GoldenBytes(%q) = %d bytes, %v, %v; want %d", g.Name, len(data), gp, err, want)
		}
	}
}
