package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// Read reads and verifies the bundle in directory dir; see ReadFS. Errors
// name dir.
func Read(dir string) (*Bundle, error) {
	if dir == "" {
		return nil, errors.New("bundle: empty directory name")
	}
	return readFS(os.DirFS(dir), "bundle "+dir)
}

// ReadFS reads and verifies the bundle at the root of fsys. It refuses,
// with a one-line error naming the file at fault, a bundle whose
// SHA256SUMS is malformed or does not list exactly manifest.json and the
// manifest's files; any file whose size or SHA-256 differs from the
// records; a manifest that does not decode strictly or is of another
// format or version; a symbolic link or non-regular file; a file over
// 1 GiB; and a manifest that is structurally inconsistent (ranges, sizes,
// shapes, CRC-32C of sections, .hex not matching .bin). Files in fsys that
// the manifest does not list are ignored.
func ReadFS(fsys fs.FS) (*Bundle, error) {
	return readFS(fsys, "bundle")
}

// versionError is kept apart from other manifest errors because it is the
// one a user is likely to meet (a bundle from a newer vitc), and it reads
// better without the file name.
type versionError struct{ version int }

func (e *versionError) Error() string {
	return fmt.Sprintf("version %d is not supported by this vitc", e.version)
}

// sumEntry is one line of SHA256SUMS.
type sumEntry struct{ name, hash string }

func readFS(fsys fs.FS, prefix string) (*Bundle, error) {
	fail := func(file string, err error) error {
		return fmt.Errorf("%s: %s: %v", prefix, file, err)
	}
	// blame reports a *problem against the file it names, or against
	// manifest.json when the manifest's description is what is wrong.
	blame := func(err error) error {
		var p *problem
		if !errors.As(err, &p) {
			return fail(ManifestFile, err)
		}
		if p.file == "" {
			return fail(ManifestFile, errors.New(p.msg))
		}
		return fail(p.file, errors.New(p.msg))
	}

	// SHA256SUMS first: it is what authenticates manifest.json, so nothing
	// in the manifest is believed before its checksum matches.
	sumsData, err := loadFile(fsys, SumsFile, maxMetaBytes, -1)
	if err != nil {
		return nil, fail(SumsFile, err)
	}
	sums, err := parseSums(sumsData)
	if err != nil {
		return nil, fail(SumsFile, err)
	}
	manifestHash := ""
	for _, e := range sums {
		if e.name == ManifestFile {
			manifestHash = e.hash
		}
	}
	if manifestHash == "" {
		return nil, fail(SumsFile, fmt.Errorf("does not list %s", ManifestFile))
	}
	manifestData, err := loadFile(fsys, ManifestFile, maxMetaBytes, -1)
	if err != nil {
		return nil, fail(ManifestFile, err)
	}
	if sha256Hex(manifestData) != manifestHash {
		return nil, fail(ManifestFile, errCorrupt)
	}
	m, err := decodeManifest(manifestData)
	if err != nil {
		if ve := (*versionError)(nil); errors.As(err, &ve) {
			return nil, fmt.Errorf("%s: %v", prefix, ve)
		}
		return nil, fail(ManifestFile, err)
	}
	if err := checkFileList(&m, sums); err != nil {
		return nil, blame(err)
	}

	files := make(map[string][]byte, len(m.Files)+2)
	files[SumsFile] = sumsData
	files[ManifestFile] = manifestData
	for _, f := range m.Files {
		data, err := loadFile(fsys, f.Name, maxFileBytes, f.Bytes)
		if err != nil {
			return nil, fail(f.Name, err)
		}
		// checkFileList made SHA256SUMS and the manifest agree, so one
		// comparison covers both.
		if sha256Hex(data) != f.SHA256 {
			return nil, fail(f.Name, errCorrupt)
		}
		files[f.Name] = data
	}

	if err := validateManifest(&m, files, true); err != nil {
		return nil, blame(err)
	}
	return &Bundle{Manifest: m, Files: files}, nil
}

var errCorrupt = errors.New("SHA-256 mismatch, the file is corrupt or was changed")

// loadFile reads name from fsys, refusing symbolic links, non-regular
// files and files over limit before reading their contents. want, when not
// negative, is the size the manifest records; checking it first avoids
// reading a file that is bound to fail.
func loadFile(fsys fs.FS, name string, limit, want int64) ([]byte, error) {
	if err := checkNoLinks(fsys, name); err != nil {
		return nil, err
	}
	f, err := fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errors.New("is missing")
	}
	if err != nil {
		return nil, fmt.Errorf("cannot open: %v", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot stat: %v", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("is not a regular file")
	}
	size := fi.Size()
	switch {
	case size < 0:
		return nil, fmt.Errorf("reports a negative size %d", size)
	case size > limit:
		return nil, fmt.Errorf("is %d bytes, over the %d MiB limit", size, limit>>20)
	case want >= 0 && size != want:
		return nil, fmt.Errorf("is %d bytes, the manifest says %d", size, want)
	}
	// Read at most limit+1 bytes whatever Stat said, so a file that grows,
	// or an fs.FS that misreports sizes, cannot exhaust memory.
	var buf bytes.Buffer
	buf.Grow(int(size) + bytes.MinRead)
	if _, err := buf.ReadFrom(io.LimitReader(f, limit+1)); err != nil {
		return nil, fmt.Errorf("cannot read: %v", err)
	}
	if int64(buf.Len()) != size {
		return nil, fmt.Errorf("changed size while being read (%d bytes, then %d)", size, buf.Len())
	}
	return buf.Bytes(), nil
}

