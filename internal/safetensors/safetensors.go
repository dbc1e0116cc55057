// Package safetensors reads and writes the safetensors format used for vitc
// checkpoints (tensor names and layouts as timm, vitc's own configuration in
// the "__metadata__" map).
//
// Layout: an 8-byte little-endian header length N, N bytes of JSON header
// mapping tensor names to {"dtype", "shape", "data_offsets"} (plus an optional
// "__metadata__" object of string values), then the data buffer, to which the
// offsets are relative.
//
// Files come from outside (downloads, other tools, interrupted writes), so
// every size is checked against the real file size before anything is
// allocated from it, and every tensor is checked to lie inside the buffer
// without overlapping another.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

const (
	// MaxHeaderLen bounds the JSON header. The reference implementation
	// refuses headers over 100 MB; a checkpoint of thousands of tensors needs
	// well under 1 MiB, so anything larger is corruption or not safetensors.
	MaxHeaderLen = 100 << 20

	prefixLen   = 8
	metadataKey = "__metadata__"
)

// dtypeSizes gives the element size in bytes of every dtype this package can
// lay out. The sub-byte dtypes (F4, F6_*) are deliberately absent: their
// byte length is not elements*size and vitc never produces or needs them.
var dtypeSizes = map[string]int64{
	"BOOL":    1,
	"U8":      1,
	"I8":      1,
	"F8_E5M2": 1,
	"F8_E4M3": 1,
	"F8_E8M0": 1,
	"I16":     2,
	"U16":     2,
	"F16":     2,
	"BF16":    2,
	"I32":     4,
	"U32":     4,
	"F32":     4,
	"I64":     8,
	"U64":     8,
	"F64":     8,
	"C64":     8,
}

// Tensor is one named tensor as stored: Data holds the raw little-endian
// bytes, len(Data) == elements*dtype size.
type Tensor struct {
	Name  string
	DType string
	Shape []int
	Data  []byte
}

// File is a parsed safetensors file. Tensors are in data-offset order, which
// is the order they were written in.
type File struct {
	Metadata map[string]string
	Tensors  []Tensor
}

// FormatError reports a malformed or foreign file. Path is empty when the
// bytes did not come from a named file.
type FormatError struct {
	Path string
	// NotSafetensors is set when the bytes do not look like safetensors at
	// all (an image, a PyTorch zip, text), as opposed to a damaged one.
	NotSafetensors bool
	Reason         string
	Err            error // underlying error, if any (e.g. from the JSON decoder)
}

func (e *FormatError) Error() string {
	subject := "safetensors"
	if e.Path != "" {
		subject = "checkpoint " + e.Path
	}
	msg := e.Reason
	if e.Err != nil {
		if msg != "" {
			msg += ": "
		}
		msg += e.Err.Error()
	}
	if e.NotSafetensors {
		if e.Path == "" {
			return "safetensors: not a safetensors file: " + msg
		}
		return subject + " is not a safetensors file: " + msg
	}
	return subject + ": " + msg
}

func (e *FormatError) Unwrap() error { return e.Err }

func formatErr(path, format string, args ...any) *FormatError {
	return &FormatError{Path: path, Reason: fmt.Sprintf(format, args...)}
}

func foreignErr(path, format string, args ...any) *FormatError {
	return &FormatError{Path: path, NotSafetensors: true, Reason: fmt.Sprintf(format, args...)}
}

// Lookup returns the tensor with the given name.
func (f *File) Lookup(name string) (*Tensor, bool) {
	for i := range f.Tensors {
		if f.Tensors[i].Name == name {
			return &f.Tensors[i], true
		}
	}
	return nil, false
}

// Parse parses a complete safetensors file held in memory. The returned
// tensors' Data alias b.
func Parse(b []byte) (*File, error) {
	return parse("", b)
}

func parse(path string, b []byte) (*File, error) {
	size := int64(len(b))
	n, err := checkPrefix(path, b[:min(len(b), prefixLen+1)], size)
	if err != nil {
		return nil, err
	}
	header := b[prefixLen : prefixLen+n]
	data := b[prefixLen+n:]
	f, spans, err := parseHeader(path, header, int64(len(data)))
	if err != nil {
		return nil, err
	}
	attach(f, spans, data)
	return f, nil
}

