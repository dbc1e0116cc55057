// Package npy reads and writes NumPy .npy files holding float32 data, the
// interchange format for arrays prepared in Python (datasets, reference
// activations). Only the simple, C-ordered little-endian layouts NumPy
// writes by default are read; anything else is refused with an error that
// says how to convert it in NumPy, rather than being guessed at.
//
// Format: "\x93NUMPY", major and minor version bytes, the header length
// (little-endian uint16 for version 1.0, uint32 for 2.0 and 3.0), a Python
// dict literal padded with spaces and a newline, then the raw data:
//
//	{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
package npy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"vitc/internal/atomicfile"
	"vitc/internal/rawio"
)

const (
	magic = "\x93NUMPY"

	// MaxHeaderLen bounds the dict literal. NumPy itself refuses headers
	// over 10000 bytes by default; even a 32-dimensional shape needs a few
	// hundred, so the cap only stops a corrupt length from being trusted.
	MaxHeaderLen = 64 << 10

	// align is NumPy's ARRAY_ALIGN: the data starts at a multiple of 64 so
	// the file can be memory-mapped with any dtype aligned.
	align = 64

	// growthDigits is NumPy's GROWTH_AXIS_MAX_DIGITS: spare header space so
	// the first axis can grow in place. Written to match NumPy byte for byte.
	growthDigits = 21

	// chunkSize bounds the read buffer so that a size argument that
	// overstates the stream costs at most one chunk before the short read
	// is noticed. It is a multiple of every item size.
	chunkSize = 64 << 10
)

// Read reads a .npy file of size bytes from r and returns its data, converted
// to float32, and its shape (empty, not nil, for a 0-d array). Accepted
// dtypes: '<f4', '<f8' (rounded to float32) and '|u1' (each byte's value, so
// 0..255). The data length must match the shape exactly: a truncated file or
// one with trailing bytes is an error.
func Read(r io.Reader, size int64) (data []float32, shape []int, err error) {
	data, shape, err = read(r, size)
	if err != nil {
		return nil, nil, fmt.Errorf("npy: %w", err)
	}
	return data, shape, nil
}

// ReadFile reads a .npy file; see Read.
func ReadFile(path string) ([]float32, []int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("npy: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("npy: %w", err)
	}
	if !st.Mode().IsRegular() {
		// The size from Stat is what bounds every allocation below.
		return nil, nil, fmt.Errorf("npy %s: not a regular file", path)
	}
	data, shape, err := read(f, st.Size())
	if err != nil {
		return nil, nil, fmt.Errorf("npy %s: %w", path, err)
	}
	return data, shape, nil
}

// dtype describes one accepted descr.
type dtype struct {
	size    int64
	convert func(dst []float32, src []byte) []float32
}

var dtypes = map[string]dtype{
	"<f4": {4, func(dst []float32, src []byte) []float32 {
		for i := 0; i+4 <= len(src); i += 4 {
			dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(src[i:])))
		}
		return dst
	}},
	"<f8": {8, func(dst []float32, src []byte) []float32 {
		for i := 0; i+8 <= len(src); i += 8 {
			dst = append(dst, float32(math.Float64frombits(binary.LittleEndian.Uint64(src[i:]))))
		}
		return dst
	}},
	"|u1": {1, func(dst []float32, src []byte) []float32 {
		for _, b := range src {
			dst = append(dst, float32(b))
		}
		return dst
	}},
}

func init() {
	// Byte order is meaningless for one byte; NumPy writes '|u1' but reads
	// all of these.
	for _, d := range []string{"<u1", ">u1", "=u1"} {
		dtypes[d] = dtypes["|u1"]
	}
}

