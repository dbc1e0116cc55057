package datasets

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
)

const (
	idxImagesMagic = 0x00000803 // unsigned bytes, 3 dimensions
	idxLabelsMagic = 0x00000801 // unsigned bytes, 1 dimension
	// idxMaxSide keeps rows*cols far from overflow; MNIST-like sets are 28.
	idxMaxSide = 1 << 15
)

// ReadIDXImages reads an IDX3 unsigned-byte image file. size is the stream's
// length in bytes, or -1 if unknown (a gzipped file). The header is checked
// against size before anything is allocated, and the body is read through a
// limit, so a header claiming enormous dimensions costs no more memory than
// the bytes actually present.
func ReadIDXImages(r io.Reader, size int64) (pix []byte, n, rows, cols int, err error) {
	var hdr [16]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, 0, 0, 0, fmt.Errorf("truncated header: %w", err)
	}
	if m := binary.BigEndian.Uint32(hdr[0:]); m != idxImagesMagic {
		return nil, 0, 0, 0, fmt.Errorf("bad magic number 0x%08x (want 0x%08x)", m, idxImagesMagic)
	}
	un := binary.BigEndian.Uint32(hdr[4:])
	ur := binary.BigEndian.Uint32(hdr[8:])
	uc := binary.BigEndian.Uint32(hdr[12:])
	if ur == 0 || uc == 0 || ur > idxMaxSide || uc > idxMaxSide {
		return nil, 0, 0, 0, fmt.Errorf("implausible image size %dx%d", ur, uc)
	}
	hi, body := bits.Mul64(uint64(un), uint64(ur)*uint64(uc))
	if hi != 0 || body > 1<<62 {
		return nil, 0, 0, 0, fmt.Errorf("header claims %d images of %dx%d, too large", un, ur, uc)
	}
	data, err := readBody(r, size, int64(len(hdr)), int64(body))
	if err != nil {
		return nil, 0, 0, 0, fmt.Errorf("header claims %d images of %dx%d: %w", un, ur, uc, err)
	}
	return data, int(un), int(ur), int(uc), nil
}

// ReadIDXLabels reads an IDX1 unsigned-byte label file (size as for
// ReadIDXImages) and checks every label is a digit.
func ReadIDXLabels(r io.Reader, size int64) ([]int, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("truncated header: %w", err)
	}
	if m := binary.BigEndian.Uint32(hdr[0:]); m != idxLabelsMagic {
		return nil, fmt.Errorf("bad magic number 0x%08x (want 0x%08x)", m, idxLabelsMagic)
	}
	n := binary.BigEndian.Uint32(hdr[4:])
	data, err := readBody(r, size, int64(len(hdr)), int64(n))
	if err != nil {
		return nil, fmt.Errorf("header claims %d labels: %w", n, err)
	}
	y := make([]int, len(data))
	for i, v := range data {
		if v >= 10 {
			return nil, fmt.Errorf("label %d of item %d out of range [0,9]", v, i)
		}
		y[i] = int(v)
	}
	return y, nil
}

// readBody reads exactly want bytes that follow a header of hdrLen bytes
// and insists the stream ends there, so a file with trailing junk (often a
// sign of the wrong file) is rejected as surely as a truncated one.
func readBody(r io.Reader, size, hdrLen, want int64) ([]byte, error) {
	if size >= 0 && size-hdrLen != want {
		return nil, fmt.Errorf("file has %d data bytes, want %d", size-hdrLen, want)
	}
	// ReadAll grows its buffer with the data that really arrives, unlike
	// make([]byte, want), which would trust the header.
	data, err := io.ReadAll(io.LimitReader(r, want+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != want {
		if int64(len(data)) > want {
			return nil, fmt.Errorf("data continues past the %d bytes the header declares", want)
		}
		return nil, fmt.Errorf("truncated: %d data bytes, want %d", len(data), want)
	}
	return data, nil
}

// LoadMNIST reads the four MNIST IDX files from dir, each plain or gzipped.
func LoadMNIST(dir string) (*Dataset, error) {
	d := &Dataset{Name: "mnist", C: 1, Classes: digitClasses()}
	var err error
	var h, w int
	if d.Train, h, w, err = loadIDXPair(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte"); err != nil {
		return nil, err
	}
	var th, tw int
	if d.Test, th, tw, err = loadIDXPair(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"); err != nil {
		return nil, err
	}
	if th != h || tw != w {
		return nil, fmt.Errorf("mnist: %s: test images are %dx%d but training images are %dx%d", dir, th, tw, h, w)
	}
	d.H, d.W = h, w
	return d, nil
}

func loadIDXPair(dir, imagesName, labelsName string) (s Split, h, w int, err error) {
	var pix []byte
	var n int
	ipath, err := withIDXFile(dir, imagesName, func(in *input) error {
		var err error
		pix, n, h, w, err = ReadIDXImages(in, in.size)
		return err
	})
	if err != nil {
		return Split{}, 0, 0, err
	}
	lpath, err := withIDXFile(dir, labelsName, func(in *input) error {
		var err error
		s.Y, err = ReadIDXLabels(in, in.size)
		return err
	})
	if err != nil {
		return Split{}, 0, 0, err
	}
	if len(s.Y) != n {
		return Split{}, 0, 0, fmt.Errorf("mnist: %s has %d labels but %s has %d images", lpath, len(s.Y), ipath, n)
	}
	if n == 0 {
		return Split{}, 0, 0, fmt.Errorf("mnist: %s: no images", ipath)
	}
	return bytesSplit(pix, s.Y, 1, h, w), h, w, nil
}

// withIDXFile opens dir/name, or dir/name.gz when the plain file is absent,
// runs read on it and prefixes any error with the file's path.
func withIDXFile(dir, name string, read func(*input) error) (string, error) {
	path := filepath.Join(dir, name)
	in, err := openInput(path)
	if errors.Is(err, os.ErrNotExist) {
		path += ".gz"
		in, err = openInput(path)
		if errors.Is(err, os.ErrNotExist) {
			return path, fmt.Errorf("mnist: %s: missing %s (or %s.gz)", dir, name, name)
		}
	}
	if err != nil {
		return path, fmt.Errorf("mnist: %w", err)
	}
	defer in.Close()
	if err := read(in); err != nil {
		return path, fmt.Errorf("mnist: %s: %w", path, err)
	}
	return path, nil
}