// checkNoLinks refuses name if it, or any directory on its path, is a
// symbolic link: os.DirFS follows links, so a link could make a bundle
// serve files from outside its directory. File systems without Lstat
// cannot hold links worth worrying about; loadFile's regular-file check
// still applies to them.
func checkNoLinks(fsys fs.FS, name string) error {
	if _, ok := fsys.(fs.ReadLinkFS); !ok {
		return nil
	}
	for i := 0; ; {
		j := strings.IndexByte(name[i:], '/')
		last := j < 0
		p := name
		if !last {
			p = name[:i+j]
		}
		fi, err := fs.Lstat(fsys, p)
		if errors.Is(err, fs.ErrNotExist) {
			return errors.New("is missing")
		}
		if err != nil {
			return fmt.Errorf("cannot stat: %v", err)
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if last {
				return errors.New("is a symbolic link, which a bundle must not contain")
			}
			return fmt.Errorf("directory %s is a symbolic link, which a bundle must not contain", p)
		}
		if last {
			return nil
		}
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", p)
		}
		i += j + 1
	}
}

// parseSums parses SHA256SUMS as written by Write. It is strict (exact
// spacing, lowercase, sorted, unique) because the file is machine-written
// and any deviation means damage; being strict is also what makes every
// single-byte change to it detectable.
func parseSums(data []byte) ([]sumEntry, error) {
	if len(data) == 0 {
		return nil, errors.New("is empty")
	}
	if data[len(data)-1] != '\n' {
		return nil, errors.New("does not end with a newline")
	}
	lines := strings.Split(string(data[:len(data)-1]), "\n")
	entries := make([]sumEntry, 0, len(lines))
	for i, line := range lines {
		if len(line) < 67 || !isSHA256Hex(line[:64]) || line[64:66] != "  " {
			return nil, fmt.Errorf("line %d is not \"<64 lowercase hex digits>  <name>\"", i+1)
		}
		e := sumEntry{name: line[66:], hash: line[:64]}
		if err := checkPath(e.name); err != nil {
			return nil, fmt.Errorf("line %d: %v", i+1, err)
		}
		if i > 0 {
			switch prev := entries[i-1].name; {
			case e.name == prev:
				return nil, fmt.Errorf("line %d: %s is listed twice", i+1, e.name)
			case e.name < prev:
				return nil, fmt.Errorf("line %d: %s is out of order, the lines must be sorted by name", i+1, e.name)
			}
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// decodeManifest decodes manifest.json strictly: unknown fields and
// trailing data are errors, because a field this reader does not know
// could change the meaning of the ones it does. Model and Quant are
// compacted so that a decoded manifest compares equal to the one Write
// was given.
func decodeManifest(data []byte) (Manifest, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return Manifest{}, errors.New("is empty")
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(&m)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("data after the JSON object")
		}
	}
	if err != nil {
		// A manifest of another format or version is expected to fail
		// strict decoding; say what it is rather than which field is new.
		var probe struct {
			Format  string `json:"format"`
			Version int    `json:"version"`
		}
		if json.Unmarshal(data, &probe) != nil || probe.Format == Format && probe.Version == Version {
			return Manifest{}, fmt.Errorf("invalid: %v", err)
		}
		m.Format, m.Version = probe.Format, probe.Version
	}
	if m.Format != Format {
		return Manifest{}, fmt.Errorf("format is %q, want %q", m.Format, Format)
	}
	if m.Version != Version {
		return Manifest{}, &versionError{m.Version}
	}
	if m.Model, err = compactJSON(m.Model); err != nil {
		return Manifest{}, fmt.Errorf("model: %v", err)
	}
	if m.Quant, err = compactJSON(m.Quant); err != nil {
		return Manifest{}, fmt.Errorf("quant: %v", err)
	}
	return m, nil
}

// compactJSON removes insignificant space; nil stays nil so that an absent
// field round-trips.
func compactJSON(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// checkFileList checks Manifest.Files and that SHA256SUMS lists exactly
// manifest.json and those files, with the same hashes. Both lists are
// sorted by name, so one merge pass compares them.
func checkFileList(m *Manifest, sums []sumEntry) error {
	for i, f := range m.Files {
		if err := checkDataName(f.Name); err != nil {
			return probf(ManifestFile, "files[%d]: %v", i, err)
		}
		if i > 0 && f.Name <= m.Files[i-1].Name {
			return probf(ManifestFile, "files: %s is listed twice or out of order", f.Name)
		}
		if f.Bytes < 0 || f.Bytes > maxFileBytes {
			return probf(ManifestFile, "files: %s: size %d is outside [0, %d MiB]", f.Name, f.Bytes, maxFileBytes>>20)
		}
		if !isSHA256Hex(f.SHA256) {
			return probf(ManifestFile, "files: %s: sha256 %q is not 64 lowercase hex digits", f.Name, f.SHA256)
		}
	}
	want := make([]sumEntry, 0, len(m.Files)+1)
	placed := false
	for _, f := range m.Files {
		if !placed && ManifestFile < f.Name {
			want = append(want, sumEntry{name: ManifestFile})
			placed = true
		}
		want = append(want, sumEntry{name: f.Name, hash: f.SHA256})
	}
	if !placed {
		want = append(want, sumEntry{name: ManifestFile})
	}
	i, j := 0, 0
	for i < len(sums) || j < len(want) {
		switch {
		case j == len(want) || i < len(sums) && sums[i].name < want[j].name:
			return probf(SumsFile, "lists %s, which %s does not", sums[i].name, ManifestFile)
		case i == len(sums) || sums[i].name > want[j].name:
			return probf(SumsFile, "does not list %s", want[j].name)
		}
		if want[j].name != ManifestFile && sums[i].hash != want[j].hash {
			return probf(SumsFile, "%s: SHA-256 differs from the one in %s", want[j].name, ManifestFile)
		}
		i++
		j++
	}
	return nil
}
