package datasets

import (
	"fmt"
	"math"
)

// DefaultCropPct is timm's eval crop_pct: images are resized so that their
// shorter side is size/0.875, then the centre size×size is cropped.
const DefaultCropPct = 0.875

// Resize resamples planar pixels (c, h, w) to (c, nh, nw) with a triangle
// (bilinear) filter widened by the scale factor when shrinking, as PIL's
// antialiased resize does, so that downscaled photos do not alias.
func Resize(pix []float32, c, h, w, nh, nw int) []float32 {
	if h == nh && w == nw {
		return pix
	}
	out := make([]float32, c*nh*nw)
	resize(out, make([]float32, c*h*nw), pix, c, h, w, nh, nw, resizeTaps(w, nw), resizeTaps(h, nh))
	return out
}

// resize is Resize into out (c, nh, nw), with tmp (c, h, nw) for the
// horizontal pass and the taps of both passes given.
func resize(out, tmp, pix []float32, c, h, w, nh, nw int, wx, wy [][]resizeTap) {
	for ch := range c { // rows first
		for y := range h {
			src := pix[(ch*h+y)*w:][:w]
			dst := tmp[(ch*h+y)*nw:][:nw]
			for x, taps := range wx {
				var s float32
				for _, t := range taps {
					s += t.w * src[t.i]
				}
				dst[x] = s
			}
		}
	}
	clear(out) // (c, nh, nw)
	for ch := range c {
		for y, taps := range wy {
			dst := out[(ch*nh+y)*nw:][:nw]
			for _, t := range taps {
				src := tmp[(ch*h+t.i)*nw:][:nw]
				for x, v := range src {
					dst[x] += t.w * v
				}
			}
		}
	}
}

type resizeTap struct {
	i int
	w float32
}

// resizeTaps are the normalised triangle-filter taps of each output sample
// (centres at (o+0.5)·in/out − 0.5), support widened by in/out when
// shrinking.
func resizeTaps(in, out int) [][]resizeTap {
	scale := float64(in) / float64(out)
	support := max(scale, 1)
	taps := make([][]resizeTap, out)
	for o := range out {
		centre := (float64(o)+0.5)*scale - 0.5
		lo := max(int(math.Floor(centre-support)), 0)
		hi := min(int(math.Ceil(centre+support)), in-1)
		var sum float64
		var ts []resizeTap
		for i := lo; i <= hi; i++ {
			wt := 1 - math.Abs(float64(i)-centre)/support
			if wt <= 0 {
				continue
			}
			ts = append(ts, resizeTap{i, float32(wt)})
			sum += wt
		}
		if len(ts) == 0 { // centre beyond the border: nearest edge pixel
			ts = []resizeTap{{min(max(int(math.Round(centre)), 0), in-1), 1}}
			sum = 1
		}
		for k := range ts {
			ts[k].w = float32(float64(ts[k].w) / sum)
		}
		taps[o] = ts
	}
	return taps
}

// EvalResize is timm's eval transform: the shorter side resized to
// ⌊size/cropPct⌋ (aspect kept), then the centre size×size cropped. An image
// already size×size is returned as it is.
func (im Image) EvalResize(size int, cropPct float64) Image {
	if im.H == size && im.W == size {
		return im
	}
	nh, nw := evalScale(im.H, im.W, size, cropPct)
	r := Resize(im.Pix, im.C, im.H, im.W, nh, nw)
	out := make([]float32, im.C*size*size)
	cropCentre(out, r, im.C, nh, nw, size)
	return Image{C: im.C, H: size, W: size, Pix: out}
}

// evalScale is the size EvalResize resamples an h×w image to before its
// centre crop: the shorter side ⌊size/cropPct⌋, the aspect kept.
func evalScale(h, w, size int, cropPct float64) (nh, nw int) {
	scale := int(math.Floor(float64(size) / cropPct))
	nh, nw = scale, scale
	if h < w {
		nw = max(scale*w/h, scale)
	} else {
		nh = max(scale*h/w, scale)
	}
	return nh, nw
}

// cropCentre writes the centre size×size of the planes r (c, nh, nw) into
// out.
func cropCentre(out, r []float32, c, nh, nw, size int) {
	top := int(math.Round(float64(nh-size) / 2))
	left := int(math.Round(float64(nw-size) / 2))
	for ch := range c {
		for y := range size {
			copy(out[(ch*size+y)*size:][:size], r[(ch*nh+top+y)*nw+left:][:size])
		}
	}
}

// ResizeTo resamples every image of d to size×size (aspect ignored: the
// images of a fixed-size set share one shape already), e.g. 32 px CIFAR for
// a model pretrained at 64 or 224 px. The images are resampled when Image
// (a Loader) reads them, not here: the splits keep what they stored.
func (d *Dataset) ResizeTo(size int) {
	if d.H == size && d.W == size {
		return
	}
	d.pinShapes()
	for _, s := range []*Split{&d.Train, &d.Test} {
		s.view.resize = size
	}
	d.H, d.W = size, size
}

// ConvertChannels gives d's images c channels (1 or 3: luma, or grey
// replicated), when Image reads them.
func (d *Dataset) ConvertChannels(c int) {
	if c == d.C {
		return
	}
	if c != 1 && c != 3 {
		panic(fmt.Sprintf("datasets: cannot convert images to %d channels", c))
	}
	d.pinShapes()
	for _, s := range []*Split{&d.Train, &d.Test} {
		s.view.channels = c
	}
	d.C = c
}

// pinShapes records the stored shape of splits built with X at the
// dataset's shape, before that shape changes.
func (d *Dataset) pinShapes() {
	for _, s := range []*Split{&d.Train, &d.Test} {
		if s.images == nil && s.shape == [3]int{} {
			s.shape = [3]int{d.C, d.H, d.W}
		}
	}
}
