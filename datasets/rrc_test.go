package datasets

import (
	"math"
	"slices"
	"testing"
)

// Every box fits the image, and unless it is the fallback its area is
// within [scale, 1] of the image's and its aspect within [3/4, 4/3] (up to
// rounding to whole pixels).
func TestRRCBox(t *testing.T) {
	for _, size := range [][2]int{{8, 8}, {32, 32}, {28, 40}} {
		h, w := size[0], size[1]
		r := newRNG(1, uint64(h), uint64(w))
		for range 2000 {
			top, left, ch, cw := rrcBox(&r, h, w, 0.25)
			if top < 0 || left < 0 || ch < 1 || cw < 1 || top+ch > h || left+cw > w {
				t.Fatalf("%dx%d: box (%d,%d) %dx%d outside the image", h, w, top, left, ch, cw)
			}
			frac := float64(ch*cw) / float64(h*w)
			// Rounding each side to whole pixels moves the area by up to
			// about one row and one column.
			slack := float64(ch+cw+1) / float64(h*w)
			if frac < 0.25-slack || frac > 1+slack {
				t.Fatalf("%dx%d: area fraction %.3f outside [0.25, 1]", h, w, frac)
			}
		}
	}
}

func TestResizeCropIdentityAndFlip(t *testing.T) {
	const h, w = 4, 5
	src := make([]float32, h*w)
	for i := range src {
		src[i] = float32(i)
	}
	dst := make([]float32, h*w)
	resizeCrop(dst, src, h, w, 0, 0, h, w, false, 0, 1)
	if !slices.Equal(dst, src) {
		t.Errorf("whole-image box: %v, want the image %v", dst, src)
	}
	resizeCrop(dst, src, h, w, 0, 0, h, w, true, 1, 0.5)
	for i := range h {
		for j := range w {
			if want := (src[i*w+w-1-j] - 1) * 0.5; dst[i*w+j] != want {
				t.Fatalf("mirrored, normalised (%d,%d) = %v, want %v", i, j, dst[i*w+j], want)
			}
		}
	}
	// A 2×2 box upscaled to 4×5 keeps the range of its pixels.
	resizeCrop(dst, src, h, w, 1, 1, 2, 2, false, 0, 1)
	lo, hi := slices.Min(dst), slices.Max(dst)
	if lo < src[1*w+1] || hi > src[2*w+2] || math.IsNaN(float64(lo)) {
		t.Errorf("upscaled box spans [%v, %v], want within [%v, %v]", lo, hi, src[w+1], src[2*w+2])
	}
}

// With CropScale the loader crops and resizes: deterministic in (seed,
// epoch, image), different across epochs, and the normalised value of a
// constant image stays constant.
func TestLoaderRandomResizedCrop(t *testing.T) {
	d := &Dataset{Name: "unit", C: 2, H: 16, W: 16, Classes: []string{"a"}, FlipOK: true}
	n := 4
	d.Train.X = make([]float32, n*2*16*16)
	for i := range d.Train.X {
		d.Train.X[i] = float32(i%97) / 97
	}
	d.Train.Y = make([]int, n)
	opts := LoaderOptions{Batch: n, Augment: true, CropScale: 0.3, Seed: 5}
	a, _, _ := NewLoader(d, &d.Train, opts).Batch(0, 0)
	a = slices.Clone(a)
	b, _, _ := NewLoader(d, &d.Train, opts).Batch(0, 0)
	if !slices.Equal(a, b) {
		t.Error("the same seed and epoch gave other crops")
	}
	c, _, _ := NewLoader(d, &d.Train, opts).Batch(1, 0)
	if slices.Equal(a, c) {
		t.Error("two epochs gave the same crops")
	}
	for i := range d.Train.X {
		d.Train.X[i] = 0.5
	}
	x, _, _ := NewLoader(d, &d.Train, opts).Batch(0, 0)
	for i, v := range x {
		if math.Abs(float64(v-0.5)) > 1e-6 {
			t.Fatalf("constant image: value %d is %v after the crop", i, v)
		}
	}
}
