package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
)

// writeHook, when set by a test, runs after the temporary directory is
// complete and before it is installed; an error from it exercises Write's
// clean-up path, which no real failure triggers reliably.
var writeHook func(tmp string) error

// Write validates m against files and writes the bundle to dir.
//
// files maps bundle-relative slash paths ("weights.bin", "golden/input.hex")
// to their contents; manifest.json and SHA256SUMS are generated and may not
// be among them. Write fills in Format and Version when they are empty or
// zero, computes Sections[i].CRC32C and Files (replacing whatever m held),
// and on success stores the manifest as written in *m: Model and Quant
// compacted, nil slices made empty, so that it equals what Read returns.
// The validation is the one ReadFS applies, so Write never produces a
// bundle that Read refuses.
//
// The bundle is assembled in a temporary directory beside dir and renamed
// into place, so readers see the old bundle, briefly none, or the new one,
// never a mixture. An existing dir is replaced only if it is a bundle (has
// manifest.json) or empty; anything else is refused, so a mistyped path
// cannot destroy unrelated data. On error no temporary directory is left
// behind and an existing dir is unchanged.
func Write(dir string, m *Manifest, files map[string][]byte) error {
	if m == nil {
		return errors.New("bundle: nil manifest")
	}
	if dir == "" {
		return errors.New("bundle: empty directory name")
	}
	dir = filepath.Clean(dir)
	base := filepath.Base(dir)
	if base == "." || base == ".." || base == string(filepath.Separator) {
		return fmt.Errorf("bundle: %s cannot be replaced by a bundle; name a directory inside it", dir)
	}
	out, manifestData, sumsData, err := prepare(m, files)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	// Check the target before doing any work on disk, so the common
	// mistake costs nothing; install checks again.
	if _, err := targetState(dir); err != nil {
		return err
	}

	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	defer func() {
		if tmp != "" {
			os.RemoveAll(tmp)
		}
	}()
	// MkdirTemp makes the directory private; the bundle is meant to be read
	// by others, like any file Write creates.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	all := maps.Clone(files)
	all[ManifestFile] = manifestData
	all[SumsFile] = sumsData
	if err := populate(tmp, all); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if writeHook != nil {
		if err := writeHook(tmp); err != nil {
			return err
		}
	}
	installed, err := install(tmp, dir)
	if installed {
		tmp = ""
		*m = *out
	}
	return err
}

// prepare validates the inputs and computes everything Write puts on disk,
// so that no invalid input gets as far as creating a directory.
func prepare(m *Manifest, files map[string][]byte) (out *Manifest, manifestData, sumsData []byte, err error) {
	names := slices.Sorted(maps.Keys(files))
	for _, name := range names {
		if err := checkDataName(name); err != nil {
			return nil, nil, nil, err
		}
		if n := len(files[name]); n > maxFileBytes {
			return nil, nil, nil, fmt.Errorf("%s is %d bytes, over the %d MiB limit of readers", name, n, maxFileBytes>>20)
		}
		// The file system cannot hold both "golden" and "golden/x.bin".
		for i := range len(name) {
			if name[i] != '/' {
				continue
			}
			if _, ok := files[name[:i]]; ok {
				return nil, nil, nil, fmt.Errorf("%s is both a file and a directory", name[:i])
			}
		}
	}

	mm := *m
	if mm.Format == "" {
		mm.Format = Format
	}
	if mm.Version == 0 {
		mm.Version = Version
	}
	// Work on copies of the slices: Write fills them, and the caller's
	// manifest must stay as it was if Write fails. Normalising nil to
	// empty writes [] instead of null for the hardware team's tools, and
	// empty Scale to nil matches what omitempty reads back.
	mm.Sections = append([]Section{}, m.Sections...)
	mm.Tensors = append([]Tensor{}, m.Tensors...)
	mm.Golden = append([]Golden{}, m.Golden...)
	mm.Program.Layers = append([]Range{}, m.Program.Layers...)
	for i := range mm.Tensors {
		t := &mm.Tensors[i]
		if t.Shape == nil {
			t.Shape = []int{}
		}
		if len(t.Scale) == 0 {
			t.Scale = nil
		}
	}
	for i := range mm.Golden {
		if mm.Golden[i].Shape == nil {
			mm.Golden[i].Shape = []int{}
		}
	}
	if mm.Model, err = compactJSON(mm.Model); err != nil {
		return nil, nil, nil, fmt.Errorf("model is not valid JSON: %v", err)
	}
	if mm.Quant, err = compactJSON(mm.Quant); err != nil {
		return nil, nil, nil, fmt.Errorf("quant is not valid JSON: %v", err)
	}
	if err := validateManifest(&mm, files, false); err != nil {
		return nil, nil, nil, err
	}

	for i := range mm.Sections {
		s := &mm.Sections[i]
		s.CRC32C = crcHex(files[s.File][s.Offset : s.Offset+s.Bytes])
	}
	mm.Files = make([]File, 0, len(names))
	for _, name := range names {
		mm.Files = append(mm.Files, File{Name: name, Bytes: int64(len(files[name])), SHA256: sha256Hex(files[name])})
	}

	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // the manifest is read by people, not embedded in HTML
	enc.SetIndent("", "  ")
	if err := enc.Encode(&mm); err != nil { // Encode ends with the newline
		return nil, nil, nil, err
	}
	manifestData = b.Bytes()
	if len(manifestData) > maxMetaBytes {
		return nil, nil, nil, fmt.Errorf("%s would be %d bytes, over the %d MiB limit of readers", ManifestFile, len(manifestData), maxMetaBytes>>20)
	}
	// Everything the reader checks beyond validateManifest depends on the
	// manifest decoding back to what was meant; make sure it does, rather
	// than ship a bundle that Read refuses.
	if back, err := decodeManifest(manifestData); err != nil {
		return nil, nil, nil, fmt.Errorf("internal error: %s does not decode: %v", ManifestFile, err)
	} else if !reflect.DeepEqual(back, mm) {
		return nil, nil, nil, fmt.Errorf("internal error: %s does not decode back to the manifest", ManifestFile)
	}

	sums := map[string]string{ManifestFile: sha256Hex(manifestData)}
	for _, f := range mm.Files {
		sums[f.Name] = f.SHA256
	}
	var s bytes.Buffer
	for _, name := range slices.Sorted(maps.Keys(sums)) {
		fmt.Fprintf(&s, "%s  %s\n", sums[name], name)
	}
	return &mm, manifestData, s.Bytes(), nil
}

