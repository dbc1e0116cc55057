package datasets

import (
	"fmt"
	"math"
)

// How a split keeps its images. A split holds each image as it was read,
// at its stored size: raw float32 for the small built-in sets (X), 8-bit
// pixels for the fixed-size binary formats (CIFAR-10, MNIST), and 8- or
// 16-bit pixels per image for a folder, whichever holds the decoded values
// exactly. The conversions the data options ask for (timm's eval resize of
// each photo, grey replicated to RGB, the whole set resampled to the
// model's size, channels converted) are recorded, not applied: Image runs
// them on one image at a time, when a batch needs it. Memory then grows
// with the stored pixels (5,000 CIFAR photos: 15-30 MB) and not with the
// model's input size (the same photos as float32 at 224 px: 3 GB).

// stored is one image kept compactly: 8-bit values v standing for v/255, or
// 16-bit values standing for v/65535, or (when neither holds the decoded
// floats exactly) the floats themselves.
type stored struct {
	c, h, w int
	u8      []uint8
	u16     []uint16
	f32     []float32
}

// compact keeps im in the smallest of the three forms that gives back its
// exact float32 values: the decoders produce v/255 or v/65535, which 8 or
// 16 bits store without loss (checked, not assumed).
func compact(im Image) stored {
	s := stored{c: im.C, h: im.H, w: im.W}
	u16 := make([]uint16, len(im.Pix))
	eight := true
	for i, f := range im.Pix {
		v := math.Round(float64(f) * 65535)
		if !(v >= 0 && v <= 65535) || float32(v)/65535 != f {
			return stored{c: im.C, h: im.H, w: im.W, f32: im.Pix}
		}
		u16[i] = uint16(v)
		eight = eight && u16[i]%257 == 0
	}
	if eight {
		s.u8 = make([]uint8, len(u16))
		for i, v := range u16 {
			s.u8[i] = uint8(v / 257)
		}
		return s
	}
	s.u16 = u16
	return s
}

// floats writes the stored values as float32 in [0,1] into dst.
func (s *stored) floats(dst []float32) {
	switch {
	case s.u8 != nil:
		for i, v := range s.u8 {
			dst[i] = float32(v) / 255
		}
	case s.u16 != nil:
		for i, v := range s.u16 {
			dst[i] = float32(v) / 65535
		}
	default:
		copy(dst, s.f32)
	}
}

func (s *stored) bytes() int { return len(s.u8) + 2*len(s.u16) + 4*len(s.f32) }

// view is how a split's stored images become the dataset's images, in the
// order the loaders applied these steps when they converted whole sets.
type view struct {
	// evalSize, when set, gives each image of a folder timm's eval
	// transform to evalSize×evalSize (unless it has that size already).
	evalSize int
	// packC replicates grey folder images to this many channels (a folder
	// with colour images is read as RGB throughout).
	packC int
	// resize resamples every image to resize×resize (ResizeTo).
	resize int
	// channels converts to this many channels (Options.Channels).
	channels int
}

// imageScratch holds the buffers of one goroutine's conversions.
type imageScratch struct {
	a, b, c []float32
	taps    map[[2]int][][]resizeTap
}

func grow(b *[]float32, n int) []float32 {
	if cap(*b) < n {
		*b = make([]float32, n)
	}
	return (*b)[:n]
}

func (sc *imageScratch) tapsFor(in, out int) [][]resizeTap {
	if sc.taps == nil {
		sc.taps = map[[2]int][][]resizeTap{}
	}
	k := [2]int{in, out}
	t, ok := sc.taps[k]
	if !ok {
		t = resizeTaps(in, out)
		sc.taps[k] = t
	}
	return t
}

// Image returns image i of split s (one of d's) as C·H·W float32 values in
// [0,1] at the dataset's shape, converted as the data options asked. The
// values are written into dst when it has room (else into a new slice); a
// split that stores floats at the dataset's shape may return its own
// storage instead, which the caller must not modify.
func (d *Dataset) Image(s *Split, i int, dst []float32) []float32 {
	var sc imageScratch
	out := d.image(s, i, &sc)
	n := d.C * d.H * d.W
	if cap(dst) < n {
		dst = make([]float32, n)
	}
	dst = dst[:n]
	copy(dst, out)
	return dst
}

