package datasets

import (
	"math"
	"slices"
	"testing"
)

// indexed builds a dataset whose image i is filled with the value i+1 in its
// first pixel and a distinct ramp elsewhere, so any output can be traced
// back to its source sample.
func indexed(n, c, h, w int, flipOK bool) *Dataset {
	d := &Dataset{Name: "test", C: c, H: h, W: w, FlipOK: flipOK, Classes: []string{"a", "b", "c"}}
	chw := c * h * w
	d.Train = Split{X: make([]float32, n*chw), Y: make([]int, n)}
	for i := range n {
		for j := range chw {
			d.Train.X[i*chw+j] = float32(i*chw+j+1) / float32(n*chw)
		}
		d.Train.Y[i] = i % 3
	}
	return d
}

// sampleOf recovers the source index of an unaugmented, unnormalised image.
func sampleOf(x []float32, n, chw int) int {
	return int(math.Round(float64(x[0])*float64(n*chw))-1) / chw
}

func TestLoaderPermutationCoversEpoch(t *testing.T) {
	const n, chw = 23, 16
	d := indexed(n, 1, 4, 4, false)
	l := NewLoader(d, &d.Train, LoaderOptions{Batch: 5, Shuffle: true, Seed: 1})
	if l.NumBatches() != 5 {
		t.Fatalf("NumBatches %d, want 5", l.NumBatches())
	}
	if dl := NewLoader(d, &d.Train, LoaderOptions{Batch: 5, DropLast: true}); dl.NumBatches() != 4 {
		t.Fatalf("DropLast NumBatches %d, want 4", dl.NumBatches())
	}
	orders := make([][]int, 3)
	for e := range orders {
		seen := make([]bool, n)
		for b := range l.NumBatches() {
			x, y, k := l.Batch(e, b)
			if want := min(5, n-5*b); k != want || len(y) != k || len(x) != k*chw {
				t.Fatalf("epoch %d batch %d: n=%d len(x)=%d len(y)=%d, want n=%d", e, b, k, len(x), len(y), want)
			}
			for i := range k {
				s := sampleOf(x[i*chw:], n, chw)
				if seen[s] {
					t.Fatalf("epoch %d: sample %d served twice", e, s)
				}
				seen[s] = true
				if y[i] != d.Train.Y[s] {
					t.Fatalf("sample %d served with label %d, want %d", s, y[i], d.Train.Y[s])
				}
				orders[e] = append(orders[e], s)
			}
		}
		if i := slices.Index(seen, false); i >= 0 {
			t.Fatalf("epoch %d: sample %d never served", e, i)
		}
	}
	if slices.Equal(orders[0], orders[1]) || slices.Equal(orders[1], orders[2]) {
		t.Fatal("consecutive epochs have the same order")
	}
	if _, _, k := l.Batch(0, 5); k != 0 {
		t.Fatalf("batch past the end gave %d images", k)
	}
	if _, _, k := l.Batch(0, -1); k != 0 {
		t.Fatalf("negative batch gave %d images", k)
	}
}

func TestLoaderNoShuffleKeepsOrder(t *testing.T) {
	d := indexed(10, 1, 2, 2, false)
	l := NewLoader(d, &d.Train, LoaderOptions{Batch: 4})
	for b := range l.NumBatches() {
		x, _, k := l.Batch(3, b)
		for i := range k {
			if s := sampleOf(x[i*4:], 10, 4); s != 4*b+i {
				t.Fatalf("batch %d item %d is sample %d", b, i, s)
			}
		}
	}
}

