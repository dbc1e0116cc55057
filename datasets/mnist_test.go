package datasets

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func idxImages(n, rows, cols int) []byte {
	b := binary.BigEndian.AppendUint32(nil, idxImagesMagic)
	for _, v := range []int{n, rows, cols} {
		b = binary.BigEndian.AppendUint32(b, uint32(v))
	}
	for i := range n * rows * cols {
		b = append(b, byte(i*7))
	}
	return b
}

func idxLabels(n int) []byte {
	b := binary.BigEndian.AppendUint32(nil, idxLabelsMagic)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	for i := range n {
		b = append(b, byte(i%10))
	}
	return b
}

// writeMNIST writes a small MNIST directory; the test files are gzipped to
// cover both forms in one load.
func writeMNIST(t *testing.T, files map[string][]byte) string {
	dir := t.TempDir()
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mnistFiles(t *testing.T) map[string][]byte {
	return map[string][]byte{
		"train-images-idx3-ubyte":   idxImages(12, 5, 4),
		"train-labels-idx1-ubyte":   idxLabels(12),
		"t10k-images-idx3-ubyte.gz": gzipBytes(t, idxImages(3, 5, 4)),
		"t10k-labels-idx1-ubyte.gz": gzipBytes(t, idxLabels(3)),
	}
}

func TestLoadMNIST(t *testing.T) {
	dir := writeMNIST(t, mnistFiles(t))
	d, err := Load("mnist:"+dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d.C != 1 || d.H != 5 || d.W != 4 || d.FlipOK || len(d.Classes) != 10 {
		t.Fatalf("got %dx%dx%d FlipOK %v", d.C, d.H, d.W, d.FlipOK)
	}
	if d.Train.Len() != 12 || d.Test.Len() != 3 || len(pixels(d, &d.Train)) != 12*20 {
		t.Fatalf("got %d/%d images", d.Train.Len(), d.Test.Len())
	}
	if pixels(d, &d.Train)[1] != 7.0/255 || d.Train.Y[11] != 1 {
		t.Fatalf("pixel %v label %d", pixels(d, &d.Train)[1], d.Train.Y[11])
	}
}

func TestLoadMNISTErrors(t *testing.T) {
	huge := binary.BigEndian.AppendUint32(nil, idxImagesMagic)
	huge = binary.BigEndian.AppendUint32(huge, 1<<31)
	huge = binary.BigEndian.AppendUint32(huge, 28)
	huge = binary.BigEndian.AppendUint32(huge, 28)
	huge = append(huge, make([]byte, 100)...)
	badLabel := idxLabels(12)
	badLabel[8+5] = 10
	cases := []struct {
		name, file string
		data       []byte
		want       string
	}{
		{"labels as images", "train-images-idx3-ubyte", idxLabels(12), "train-images-idx3-ubyte: bad magic number 0x00000801 (want 0x00000803)"},
		{"truncated images", "train-images-idx3-ubyte", idxImages(12, 5, 4)[:100], "want 240"},
		{"truncated header", "train-labels-idx1-ubyte", idxLabels(12)[:6], "truncated header"},
		{"trailing data", "train-labels-idx1-ubyte", append(idxLabels(12), 0), "want 12"},
		{"label out of range", "train-labels-idx1-ubyte", badLabel, "label 10 of item 5 out of range"},
		{"count mismatch", "train-labels-idx1-ubyte", idxLabels(11), "has 11 labels but"},
		{"huge header", "train-images-idx3-ubyte", huge, "header claims 2147483648 images"},
		{"huge header gzipped", "train-images-idx3-ubyte.gz", gzipBytes(t, huge), "truncated"},
		{"test size differs", "t10k-images-idx3-ubyte.gz", gzipBytes(t, idxImages(3, 4, 5)), "test images are 4x5"},
		{"zero images", "train-images-idx3-ubyte", idxImages(0, 5, 4), "no images"},
		{"zero rows", "train-images-idx3-ubyte", idxImages(0, 0, 4), "implausible image size 0x4"},
		{"corrupt gzip", "t10k-labels-idx1-ubyte.gz", gzipBytes(t, idxLabels(3))[:20], "t10k-labels-idx1-ubyte.gz"},
	}
	for _, c := range cases {
		files := mnistFiles(t)
		if strings.HasSuffix(c.file, ".gz") {
			delete(files, strings.TrimSuffix(c.file, ".gz"))
		} else {
			delete(files, c.file+".gz")
		}
		files[c.file] = c.data
		if c.name == "zero images" {
			files["train-labels-idx1-ubyte"] = idxLabels(0)
		}
		dir := writeMNIST(t, files)
		_, err := LoadMNIST(dir)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, c.want) || !strings.HasPrefix(msg, "mnist: ") || strings.Contains(msg, "\n") {
			t.Errorf("%s: error %q, want one line containing %q", c.name, msg, c.want)
		}
	}
	dir := writeMNIST(t, map[string][]byte{"train-images-idx3-ubyte": idxImages(1, 1, 1)})
	if _, err := LoadMNIST(dir); err == nil || !strings.Contains(err.Error(), "missing train-labels-idx1-ubyte") {
		t.Errorf("missing labels: %v", err)
	}
}

// A header that claims 2^31 28x28 images in front of a short gzip stream
// must cost memory in proportion to the stream, not the claim.
func TestReadIDXImagesHugeHeaderDoesNotAllocate(t *testing.T) {
	hdr := binary.BigEndian.AppendUint32(nil, idxImagesMagic)
	for _, v := range []uint32{1 << 31, 1 << 15, 1 << 15} {
		hdr = binary.BigEndian.AppendUint32(hdr, v)
	}
	body := append(hdr, make([]byte, 1000)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, size := range []int64{int64(len(body)), -1} {
		if _, _, _, _, err := ReadIDXImages(bytes.NewReader(body), size); err == nil {
			t.Fatal("accepted a truncated file")
		}
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("allocated %d bytes for a %d-byte input", grew, len(body))
	}
}

// fuzzIDX checks the two ways of calling a reader (size known, size
// unknown) agree, which is what makes the size pre-check safe to trust.
func FuzzIDXImages(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		p1, n1, r1, c1, err1 := ReadIDXImages(bytes.NewReader(data), int64(len(data)))
		p2, n2, r2, c2, err2 := ReadIDXImages(bytes.NewReader(data), -1)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("known size: %v; unknown size: %v", err1, err2)
		}
		if err1 != nil {
			return
		}
		if n1 != n2 || r1 != r2 || c1 != c2 || !bytes.Equal(p1, p2) {
			t.Fatal("known and unknown size disagree")
		}
		if len(p1) != n1*r1*c1 || len(data) != 16+len(p1) {
			t.Fatalf("%d pixels for %d images of %dx%d in %d bytes", len(p1), n1, r1, c1, len(data))
		}
	})
}

func FuzzIDXLabels(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		y1, err1 := ReadIDXLabels(bytes.NewReader(data), int64(len(data)))
		y2, err2 := ReadIDXLabels(bytes.NewReader(data), -1)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("known size: %v; unknown size: %v", err1, err2)
		}
		if err1 != nil {
			return
		}
		if len(y1) != len(y2) || len(data) != 8+len(y1) {
			t.Fatalf("%d and %d labels from %d bytes", len(y1), len(y2), len(data))
		}
		for i, y := range y1 {
			if y < 0 || y > 9 || y != y2[i] {
				t.Fatalf("label %d", y)
			}
		}
	})
}