// image is Image with the conversions' buffers in sc: the result aliases
// the split's storage or sc, valid until sc's next use.
func (d *Dataset) image(s *Split, i int, sc *imageScratch) []float32 {
	var c, h, w int
	var px []float32
	switch {
	case s.images != nil:
		st := &s.images[i]
		c, h, w = st.c, st.h, st.w
		px = grow(&sc.a, c*h*w)
		st.floats(px)
	case s.pix8 != nil:
		c, h, w = s.shape[0], s.shape[1], s.shape[2]
		n := c * h * w
		px = grow(&sc.a, n)
		for j, v := range s.pix8[i*n : (i+1)*n] {
			px[j] = float32(v) / 255
		}
	default:
		c, h, w = s.shape[0], s.shape[1], s.shape[2]
		if c == 0 { // a split built by hand: X is at the dataset's shape
			c, h, w = d.C, d.H, d.W
		}
		n := c * h * w
		px = s.X[i*n : (i+1)*n]
	}
	v := s.view
	if e := v.evalSize; e > 0 && (h != e || w != e) {
		px, h, w = sc.evalResize(px, c, h, w, e, DefaultCropPct)
	}
	if v.packC > c {
		px, c = sc.channels(px, c, h, w, v.packC), v.packC
	}
	if r := v.resize; r > 0 && (h != r || w != r) {
		out := grow(sc.other(px), c*r*r)
		sc.resizeInto(out, px, c, h, w, r, r)
		px, h, w = out, r, r
	}
	if v.channels > 0 && v.channels != c {
		px, c = sc.channels(px, c, h, w, v.channels), v.channels
	}
	if c != d.C || h != d.H || w != d.W {
		panic(fmt.Sprintf("datasets: image %d is %dx%dx%d, the dataset's are %dx%dx%d", i, c, h, w, d.C, d.H, d.W))
	}
	return px
}

// other is a scratch buffer that is not px's.
func (sc *imageScratch) other(px []float32) *[]float32 {
	for _, b := range []*[]float32{&sc.a, &sc.b, &sc.c} {
		if !sameStart(*b, px) {
			return b
		}
	}
	panic("unreachable")
}

func sameStart(a, b []float32) bool { return cap(a) > 0 && cap(b) > 0 && &a[:1][0] == &b[:1][0] }

// channels is Image.Channels into a scratch buffer.
func (sc *imageScratch) channels(px []float32, c, h, w, to int) []float32 {
	out := grow(sc.other(px), to*h*w)
	channelsInto(out, px, c, h*w, to)
	return out
}

// evalResize is Image.EvalResize into scratch buffers.
func (sc *imageScratch) evalResize(px []float32, c, h, w, size int, cropPct float64) ([]float32, int, int) {
	nh, nw := evalScale(h, w, size, cropPct)
	r := sc.other(px)
	big := grow(r, c*nh*nw)
	sc.resizeInto(big, px, c, h, w, nh, nw)
	var out []float32
	for _, b := range []*[]float32{&sc.a, &sc.b, &sc.c} {
		if b != r && !sameStart(*b, px) {
			out = grow(b, c*size*size)
			break
		}
	}
	cropCentre(out, big, c, nh, nw, size)
	return out, size, size
}

// resizeInto is Resize writing into out, with its intermediate in scratch
// and its taps cached.
func (sc *imageScratch) resizeInto(out, pix []float32, c, h, w, nh, nw int) {
	if h == nh && w == nw {
		copy(out, pix)
		return
	}
	var tmp []float32
	for _, b := range []*[]float32{&sc.a, &sc.b, &sc.c} {
		if !sameStart(*b, pix) && !sameStart(*b, out) {
			tmp = grow(b, c*h*nw)
			break
		}
	}
	resize(out, tmp, pix, c, h, w, nh, nw, sc.tapsFor(w, nw), sc.tapsFor(h, nh))
}
