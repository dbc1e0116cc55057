package bundle

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

// fuzzFiles and fuzzHashes are the fixed data files of the fuzz targets,
// computed once: the fuzzer's minimizer runs the target a great many times
// per interesting input, so each run must be cheap.
var fuzzFiles, fuzzHashes = func() (map[string]*fstest.MapFile, map[string]string) {
	_, files := testInputs()
	mapped := make(map[string]*fstest.MapFile, len(files))
	hashes := make(map[string]string, len(files))
	for name, data := range files {
		mapped[name] = &fstest.MapFile{Data: data}
		hashes[name] = sha256Hex(data)
	}
	return mapped, hashes
}()

// fuzzFS is the data files of testInputs with the given manifest.json and a
// SHA256SUMS computed to match it, so that fuzzed manifests get past the
// checksums and exercise decoding and structural validation. ReadFS does
// not modify the files, so they are shared between runs.
func fuzzFS(manifest []byte) fstest.MapFS {
	fsys := make(fstest.MapFS, len(fuzzFiles)+2)
	maps.Copy(fsys, fuzzFiles)
	fsys[ManifestFile] = &fstest.MapFile{Data: manifest}
	// The manifest's files list decides what SHA256SUMS must list; decode
	// it leniently, as far as it goes, to know the names.
	var listed struct {
		Files []File `json:"files"`
	}
	_ = json.Unmarshal(manifest, &listed)
	sums := map[string]string{ManifestFile: sha256Hex(manifest)}
	for _, f := range listed.Files {
		if h, ok := fuzzHashes[f.Name]; ok {
			sums[f.Name] = h
		} else {
			sums[f.Name] = f.SHA256
		}
	}
	var b bytes.Buffer
	for _, name := range slices.Sorted(maps.Keys(sums)) {
		b.WriteString(sums[name])
		b.WriteString("  ")
		b.WriteString(name)
		b.WriteByte('\n')
	}
	fsys[SumsFile] = &fstest.MapFile{Data: b.Bytes()}
	return fsys
}

// validManifest is manifest.json of testInputs.
func validManifest(t testing.TB) []byte {
	t.Helper()
	m, files := testInputs()
	_, manifestData, _, err := prepare(m, files)
	if err != nil {
		t.Fatal(err)
	}
	return manifestData
}

// validSeeds are the valid manifests among the committed seeds, in compact
// JSON: the fuzzer spends most of its time minimizing each new interesting
// input, at a cost that grows with the square of its length, so seeds are
// kept short. "small_valid" lists only a subset of the fixed files: one
// section, tensor, layer and golden value.
func validSeeds(t testing.TB) map[string][]byte {
	t.Helper()
	compact := func(data []byte) []byte {
		var b bytes.Buffer
		if err := json.Compact(&b, data); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	m, files := testInputs()
	m.Created, m.Quant, m.Model = "", nil, json.RawMessage(`{}`)
	m.Sections = m.Sections[2:]
	m.Tensors = m.Tensors[2:]
	m.Tensors[0].Note = ""
	m.Program.Layers = m.Program.Layers[1:]
	m.Golden = m.Golden[:1]
	for _, name := range []string{"weights.bin", "golden/logits.bin", "golden/logits.hex"} {
		delete(files, name)
	}
	_, small, _, err := prepare(m, files)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"valid":       compact(validManifest(t)),
		"small_valid": compact(small),
	}
}

// checkReadFS is the fuzz property: ReadFS does not panic, fails with a
// one-line error, or succeeds with a bundle whose every accessor works.
func checkReadFS(t *testing.T, fsys fstest.MapFS) {
	b, err := ReadFS(fsys)
	if err != nil {
		if msg := err.Error(); strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "bundle: ") {
			t.Fatalf("error is not one line starting with \"bundle: \": %q", msg)
		}
		return
	}
	checkAccessors(t, b)
}

func FuzzReadFS(f *testing.F) {
	// The committed corpus holds these too; adding them keeps the target
	// useful without testdata.
	for _, seed := range validSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, manifest []byte) {
		checkReadFS(t, fuzzFS(manifest))
	})
}

// FuzzSHA256SUMS fuzzes the other metadata file, with the valid manifest.
func FuzzSHA256SUMS(f *testing.F) {
	f.Add(testFS(f)[SumsFile].Data)
	f.Fuzz(func(t *testing.T, sums []byte) {
		fsys := testFS(t)
		fsys[SumsFile] = &fstest.MapFile{Data: sums}
		checkReadFS(t, fsys)
	})
}

func FuzzHexWords(f *testing.F) {
	f.Add([]byte{1, 2, 3}, 2, []byte("// x\n0201\n"))
	f.Fuzz(func(t *testing.T, data []byte, w int, text []byte) {
		if w < 1 || w > 64 {
			return
		}
		words, err := ParseHexWords(HexWords(data, w), w)
		if err != nil || !bytes.Equal(words[:len(data)], data) || len(words)-len(data) >= w {
			t.Fatalf("round trip of %x with w=%d: %x, %v", data, w, words, err)
		}
		// Arbitrary text must not panic either parser.
		_, _ = ParseHexWords(text, w)
		_ = hexMatches(text, data)
	})
}

// TestFuzzSeedsValid keeps the committed valid seeds in step with
// testInputs: if they stopped being valid bundles, the fuzzer would lose its
// best starting points silently.
func TestFuzzSeedsValid(t *testing.T) {
	for name, want := range validSeeds(t) {
		data, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzReadFS", name))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
			t.Fatalf("%s: not in the Go corpus format:\n%s", name, data)
		}
		manifest, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatal(err)
		}
		if manifest != string(want) {
			t.Fatalf("%s differs from the manifest the test data gives; regenerate it", name)
		}
		if _, err := ReadFS(fuzzFS([]byte(manifest))); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}
