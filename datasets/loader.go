package datasets

import "fmt"

// LoaderOptions configure a Loader.
type LoaderOptions struct {
	Batch            int
	Shuffle, Augment bool
	Seed             int64
	// Shift is the largest random shift, in pixels, of Augment's padding
	// crop: 0 pads by H/8 and W/8 (the original policy), a negative value
	// shifts nothing (flips only, where the dataset allows them). See
	// AutoShift.
	Shift int
	// CropScale, when positive, makes Augment a random-resized crop (timm's
	// and torchvision's RandomResizedCrop: area fraction in [CropScale, 1],
	// aspect ratio in [3/4, 4/3], resized back bilinearly) instead of the
	// padding shift.
	CropScale float64
	Stats     Stats // empty: images are returned raw
	// DropLast omits a final partial batch, for steps that assume a full
	// batch; evaluation wants it false so every image is scored once.
	DropLast bool
}

// Loader serves normalised (and optionally shuffled and augmented) batches
// of one split. Batch(e, b) is a pure function of (Seed, e, b): the epoch's
// permutation depends only on (Seed, e) and a sample's augmentation only on
// (Seed, e, sample index), so a run resumed in the middle of an epoch sees
// exactly the batches it would have seen. A Loader reuses its buffers and is
// not safe for concurrent use; use one Loader per goroutine.
type Loader struct {
	d         *Dataset
	s         *Split
	o         LoaderOptions
	chw       int
	perm      []int
	permEpoch int
	permOK    bool
	x         []float32
	y         []int
	mean, inv []float32
}

// Stream tags keep the permutation and augmentation streams of the same
// (seed, epoch) unrelated.
const (
	tagPerm = 0x7065726d // "perm"
	tagAug  = 0x61756720 // "aug "
)

// NewLoader prepares a loader over s, one of d's splits. Invalid options
// are programming errors and panic.
func NewLoader(d *Dataset, s *Split, o LoaderOptions) *Loader {
	if o.Batch <= 0 {
		panic(fmt.Sprintf("datasets: batch size %d must be positive", o.Batch))
	}
	chw := d.C * d.H * d.W
	if len(s.X) != s.Len()*chw {
		panic(fmt.Sprintf("datasets: split has %d values for %d images of %dx%dx%d", len(s.X), s.Len(), d.C, d.H, d.W))
	}
	l := &Loader{d: d, s: s, o: o, chw: chw}
	l.mean, l.inv = make([]float32, d.C), make([]float32, d.C)
	for c := range d.C {
		l.inv[c] = 1
	}
	if len(o.Stats.Mean) != 0 {
		if len(o.Stats.Mean) != d.C || len(o.Stats.Std) != d.C {
			panic(fmt.Sprintf("datasets: Stats has %d means and %d stds for %d channels", len(o.Stats.Mean), len(o.Stats.Std), d.C))
		}
		for c := range d.C {
			l.mean[c], l.inv[c] = o.Stats.Mean[c], 1/o.Stats.Std[c]
		}
	}
	bs := min(o.Batch, s.Len())
	l.x, l.y = make([]float32, bs*chw), make([]int, bs)
	l.perm = make([]int, s.Len())
	return l
}

// NumBatches is the number of batches in one epoch.
func (l *Loader) NumBatches() int {
	n := l.s.Len()
	if l.o.DropLast {
		return n / l.o.Batch
	}
	return (n + l.o.Batch - 1) / l.o.Batch
}

// Batch returns batch b of epoch e: n images, normalised, in x (n*C*H*W)
// and their labels in y. Both slices alias buffers the Loader reuses, valid
// until the next call. A batch index outside [0, NumBatches) gives n = 0.
func (l *Loader) Batch(epoch, b int) (x []float32, y []int, n int) {
	if b < 0 || b >= l.NumBatches() {
		return l.x[:0], l.y[:0], 0
	}
	l.permute(epoch)
	start := b * l.o.Batch
	n = min(l.o.Batch, l.s.Len()-start)
	for k := range n {
		idx := l.perm[start+k]
		dst := l.x[k*l.chw : (k+1)*l.chw]
		src := l.s.X[idx*l.chw : (idx+1)*l.chw]
		if l.o.Augment {
			l.augment(dst, src, epoch, idx)
		} else {
			l.normalize(dst, src)
		}
		l.y[k] = l.s.Y[idx]
	}
	return l.x[:n*l.chw], l.y[:n], n
}

// permute fills l.perm for epoch. Only the latest epoch is cached: training
// walks epochs in order, so recomputing on an epoch change costs one
// shuffle per epoch and no allocation.
func (l *Loader) permute(epoch int) {
	if l.permOK && l.permEpoch == epoch {
		return
	}
	for i := range l.perm {
		l.perm[i] = i
	}
	if l.o.Shuffle {
		r := newRNG(uint64(l.o.Seed), uint64(epoch), tagPerm)
		for i := len(l.perm) - 1; i > 0; i-- {
			j := r.intn(i + 1)
			l.perm[i], l.perm[j] = l.perm[j], l.perm[i]
		}
	}
	l.permEpoch, l.permOK = epoch, true
}

func (l *Loader) normalize(dst, src []float32) {
	plane := l.d.H * l.d.W
	for c := range l.d.C {
		m, inv := l.mean[c], l.inv[c]
		s, d := src[c*plane:(c+1)*plane], dst[c*plane:(c+1)*plane]
		for i, v := range s {
			d[i] = (v - m) * inv
		}
	}
}

// augment writes a randomly shifted (and, when the dataset allows it,
// mirrored) copy of src: a crop of the image zero-padded by Shift (by
// default H/8, W/8) pixels on each side. As torchvision's RandomCrop before Normalize, the padding is
// raw black, which matches the background of digit-like images instead of
// drawing a mean-grey frame around them.
func (l *Loader) augment(dst, src []float32, epoch, idx int) {
	H, W := l.d.H, l.d.W
	r := newRNG(uint64(l.o.Seed), uint64(epoch), uint64(idx), tagAug)
	if l.o.CropScale > 0 {
		l.augmentRRC(dst, src, &r)
		return
	}
	padH, padW := max(1, H/8), max(1, W/8)
	switch {
	case l.o.Shift < 0:
		padH, padW = 0, 0
	case l.o.Shift > 0:
		padH, padW = l.o.Shift, l.o.Shift
	}
	dy := r.intn(2*padH+1) - padH
	dx := r.intn(2*padW+1) - padW
	flip := l.d.FlipOK && r.next()&1 == 1
	plane := H * W
	for c := range l.d.C {
		m, inv := l.mean[c], l.inv[c]
		s, d := src[c*plane:(c+1)*plane], dst[c*plane:(c+1)*plane]
		for i := range H {
			si := i + dy
			row := d[i*W : (i+1)*W]
			if si < 0 || si >= H {
				for j := range row {
					row[j] = -m * inv
				}
				continue
			}
			srow := s[si*W : (si+1)*W]
			for j := range W {
				sj := j + dx
				if sj < 0 || sj >= W {
					row[j] = -m * inv
					continue
				}
				if flip {
					sj = W - 1 - sj
				}
				row[j] = (srow[sj] - m) * inv
			}
		}
	}
}

// AutoShift is the padding-crop shift that suits h-pixel images (for
// LoaderOptions.Shift): none up to 16 px, where a one-pixel shift already
// moves an eighth of the image and cost digits (8×8) points; about h/14
// (2 px at 28–32 px) above, half the original h/8, which cost points on
// short schedules.
func AutoShift(h int) int {
	if h <= 16 {
		return -1
	}
	return max(1, h/14)
}
