package datasets

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// eager converts every image of a folder the way the readers did before
// images were kept compact: decode, timm's eval resize, channels, all at
// load. Image must give exactly these values.
func eagerFolder(t *testing.T, dir string, size, c int) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{}
	err := filepath.WalkDir(dir, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		im, err := LoadImage(path)
		if err != nil {
			return err
		}
		if size > 0 {
			im = im.EvalResize(size, DefaultCropPct)
		}
		out[filepath.Base(path)] = im.Channels(c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A folder's images are kept as decoded, at their own size, in 8 or 16
// bits, and made on demand: every image equals, bit for bit, the eager
// conversion (every decoder mode, resized or not), and what the split
// stores does not depend on the size the model takes.
func TestFolderImagesMadeOnDemandAreTheEagerOnes(t *testing.T) {
	dir := t.TempDir()
	var names []string
	for name, b := range photoModes(t) {
		writeFile(t, filepath.Join(dir, "train", "a", name), b)
		writeFile(t, filepath.Join(dir, "test", "a", name), b)
		names = append(names, name)
	}
	slices.Sort(names)
	var stored []int
	for _, size := range []int{16, 224} {
		d, err := LoadFolderWith(dir, Options{ImageSize: size})
		if err != nil {
			t.Fatal(err)
		}
		want := eagerFolder(t, filepath.Join(dir, "train"), size, d.C)
		for i, name := range names { // read in sorted file order
			got := d.Image(&d.Train, i, nil)
			if !slices.EqualFunc(got, want[name], func(a, b float32) bool { return math.Float32bits(a) == math.Float32bits(b) }) {
				t.Errorf("size %d, %s: the image made on demand differs from the eager conversion", size, name)
			}
		}
		stored = append(stored, d.Train.StoredBytes())
	}
	if stored[0] != stored[1] {
		t.Errorf("the split stores %d bytes for 16 px and %d for 224 px", stored[0], stored[1])
	}
	// 8-bit sources in one byte per value; 16-bit ones, and those decoded
	// at 16 bits (JPEG's YCbCr, alpha premultiplied), in two.
	d, _ := LoadFolderWith(dir, Options{ImageSize: 16})
	for i, name := range names {
		st := d.Train.images[i]
		want8 := strings.HasPrefix(name, "grey.") || strings.HasPrefix(name, "pal.")
		if (st.u8 != nil) != want8 || st.f32 != nil {
			t.Errorf("%s kept as %d 8-bit, %d 16-bit, %d float values", name, len(st.u8), len(st.u16), len(st.f32))
		}
	}
}

// Floats that 8 and 16 bits do not hold exactly stay floats.
func TestCompactKeepsOtherValuesExactly(t *testing.T) {
	im := Image{C: 1, H: 1, W: 3, Pix: []float32{0, 0.5, 1.0 / 3}}
	st := compact(im)
	got := make([]float32, 3)
	st.floats(got)
	if st.f32 == nil || !slices.Equal(got, im.Pix) {
		t.Errorf("kept %v as %d/%d/%d values", got, len(st.u8), len(st.u16), len(st.f32))
	}
}

// A fixed-size set keeps its bytes; ResizeTo and channel conversion apply
// when an image is made, exactly as the eager conversion of the floats did.
func TestFixedSetResizedOnDemand(t *testing.T) {
	dir := t.TempDir()
	writeCIFAR(t, dir, nil)
	d, err := LoadWith("cifar10:"+dir, 0, Options{ImageSize: 40, Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	if d.C != 1 || d.H != 40 || d.Train.StoredBytes() != 15*3*32*32 {
		t.Fatalf("%dx%dx%d, %d bytes stored", d.C, d.H, d.W, d.Train.StoredBytes())
	}
	raw, _ := LoadCIFAR10(dir)
	for i := range d.Train.Len() {
		src := raw.Image(&raw.Train, i, nil)
		want := Image{C: 3, H: 40, W: 40, Pix: Resize(src, 3, 32, 32, 40, 40)}.Channels(1)
		if got := d.Image(&d.Train, i, nil); !slices.Equal(got, want) {
			t.Fatalf("image %d differs from the eager conversion", i)
		}
	}
}

// ComputeStats over images made on demand equals the one pass over the
// eagerly converted floats, bit for bit.
func TestComputeStatsOnDemandMatchesEager(t *testing.T) {
	dir := t.TempDir()
	for name, b := range photoModes(t) {
		for _, cls := range []string{"a", "b"} {
			writeFile(t, filepath.Join(dir, "train", cls, name), b)
			writeFile(t, filepath.Join(dir, "test", cls, name), b)
		}
	}
	d, err := LoadFolderWith(dir, Options{ImageSize: 24})
	if err != nil {
		t.Fatal(err)
	}
	eager := &Dataset{C: d.C, H: d.H, W: d.W, Train: Split{X: pixels(d, &d.Train), Y: d.Train.Y}}
	got, want := ComputeStats(d), ComputeStats(eager)
	if !slices.Equal(got.Mean, want.Mean) || !slices.Equal(got.Std, want.Std) {
		t.Errorf("stats %v/%v, eager %v/%v", got.Mean, got.Std, want.Mean, want.Std)
	}
}

// Prefetching makes the same batches as making each on request, whatever
// order they are asked for in, with augmentation of both kinds.
func TestPrefetchGivesTheSameBatches(t *testing.T) {
	d := indexed(37, 3, 20, 20, true)
	for _, crop := range []float64{0, 0.3} {
		o := LoaderOptions{Batch: 8, Shuffle: true, Augment: true, Seed: 5, CropScale: crop, Stats: ComputeStats(d)}
		serial := NewLoader(d, &d.Train, o)
		o.Prefetch = true
		pre := NewLoader(d, &d.Train, o)
		order := [][2]int{{0, 0}, {0, 1}, {0, 2}, {0, 3}, {0, 4}, {1, 0}, {1, 1}, {0, 3}, {1, 4}, {1, 2}, {1, 3}, {2, 0}}
		for _, eb := range order {
			want, wy, wn := serial.Batch(eb[0], eb[1])
			want, wy = slices.Clone(want), slices.Clone(wy)
			got, gy, gn := pre.Batch(eb[0], eb[1])
			if gn != wn || !slices.Equal(got, want) || !slices.Equal(gy, wy) {
				t.Fatalf("crop %g, epoch %d batch %d: the prefetching loader's batch differs", crop, eb[0], eb[1])
			}
		}
	}
}

// A batch made from a split whose images need resizing is made on several
// goroutines; the result is the single goroutine's.
func TestParallelBatchEqualsSerial(t *testing.T) {
	d := indexed(9, 3, 32, 32, true)
	d.ResizeTo(96) // 9·3·96·96 values: above the parallel grain
	o := LoaderOptions{Batch: 9, Augment: true, Seed: 2}
	par, _, _ := NewLoader(d, &d.Train, o).Batch(0, 0)
	var serial []float32
	l := NewLoader(d, &d.Train, o)
	for k := range 9 {
		x := make([]float32, l.chw)
		l.augment(x, d.Image(&d.Train, k, nil), 0, k)
		serial = append(serial, x...)
	}
	if !slices.Equal(par, serial) {
		t.Error("the parallel batch differs from the serial one")
	}
}

// BenchmarkBatch224 makes batches of 64 CIFAR-sized photos (16-bit
// storage) at 224 px, timm's eval resize and normalisation, as a 224-px
// training run does (docs/memory.md: a batch takes a small fraction of a
// DeiT training step).
func BenchmarkBatch224(b *testing.B) {
	n := 256
	d := &Dataset{C: 3, H: 224, W: 224, Classes: []string{"a"}}
	for _, s := range []*Split{&d.Train} {
		s.images = make([]stored, n)
		s.Y = make([]int, n)
		for i := range s.images {
			px := make([]uint16, 3*32*32)
			for j := range px {
				px[j] = uint16((i*131 + j*7919) % 65536)
			}
			s.images[i] = stored{c: 3, h: 32, w: 32, u16: px}
		}
		s.view = view{evalSize: 224, packC: 3}
	}
	l := NewLoader(d, &d.Train, LoaderOptions{Batch: 64, Shuffle: true, Seed: 1,
		Stats: Stats{Mean: []float32{0.5, 0.5, 0.5}, Std: []float32{0.25, 0.25, 0.25}}})
	b.ResetTimer()
	for i := range b.N {
		l.Batch(i/4, i%4)
	}
}
