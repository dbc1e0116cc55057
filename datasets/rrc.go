package datasets

import "math"

// rrcBox draws torchvision's RandomResizedCrop box for an h×w image: an area
// of scale·h·w with scale uniform in [minScale, 1] and an aspect ratio
// log-uniform in [3/4, 4/3], placed uniformly; after ten draws that do not
// fit it falls back to the central crop of the largest allowed aspect, as
// torchvision does. It returns the box's top, left, height and width.
func rrcBox(r *rng, h, w int, minScale float64) (top, left, ch, cw int) {
	area := float64(h * w)
	logLo, logHi := math.Log(3.0/4), math.Log(4.0/3)
	for range 10 {
		target := area * r.uniform(minScale, 1)
		ratio := math.Exp(r.uniform(logLo, logHi))
		cw = int(math.Round(math.Sqrt(target * ratio)))
		ch = int(math.Round(math.Sqrt(target / ratio)))
		if cw > 0 && ch > 0 && cw <= w && ch <= h {
			return r.intn(h - ch + 1), r.intn(w - cw + 1), ch, cw
		}
	}
	ratio := float64(w) / float64(h)
	switch {
	case ratio < 3.0/4:
		cw, ch = w, int(math.Round(float64(w)/(3.0/4)))
	case ratio > 4.0/3:
		ch, cw = h, int(math.Round(float64(h)*(4.0/3)))
	default:
		cw, ch = w, h
	}
	return (h - ch) / 2, (w - cw) / 2, ch, cw
}

// resizeCrop writes the box (top, left, ch, cw) of the h×w plane src,
// resized bilinearly to h×w (half-pixel centres, as torch's
// interpolate(align_corners=False)), normalised by (m, inv) and mirrored
// when flip, into dst.
func resizeCrop(dst, src []float32, h, w, top, left, ch, cw int, flip bool, m, inv float32) {
	sy, sx := float64(ch)/float64(h), float64(cw)/float64(w)
	for i := range h {
		fy := math.Max((float64(i)+0.5)*sy-0.5, 0)
		y0 := min(int(fy), ch-1)
		y1 := min(y0+1, ch-1)
		wy := float32(fy - float64(y0))
		r0, r1 := src[(top+y0)*w+left:], src[(top+y1)*w+left:]
		for j := range w {
			fx := math.Max((float64(j)+0.5)*sx-0.5, 0)
			x0 := min(int(fx), cw-1)
			x1 := min(x0+1, cw-1)
			wx := float32(fx - float64(x0))
			top := r0[x0] + (r0[x1]-r0[x0])*wx
			bot := r1[x0] + (r1[x1]-r1[x0])*wx
			o := j
			if flip {
				o = w - 1 - j
			}
			dst[i*w+o] = (top + (bot-top)*wy - m) * inv
		}
	}
}

// augmentRRC is Augment with a random-resized crop instead of the padding
// shift: the same box for every channel, then a mirror where labels allow.
func (l *Loader) augmentRRC(dst, src []float32, r *rng) {
	H, W := l.d.H, l.d.W
	top, left, ch, cw := rrcBox(r, H, W, l.o.CropScale)
	flip := l.d.FlipOK && r.next()&1 == 1
	plane := H * W
	for c := range l.d.C {
		resizeCrop(dst[c*plane:(c+1)*plane], src[c*plane:(c+1)*plane], H, W, top, left, ch, cw, flip, l.mean[c], l.inv[c])
	}
}