// ReadFile reads and validates a safetensors file. The header is read and
// checked against the file's size before the data buffer is allocated, so a
// corrupt or foreign file costs no more memory than its header.
func ReadFile(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if st.IsDir() {
		return nil, formatErr(path, "is a directory")
	}
	if !st.Mode().IsRegular() {
		// Everything below trusts the size from Stat.
		return nil, formatErr(path, "not a regular file (%v)", st.Mode().Type())
	}
	size := st.Size()

	head := make([]byte, min(size, prefixLen+1))
	if _, err := io.ReadFull(fh, head); err != nil {
		return nil, &FormatError{Path: path, Reason: "reading header length", Err: err}
	}
	n, err := checkPrefix(path, head, size)
	if err != nil {
		return nil, err
	}
	header := make([]byte, n)
	if _, err := fh.ReadAt(header, prefixLen); err != nil {
		return nil, &FormatError{Path: path, Reason: "reading header (file changed while reading?)", Err: err}
	}
	dataLen := size - prefixLen - n
	if dataLen > math.MaxInt {
		return nil, formatErr(path, "data buffer of %d bytes does not fit in memory on this platform", dataLen)
	}
	f, spans, err := parseHeader(path, header, dataLen)
	if err != nil {
		return nil, err
	}
	data := make([]byte, dataLen)
	if _, err := fh.ReadAt(data, prefixLen+n); err != nil {
		return nil, &FormatError{Path: path, Reason: "reading data (file changed while reading?)", Err: err}
	}
	attach(f, spans, data)
	return f, nil
}

// checkPrefix validates the 8-byte header length against the file size. head
// holds the first min(size, 9) bytes: the ninth is the first header byte,
// which the format requires to be '{' and which tells foreign files apart
// from damaged ones before their header length is trusted.
func checkPrefix(path string, head []byte, size int64) (int64, error) {
	// Magic numbers are only consulted once the file has failed to look like
	// safetensors: a real header length can begin with the same bytes (640
	// is "\x80\x02", the start of a pickle).
	if size < prefixLen {
		if kind := sniff(head); kind != "" {
			return 0, foreignErr(path, "looks like %s", kind)
		}
		return 0, foreignErr(path, "only %d bytes, shorter than the 8-byte header length", size)
	}
	if len(head) > prefixLen && head[prefixLen] != '{' {
		if kind := sniff(head); kind != "" {
			return 0, foreignErr(path, "looks like %s", kind)
		}
		return 0, foreignErr(path, "header does not start with '{' (first bytes %q)", head)
	}
	n := binary.LittleEndian.Uint64(head)
	if n > uint64(size-prefixLen) {
		return 0, formatErr(path, "header length %d exceeds file size %d", n, size)
	}
	if n > MaxHeaderLen {
		return 0, formatErr(path, "header length %d exceeds the %d MiB limit", n, MaxHeaderLen>>20)
	}
	if n < 2 {
		return 0, formatErr(path, "header length %d is too short for a JSON object", n)
	}
	return int64(n), nil
}

// sniff names common file types that end up where a checkpoint was expected,
// so the error tells the user what they actually have.
func sniff(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return "a PNG image"
	case bytes.HasPrefix(head, []byte("\xff\xd8\xff")):
		return "a JPEG image"
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		return "a zip archive (a PyTorch .pt/.pth checkpoint? convert it to safetensors)"
	case len(head) >= 2 && head[0] == 0x80 && head[1] >= 2 && head[1] <= 5:
		return "a Python pickle (a legacy PyTorch checkpoint? convert it to safetensors)"
	case bytes.HasPrefix(head, []byte("\x93NUMPY")):
		return "a NumPy .npy file"
	case bytes.HasPrefix(head, []byte("\x1f\x8b")):
		return "a gzip file"
	case bytes.HasPrefix(head, []byte("version h")):
		return "a Git LFS pointer (fetch the real file with git lfs pull)"
	}
	return ""
}

// span locates one tensor in the data buffer.
type span struct{ begin, end int64 }

