package datasets

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func cifarBatch(n, first int) []byte {
	b := make([]byte, 0, n*cifarRecord)
	for i := range n {
		b = append(b, byte((first+i)%10))
		for j := range cifarPixels {
			b = append(b, byte(i+j))
		}
	}
	return b
}

func writeCIFAR(t *testing.T, dir string, override map[string][]byte) {
	files := map[string][]byte{"test_batch.bin": cifarBatch(2, 7)}
	for i := 1; i <= 5; i++ {
		files[fmt.Sprintf("data_batch_%d.bin", i)] = cifarBatch(3, i)
	}
	for k, v := range override {
		files[k] = v
	}
	for name, b := range files {
		if b == nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadCIFAR10(t *testing.T) {
	dir := t.TempDir()
	writeCIFAR(t, dir, nil)
	d, err := Load("cifar10:"+dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d.C != 3 || d.H != 32 || d.W != 32 || !d.FlipOK || !slices.Equal(d.Classes, cifarDefaultClasses) {
		t.Fatalf("got %dx%dx%d FlipOK %v classes %v", d.C, d.H, d.W, d.FlipOK, d.Classes)
	}
	if d.Train.Len() != 15 || d.Test.Len() != 2 || len(pixels(d, &d.Train)) != 15*3072 {
		t.Fatalf("got %d/%d images", d.Train.Len(), d.Test.Len())
	}
	// Batch 2's first record: label 2, pixel j = j.
	if d.Train.Y[3] != 2 || pixels(d, &d.Train)[3*3072+5] != 5.0/255 || d.Test.Y[1] != 8 {
		t.Fatalf("labels %v / %v", d.Train.Y, d.Test.Y)
	}

	// The unpacked archive's subdirectory and its class-name file.
	sub := filepath.Join(t.TempDir(), "cifar-10-batches-bin")
	os.Mkdir(sub, 0o755)
	names := "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n"
	writeCIFAR(t, sub, map[string][]byte{"batches.meta.txt": []byte(names)})
	d, err = LoadCIFAR10(filepath.Dir(sub))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(d.Classes, "") != "abcdefghij" {
		t.Fatalf("classes %v", d.Classes)
	}
}

func TestLoadCIFAR10Errors(t *testing.T) {
	bad := cifarBatch(3, 0)
	bad[cifarRecord] = 10
	cases := []struct {
		name string
		over map[string][]byte
		want string
	}{
		{"size", map[string][]byte{"data_batch_3.bin": cifarBatch(2, 0)[:5000]}, "data_batch_3.bin: size 5000 is not a positive multiple of the 3073-byte record"},
		{"empty", map[string][]byte{"test_batch.bin": {}}, "test_batch.bin: size 0"},
		{"label", map[string][]byte{"data_batch_1.bin": bad}, "data_batch_1.bin: record 1: label 10 out of range"},
		{"missing", map[string][]byte{"data_batch_5.bin": nil}, "data_batch_5.bin"},
		{"meta", map[string][]byte{"batches.meta.txt": []byte("a\nb\n")}, "batches.meta.txt: 2 class names (want 10)"},
	}
	for _, c := range cases {
		dir := t.TempDir()
		writeCIFAR(t, dir, c.over)
		_, err := LoadCIFAR10(dir)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "cifar10: ") {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
}

func FuzzCIFARBatch(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		pix, y, err := ParseCIFARBatch(data)
		if err != nil {
			return
		}
		if len(y) == 0 || len(pix) != len(y)*cifarPixels || len(data) != len(y)*cifarRecord {
			t.Fatalf("%d pixels, %d labels from %d bytes", len(pix), len(y), len(data))
		}
		for i, c := range y {
			if c < 0 || c > 9 || int(data[i*cifarRecord]) != c {
				t.Fatalf("record %d: label %d", i, c)
			}
		}
	})
}