func read(r io.Reader, size int64) ([]float32, []int, error) {
	if size < 0 {
		return nil, nil, fmt.Errorf("negative size %d", size)
	}
	pre := make([]byte, min(size, 8))
	if _, err := io.ReadFull(r, pre); err != nil {
		return nil, nil, fmt.Errorf("reading magic: %w", err)
	}
	if len(pre) == 0 {
		return nil, nil, errors.New("not a .npy file: empty")
	}
	if !bytes.HasPrefix(pre, []byte(magic)) {
		if len(pre) < len(magic) && strings.HasPrefix(magic, string(pre)) {
			return nil, nil, fmt.Errorf("truncated: only %d bytes", size)
		}
		return nil, nil, fmt.Errorf("not a .npy file: does not start with \\x93NUMPY (first bytes %q)", pre)
	}
	if len(pre) < 8 {
		return nil, nil, fmt.Errorf("truncated: only %d bytes", size)
	}
	major, minor := pre[6], pre[7]
	var lenSize int64
	switch {
	case major == 1 && minor == 0:
		lenSize = 2
	case (major == 2 || major == 3) && minor == 0:
		lenSize = 4
	default:
		return nil, nil, fmt.Errorf("unsupported format version %d.%d (want 1.0, 2.0 or 3.0)", major, minor)
	}
	if size < 8+lenSize {
		return nil, nil, fmt.Errorf("truncated: only %d bytes", size)
	}
	lb := make([]byte, lenSize)
	if _, err := io.ReadFull(r, lb); err != nil {
		return nil, nil, fmt.Errorf("reading header length: %w", err)
	}
	var hlen int64
	if lenSize == 2 {
		hlen = int64(binary.LittleEndian.Uint16(lb))
	} else {
		hlen = int64(binary.LittleEndian.Uint32(lb))
	}
	dataOff := 8 + lenSize + hlen
	if dataOff > size {
		return nil, nil, fmt.Errorf("header length %d exceeds file size %d", hlen, size)
	}
	if hlen > MaxHeaderLen {
		return nil, nil, fmt.Errorf("header length %d exceeds the %d KiB limit", hlen, MaxHeaderLen>>10)
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, nil, fmt.Errorf("reading header: %w", err)
	}
	descr, fortran, dims, err := parseHeader(hdr)
	if err != nil {
		return nil, nil, fmt.Errorf("header %q: %w", truncate(hdr, 120), err)
	}

	dt, ok := dtypes[descr]
	if !ok {
		switch descr {
		case ">f4", ">f8":
			return nil, nil, fmt.Errorf("big-endian dtype %q is not supported (save arr.astype('<%s') instead)", descr, descr[1:])
		}
		return nil, nil, fmt.Errorf("unsupported dtype %q (want '<f4', '<f8' or '|u1')", descr)
	}
	if fortran {
		return nil, nil, errors.New("fortran_order True is not supported (save np.ascontiguousarray(arr) instead)")
	}
	shape := make([]int, len(dims))
	count := int64(1)
	zero := false
	for i, d := range dims {
		if d < 0 {
			return nil, nil, fmt.Errorf("negative dimension %d in shape %v", d, dims)
		}
		if d > math.MaxInt {
			return nil, nil, fmt.Errorf("dimension %d does not fit in int", d)
		}
		shape[i] = int(d)
		// Overflow is judged on the nonzero dims so the verdict does not
		// depend on where a zero dim sits.
		if d == 0 {
			zero = true
			continue
		}
		if count > math.MaxInt64/d {
			return nil, nil, fmt.Errorf("element count of shape %v overflows", dims)
		}
		count *= d
	}
	if zero {
		count = 0
	}
	if count > math.MaxInt64/dt.size {
		return nil, nil, fmt.Errorf("byte size of shape %v overflows", dims)
	}
	need := count * dt.size
	if have := size - dataOff; have != need {
		hint := "truncated"
		if have > need {
			hint = "trailing bytes"
		}
		return nil, nil, fmt.Errorf("data is %d bytes but shape %v of %s needs %d (%s)", have, dims, descr, need, hint)
	}
	if count > math.MaxInt {
		return nil, nil, fmt.Errorf("%d elements do not fit in memory on this platform", count)
	}

	// Grown as data arrives rather than allocated up front: size is the
	// caller's claim, and a stream shorter than claimed must fail cheaply.
	out := make([]float32, 0, min(count, chunkSize))
	buf := make([]byte, min(need, chunkSize))
	for left := need; left > 0; {
		n := min(left, int64(len(buf)))
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return nil, nil, fmt.Errorf("reading data at byte %d of %d: %w", need-left, need, noEOF(err))
		}
		out = dt.convert(out, buf[:n])
		left -= n
	}
	return out, shape, nil
}

// noEOF reports a bare EOF in the data as what it is: the stream ended
// before the size the caller promised.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func truncate(b []byte, n int) string {
	b = bytes.TrimRight(b, " \n")
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// Write writes data as a version 1.0 '<f4' C-ordered array of the given
// shape, byte for byte as numpy.save (1.24) writes it: the header is padded
// with spaces and a newline so the data starts at a multiple of 64 bytes.
// An empty shape writes a 0-d array holding one value.
func Write(w io.Writer, data []float32, shape []int) error {
	header, err := encodeHeader(len(data), shape)
	if err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	if err := rawio.WriteFloat32s(w, header, data); err != nil {
		return fmt.Errorf("npy: %w", err)
	}
	return nil
}

// WriteFile writes a .npy file atomically; see Write. On error any existing
// file at path is left as it was.
func WriteFile(path string, data []float32, shape []int) error {
	header, err := encodeHeader(len(data), shape)
	if err != nil {
		return fmt.Errorf("npy %s: %w", path, err)
	}
	// atomicfile's errors already name path.
	return atomicfile.WriteFile(path, func(w io.Writer) error {
		return rawio.WriteFloat32s(w, header, data)
	})
}

func encodeHeader(n int, shape []int) ([]byte, error) {
	count := int64(1)
	zero := false
	for _, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("negative dimension in shape %v", shape)
		}
		if d == 0 {
			zero = true
			continue
		}
		if count > math.MaxInt64/int64(d) {
			return nil, fmt.Errorf("element count of shape %v overflows", shape)
		}
		count *= int64(d)
	}
	if zero {
		count = 0
	}
	if count != int64(n) {
		return nil, fmt.Errorf("shape %v has %d elements, data has %d", shape, count, n)
	}

	var d strings.Builder
	d.WriteString("{'descr': '<f4', 'fortran_order': False, 'shape': (")
	for i, s := range shape {
		if i > 0 {
			d.WriteString(", ")
		}
		d.WriteString(strconv.Itoa(s))
	}
	if len(shape) == 1 {
		d.WriteByte(',') // Python's one-element tuple
	}
	d.WriteString("), }")
	if len(shape) > 0 {
		d.WriteString(strings.Repeat(" ", max(0, growthDigits-len(strconv.Itoa(shape[0])))))
	}
	dict := d.String()

	hlen := len(dict) + 1 // + '\n'
	pad := align - (len(magic)+2+2+hlen)%align
	total := hlen + pad
	// NumPy would switch to version 2.0 here, but such a header (thousands
	// of dimensions; NumPy allows at most 64) would exceed MaxHeaderLen and
	// could not be read back anyway.
	if total > math.MaxUint16 {
		return nil, fmt.Errorf("shape with %d dimensions makes the header too long", len(shape))
	}
	out := make([]byte, 0, len(magic)+2+2+total)
	out = append(out, magic...)
	out = append(out, 1, 0)
	out = binary.LittleEndian.AppendUint16(out, uint16(total))
	out = append(out, dict...)
	out = append(out, strings.Repeat(" ", pad)...)
	return append(out, '\n'), nil
}