// The resume guarantee: any batch can be recomputed alone, whatever was
// asked before it, by this loader or a fresh one.
func TestLoaderBatchIndependentOfCallOrder(t *testing.T) {
	d := synthetic(5, 300, 10)
	st := ComputeStats(d)
	o := LoaderOptions{Batch: 32, Shuffle: true, Augment: true, Seed: 42, Stats: st}
	ref := NewLoader(d, &d.Train, o)
	type batch struct {
		x []float32
		y []int
	}
	want := map[[2]int]batch{}
	for e := range 3 {
		for b := range ref.NumBatches() {
			x, y, _ := ref.Batch(e, b)
			want[[2]int{e, b}] = batch{slices.Clone(x), slices.Clone(y)}
		}
	}
	l := NewLoader(d, &d.Train, o)
	calls := [][2]int{{2, 9}, {0, 3}, {2, 0}, {1, 1}, {0, 3}, {0, 0}, {1, 9}, {2, 9}}
	for _, c := range calls {
		x, y, _ := l.Batch(c[0], c[1])
		w := want[c]
		if !slices.Equal(x, w.x) || !slices.Equal(y, w.y) {
			t.Fatalf("Batch(%d,%d) differs after other calls", c[0], c[1])
		}
	}
	o.Seed = 43
	other := NewLoader(d, &d.Train, o)
	if x, _, _ := other.Batch(0, 0); slices.Equal(x, want[[2]int{0, 0}].x) {
		t.Fatal("a different seed gave the same batch")
	}
}

func TestLoaderNormalisesToZeroMeanUnitStd(t *testing.T) {
	for _, d := range []*Dataset{synthetic(2, 500, 10), indexed(40, 3, 5, 6, true)} {
		l := NewLoader(d, &d.Train, LoaderOptions{Batch: 64, Shuffle: true, Stats: ComputeStats(d)})
		plane := d.H * d.W
		sum, sq := make([]float64, d.C), make([]float64, d.C)
		cnt := 0.0
		for b := range l.NumBatches() {
			x, _, n := l.Batch(0, b)
			for i := range n {
				for c := range d.C {
					for _, v := range x[(i*d.C+c)*plane : (i*d.C+c+1)*plane] {
						sum[c] += float64(v)
						sq[c] += float64(v) * float64(v)
					}
				}
			}
			cnt += float64(n * plane)
		}
		for c := range d.C {
			mean := sum[c] / cnt
			std := math.Sqrt(sq[c]/cnt - mean*mean)
			if math.Abs(mean) > 1e-4 || math.Abs(std-1) > 1e-4 {
				t.Errorf("%s channel %d: mean %.6f std %.6f after normalisation", d.Name, c, mean, std)
			}
		}
	}
}

// matchShift reports whether out is src shifted by some (dy, dx) within the
// padding (and mirrored if flip), with zeros where the shift uncovers the
// border.
func matchShift(out, src []float32, c, h, w int, flip bool) bool {
	return matchShiftBy(out, src, c, h, w, flip, max(1, h/8), max(1, w/8))
}

// matchShiftBy is matchShift for shifts of at most ph, pw pixels.
func matchShiftBy(out, src []float32, c, h, w int, flip bool, ph, pw int) bool {
	for dy := -ph; dy <= ph; dy++ {
	next:
		for dx := -pw; dx <= pw; dx++ {
			for ch := range c {
				for i := range h {
					for j := range w {
						si, sj := i+dy, j+dx
						want := float32(0)
						if si >= 0 && si < h && sj >= 0 && sj < w {
							if flip {
								sj = w - 1 - sj
							}
							want = src[(ch*h+si)*w+sj]
						}
						if out[(ch*h+i)*w+j] != want {
							continue next
						}
					}
				}
			}
			return true
		}
	}
	return false
}

func TestLoaderAugmentOnlyShiftsAndFlips(t *testing.T) {
	for _, flipOK := range []bool{false, true} {
		const n, c, h, w = 40, 2, 8, 9
		d := indexed(n, c, h, w, flipOK)
		chw := c * h * w
		plain := NewLoader(d, &d.Train, LoaderOptions{Batch: 8, Shuffle: true, Seed: 3})
		aug := NewLoader(d, &d.Train, LoaderOptions{Batch: 8, Shuffle: true, Seed: 3, Augment: true})
		flips, moved := 0, 0
		for e := range 4 {
			for b := range aug.NumBatches() {
				px, _, _ := plain.Batch(e, b)
				px = slices.Clone(px)
				ax, ay, k := aug.Batch(e, b)
				if len(ax) != len(px) || k*chw != len(ax) || len(ay) != k {
					t.Fatalf("augmented batch has %d values for %d images", len(ax), k)
				}
				for i := range k {
					src, out := px[i*chw:(i+1)*chw], ax[i*chw:(i+1)*chw]
					switch {
					case matchShift(out, src, c, h, w, false):
					case matchShift(out, src, c, h, w, true):
						if !flipOK {
							t.Fatal("image flipped although FlipOK is false")
						}
						flips++
					default:
						t.Fatalf("flipOK=%v: augmented image is not a padded shift of its source", flipOK)
					}
					if !slices.Equal(out, src) {
						moved++
					}
				}
			}
		}
		total := 4 * n
		if moved < total/2 {
			t.Errorf("only %d of %d images changed by augmentation", moved, total)
		}
		if flipOK && (flips < total/4 || flips > 3*total/4) {
			t.Errorf("%d of %d images flipped, want about half", flips, total)
		}
	}
}