// parseHeader validates the JSON header against a data buffer of dataLen
// bytes and returns the file (without Data) and each tensor's span.
func parseHeader(path string, header []byte, dataLen int64) (*File, []span, error) {
	if !utf8.Valid(header) {
		return nil, nil, formatErr(path, "header is not valid UTF-8")
	}
	f := &File{}
	var spans []span
	err := walkObject("header", header, func(name string, raw json.RawMessage) error {
		if name == metadataKey {
			md, err := parseMetadata(raw)
			if err != nil {
				return err
			}
			f.Metadata = md
			return nil
		}
		t, s, err := parseEntry(name, raw, dataLen)
		if err != nil {
			return err
		}
		f.Tensors = append(f.Tensors, t)
		spans = append(spans, s)
		return nil
	})
	if err != nil {
		var fe *FormatError
		if errors.As(err, &fe) {
			fe.Path = path
			return nil, nil, fe
		}
		return nil, nil, &FormatError{Path: path, Err: err}
	}

	// Sort into data-offset order (ties: empty tensors first, then by name so
	// the order is deterministic) and reject overlaps.
	idx := make([]int, len(spans))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		if c := cmpInt64(spans[a].begin, spans[b].begin); c != 0 {
			return c
		}
		if c := cmpInt64(spans[a].end, spans[b].end); c != 0 {
			return c
		}
		return strings.Compare(f.Tensors[a].Name, f.Tensors[b].Name)
	})
	tensors := make([]Tensor, len(idx))
	sorted := make([]span, len(idx))
	prev := -1
	for k, i := range idx {
		tensors[k], sorted[k] = f.Tensors[i], spans[i]
		s := spans[i]
		if s.begin == s.end {
			continue // an empty tensor occupies no bytes and cannot overlap
		}
		if prev >= 0 && s.begin < spans[prev].end {
			return nil, nil, formatErr(path, "tensors %q [%d, %d) and %q [%d, %d) overlap",
				f.Tensors[prev].Name, spans[prev].begin, spans[prev].end,
				f.Tensors[i].Name, s.begin, s.end)
		}
		prev = i
	}
	f.Tensors = tensors
	return f, sorted, nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func parseEntry(name string, raw json.RawMessage, dataLen int64) (Tensor, span, error) {
	bad := func(format string, args ...any) (Tensor, span, error) {
		return Tensor{}, span{}, &FormatError{Reason: fmt.Sprintf("tensor %q: ", name) + fmt.Sprintf(format, args...)}
	}
	if len(raw) == 0 || raw[0] != '{' {
		return bad("entry is %s, not an object", jsonKind(raw))
	}
	// Walked by hand, not unmarshalled into a struct: encoding/json matches
	// field names case-insensitively and keeps the last of duplicate keys,
	// and its type errors speak of Go types rather than the format.
	var e struct{ DType, Shape, DataOffsets json.RawMessage }
	err := walkObject("entry", raw, func(k string, v json.RawMessage) error {
		switch k {
		case "dtype":
			e.DType = v
		case "shape":
			e.Shape = v
		case "data_offsets":
			e.DataOffsets = v
		}
		// Other keys are ignored so that a future writer's additions load.
		return nil
	})
	if err != nil {
		return bad("%v", err)
	}
	if isMissing(e.DType) {
		return bad("missing dtype")
	}
	var dtype string
	if e.DType[0] != '"' || json.Unmarshal(e.DType, &dtype) != nil {
		return bad("dtype is %s, not a string", jsonKind(e.DType))
	}
	if isMissing(e.Shape) {
		return bad("missing shape")
	}
	dims, err := intArray(e.Shape)
	if err != nil {
		return bad("shape %v", err)
	}
	if isMissing(e.DataOffsets) {
		return bad("missing data_offsets")
	}
	offs, err := intArray(e.DataOffsets)
	if err != nil {
		return bad("data_offsets %v", err)
	}
	esize, ok := dtypeSizes[dtype]
	if !ok {
		return bad("unknown dtype %q", dtype)
	}
	shape := make([]int, len(dims))
	for i, d := range dims {
		if d < 0 {
			return bad("negative dimension %d in shape %v", d, dims)
		}
		if d > math.MaxInt {
			return bad("dimension %d in shape %v does not fit in int", d, dims)
		}
		shape[i] = int(d)
	}
	count, ok := elementCount(dims)
	if !ok {
		return bad("element count of shape %v overflows", dims)
	}
	if count > math.MaxInt64/esize {
		return bad("byte size of shape %v overflows", dims)
	}
	if len(offs) != 2 {
		return bad("data_offsets %v is not [begin, end]", offs)
	}
	begin, end := offs[0], offs[1]
	if begin < 0 || begin > end || end > dataLen {
		return bad("data_offsets [%d, %d] outside the %d-byte data buffer", begin, end, dataLen)
	}
	if want := count * esize; end-begin != want {
		return bad("data_offsets [%d, %d] hold %d bytes, but %s %v needs %d",
			begin, end, end-begin, dtype, dims, want)
	}
	return Tensor{Name: name, DType: dtype, Shape: shape}, span{begin, end}, nil
}

