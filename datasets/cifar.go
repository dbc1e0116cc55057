package datasets

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const (
	cifarSide   = 32
	cifarPixels = 3 * cifarSide * cifarSide
	cifarRecord = 1 + cifarPixels
	// cifarMaxFile is ten times a real batch (30 MB); anything larger is not
	// a CIFAR-10 batch and is refused before it is read into memory.
	cifarMaxFile = 10 * 10000 * cifarRecord
	cifarMaxMeta = 64 << 10
)

var cifarDefaultClasses = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// ParseCIFARBatch parses a CIFAR-10 binary batch: records of one label
// byte followed by a 3x32x32 image in CHW order. It returns the images
// concatenated (N*3072 bytes) and the labels.
func ParseCIFARBatch(b []byte) (pix []byte, labels []int, err error) {
	if len(b) == 0 || len(b)%cifarRecord != 0 {
		return nil, nil, fmt.Errorf("size %d is not a positive multiple of the %d-byte record", len(b), cifarRecord)
	}
	n := len(b) / cifarRecord
	pix = make([]byte, 0, n*cifarPixels)
	labels = make([]int, n)
	for i := range n {
		rec := b[i*cifarRecord : (i+1)*cifarRecord]
		if rec[0] >= 10 {
			return nil, nil, fmt.Errorf("record %d: label %d out of range [0,9]", i, rec[0])
		}
		labels[i] = int(rec[0])
		pix = append(pix, rec[1:]...)
	}
	return pix, labels, nil
}

// LoadCIFAR10 reads data_batch_1..5.bin and test_batch.bin from dir (or from
// dir/cifar-10-batches-bin, the directory the official archive unpacks to).
func LoadCIFAR10(dir string) (*Dataset, error) {
	if _, err := os.Stat(filepath.Join(dir, "data_batch_1.bin")); errors.Is(err, os.ErrNotExist) {
		sub := filepath.Join(dir, "cifar-10-batches-bin")
		if _, err := os.Stat(filepath.Join(sub, "data_batch_1.bin")); err == nil {
			dir = sub
		}
	}
	d := &Dataset{Name: "cifar10", C: 3, H: cifarSide, W: cifarSide, FlipOK: true, Named: true}
	var err error
	if d.Classes, err = readCIFARMeta(dir); err != nil {
		return nil, err
	}
	var pix []byte
	for i := 1; i <= 5; i++ {
		p, y, err := readCIFARFile(filepath.Join(dir, fmt.Sprintf("data_batch_%d.bin", i)))
		if err != nil {
			return nil, err
		}
		pix = append(pix, p...)
		d.Train.Y = append(d.Train.Y, y...)
	}
	d.Train = bytesSplit(pix, d.Train.Y, 3, cifarSide, cifarSide)
	p, y, err := readCIFARFile(filepath.Join(dir, "test_batch.bin"))
	if err != nil {
		return nil, err
	}
	d.Test = bytesSplit(p, y, 3, cifarSide, cifarSide)
	return d, nil
}

func readCIFARFile(path string) ([]byte, []int, error) {
	b, err := readFileLimited(path, cifarMaxFile)
	if err != nil {
		return nil, nil, fmt.Errorf("cifar10: %w", err)
	}
	pix, y, err := ParseCIFARBatch(b)
	if err != nil {
		return nil, nil, fmt.Errorf("cifar10: %s: %w", path, err)
	}
	return pix, y, nil
}

// readCIFARMeta reads the class names from batches.meta.txt (one per line)
// and falls back to the standard names when the file is absent.
func readCIFARMeta(dir string) ([]string, error) {
	path := filepath.Join(dir, "batches.meta.txt")
	b, err := readFileLimited(path, cifarMaxMeta)
	if errors.Is(err, os.ErrNotExist) {
		return append([]string(nil), cifarDefaultClasses...), nil
	}
	if err != nil {
		return nil, fmt.Errorf("cifar10: %w", err)
	}
	var names []string
	for line := range strings.Lines(string(b)) {
		if name := strings.TrimSpace(line); name != "" {
			names = append(names, name)
		}
	}
	if len(names) != 10 {
		return nil, fmt.Errorf("cifar10: %s: %d class names (want 10)", path, len(names))
	}
	return names, nil
}