func TestLoaderSteadyStateDoesNotAllocate(t *testing.T) {
	d := synthetic(1, 200, 10)
	l := NewLoader(d, &d.Train, LoaderOptions{Batch: 16, Shuffle: true, Augment: true, Seed: 1, Stats: ComputeStats(d)})
	e := 0
	allocs := testing.AllocsPerRun(50, func() {
		for b := range l.NumBatches() {
			l.Batch(e, b)
		}
		e++
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per epoch", allocs)
	}
}

func TestLoaderBatchLargerThanSplit(t *testing.T) {
	d := indexed(3, 1, 2, 2, false)
	l := NewLoader(d, &d.Train, LoaderOptions{Batch: 10})
	if _, _, n := l.Batch(0, 0); n != 3 || l.NumBatches() != 1 {
		t.Fatalf("got %d images in %d batches", n, l.NumBatches())
	}
	l = NewLoader(d, &d.Train, LoaderOptions{Batch: 10, DropLast: true})
	if l.NumBatches() != 0 {
		t.Fatalf("DropLast with a short split gave %d batches", l.NumBatches())
	}
}

// On 8-pixel images the automatic policy shifts nothing (a one-pixel shift
// already crops an eighth of the image): augmented images are their source
// or, where labels survive it, its mirror. On 28-pixel images it shifts by at
// most 2 pixels, and does shift.
func TestAutoShiftScalesWithImageSize(t *testing.T) {
	for _, tc := range []struct {
		h, shift int
	}{{8, 0}, {16, 0}, {28, 2}, {32, 2}} {
		if got := AutoShift(tc.h); max(got, 0) != tc.shift {
			t.Errorf("AutoShift(%d) = %d, want a shift of %d", tc.h, got, tc.shift)
		}
	}
	for _, h := range []int{8, 28} {
		for _, flipOK := range []bool{false, true} {
			const n, c = 24, 1
			d := indexed(n, c, h, h, flipOK)
			chw := c * h * h
			shift := max(AutoShift(h), 0)
			plain := NewLoader(d, &d.Train, LoaderOptions{Batch: 8, Shuffle: true, Seed: 3})
			aug := NewLoader(d, &d.Train, LoaderOptions{Batch: 8, Shuffle: true, Seed: 3, Augment: true, Shift: AutoShift(h)})
			moved := 0
			for e := range 3 {
				for b := range aug.NumBatches() {
					px, _, _ := plain.Batch(e, b)
					px = slices.Clone(px)
					ax, _, k := aug.Batch(e, b)
					for i := range k {
						src, out := px[i*chw:(i+1)*chw], ax[i*chw:(i+1)*chw]
						mirrored := !matchShiftBy(out, src, c, h, h, false, shift, shift)
						if mirrored && (!flipOK || !matchShiftBy(out, src, c, h, h, true, shift, shift)) {
							t.Fatalf("%d px, flipOK=%v: augmented image is not a shift by at most %d (or its mirror)", h, flipOK, shift)
						}
						if !mirrored && !slices.Equal(out, src) {
							moved++
						}
					}
				}
			}
			if shift == 0 && moved > 0 {
				t.Errorf("%d px: %d images shifted, want none", h, moved)
			}
			if shift > 0 && moved < n {
				t.Errorf("%d px: only %d of %d images shifted", h, moved, 3*n)
			}
		}
	}
}