// populate writes files under root and syncs them and every directory it
// creates, so that once the rename publishes the bundle its contents
// survive a crash.
func populate(root string, files map[string][]byte) error {
	dirs := map[string]bool{root: true}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		path := filepath.Join(root, filepath.FromSlash(name))
		if d := filepath.Dir(path); !dirs[d] {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
			for ; !dirs[d]; d = filepath.Dir(d) {
				dirs[d] = true
			}
		}
		if err := writeFileSync(path, files[name]); err != nil {
			return err
		}
	}
	for d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return nil
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// targetState reports whether dir exists, and refuses a dir Write must not
// replace: anything but a bundle or an empty directory. A symbolic link is
// refused too, since renaming it would replace the link, not its target.
func targetState(dir string) (exists bool, err error) {
	fi, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("bundle: %w", err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return false, fmt.Errorf("bundle: %s is a symbolic link; refusing to replace it", dir)
	case !fi.IsDir():
		return false, fmt.Errorf("bundle: %s exists and is not a directory; refusing to replace it", dir)
	}
	if mi, err := os.Lstat(filepath.Join(dir, ManifestFile)); err == nil && mi.Mode().IsRegular() {
		return true, nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return false, fmt.Errorf("bundle: %w", err)
	}
	_, err = f.Readdirnames(1)
	f.Close()
	if err == io.EOF {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("bundle: %w", err)
	}
	return false, fmt.Errorf("bundle: %s is a non-empty directory without %s, not a bundle; refusing to replace it", dir, ManifestFile)
}

// install puts the complete bundle tmp in place of dir. installed reports
// whether tmp is now at dir; an error with installed true means only the
// clean-up of the previous bundle failed.
func install(tmp, dir string) (installed bool, err error) {
	// dir may have changed while the bundle was being written.
	exists, err := targetState(dir)
	if err != nil {
		return false, err
	}
	parent := filepath.Dir(dir)
	if !exists {
		if err := os.Rename(tmp, dir); err != nil {
			return false, fmt.Errorf("bundle: %w", err)
		}
		if err := syncDir(parent); err != nil {
			return true, fmt.Errorf("bundle: %s is written, but syncing %s failed: %w", dir, parent, err)
		}
		return true, nil
	}

	// Move the old bundle into a fresh directory of its own instead of to a
	// guessed name, so that nothing else can be in the way; rename cannot
	// replace a non-empty directory portably, which is why two renames are
	// needed at all.
	aside, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".old-*")
	if err != nil {
		return false, fmt.Errorf("bundle: %w", err)
	}
	old := filepath.Join(aside, "old")
	if err := os.Rename(dir, old); err != nil {
		os.Remove(aside)
		return false, fmt.Errorf("bundle: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if rerr := os.Rename(old, dir); rerr != nil {
			return false, fmt.Errorf("bundle: installing %s failed (%v), and so did restoring the previous bundle, which is now %s: %w", dir, err, old, rerr)
		}
		os.Remove(aside)
		return false, fmt.Errorf("bundle: %w", err)
	}
	if err := os.RemoveAll(aside); err != nil {
		return true, fmt.Errorf("bundle: %s is written, but the previous bundle could not be removed from %s: %w", dir, aside, err)
	}
	if err := syncDir(parent); err != nil {
		return true, fmt.Errorf("bundle: %s is written, but syncing %s failed: %w", dir, parent, err)
	}
	return true, nil
}