// elementCount multiplies the dims. It reports overflow whenever the nonzero
// dims overflow, even if another dim is zero, so the verdict does not depend
// on the order of the dims.
func elementCount(shape []int64) (int64, bool) {
	n, zero := int64(1), false
	for _, d := range shape {
		if d == 0 {
			zero = true
			continue
		}
		if n > math.MaxInt64/d {
			return 0, false
		}
		n *= d
	}
	if zero {
		return 0, true
	}
	return n, true
}

func isMissing(v json.RawMessage) bool {
	return len(v) == 0 || string(v) == "null"
}

// intArray decodes a JSON array of integers that fit in int64.
func intArray(raw json.RawMessage) ([]int64, error) {
	if raw[0] != '[' {
		return nil, fmt.Errorf("is %s, not an array of integers", jsonKind(raw))
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, err
	}
	out := make([]int64, len(elems))
	for i, el := range elems {
		// ParseInt rejects fractions, exponents and quoted numbers alike.
		v, err := strconv.ParseInt(string(el), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("element %d (%.40s) is not an integer in the int64 range", i, el)
		}
		out[i] = v
	}
	return out, nil
}

func parseMetadata(raw json.RawMessage) (map[string]string, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	md := map[string]string{}
	err := walkObject(metadataKey, raw, func(k string, v json.RawMessage) error {
		var s string
		if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
			return fmt.Errorf("%s[%q] is %s, not a string", metadataKey, k, jsonKind(v))
		}
		md[k] = s
		return nil
	})
	if err != nil {
		return nil, err
	}
	return md, nil
}

func jsonKind(v json.RawMessage) string {
	if len(v) == 0 {
		return "empty"
	}
	switch v[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '"':
		return "a malformed string"
	}
	return "a number"
}

// walkObject calls fn for each member of the JSON object in b, in order. It
// exists because encoding/json silently keeps the last of duplicate keys,
// and a duplicated tensor name would make which weights load depend on the
// decoder.
func walkObject(what string, b []byte, fn func(key string, val json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%s is not valid JSON: %w", what, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("%s is not a JSON object", what)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%s is not valid JSON: %w", what, err)
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("%s is not valid JSON: object key is not a string", what)
		}
		if seen[key] {
			if what == "header" {
				return fmt.Errorf("duplicate tensor name %q", key)
			}
			return fmt.Errorf("duplicate key %q in %s", key, what)
		}
		seen[key] = true
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return fmt.Errorf("%s is not valid JSON: value of %q: %w", what, key, err)
		}
		if err := fn(key, val); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("%s is not valid JSON: %w", what, err)
	}
	// Writers pad the header with spaces for alignment; JSON whitespace is
	// all that may follow the object.
	if rest := bytes.TrimLeft(b[dec.InputOffset():], " \t\r\n"); len(rest) != 0 {
		return fmt.Errorf("%s is not valid JSON: %d unexpected bytes after the object", what, len(rest))
	}
	return nil
}

// attach points each tensor's Data at its span. The capacity is capped so an
// append to one tensor's Data cannot overwrite the next tensor.
func attach(f *File, spans []span, data []byte) {
	for i, s := range spans {
		f.Tensors[i].Data = data[s.begin:s.end:s.end]
	}
}
