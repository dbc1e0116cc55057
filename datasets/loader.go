package datasets

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

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
	// Prefetch makes batch b+1 on worker goroutines while the caller works
	// on batch b (which it asked for last): a loop over the batches in
	// order then rarely waits for its data. The batches are the same.
	Prefetch bool
}

// Loader serves normalised (and optionally shuffled and augmented) batches
// of one split. Batch(e, b) is a pure function of (Seed, e, b): the epoch's
// permutation depends only on (Seed, e) and a sample's augmentation only on
// (Seed, e, sample index), so a run resumed in the middle of an epoch sees
// exactly the batches it would have seen. Each batch's images are made
// (resized from the split's stored images, augmented, normalised) in
// parallel, one image per worker at a time, and with Prefetch the next
// batch is made while the caller uses this one. A Loader reuses its
// buffers and is not safe for concurrent use; use one Loader per
// goroutine.
type Loader struct {
	d         *Dataset
	s         *Split
	o         LoaderOptions
	chw       int
	perm      []int
	permEpoch int
	permOK    bool
	mean, inv []float32
	// Two batch buffers: the one last returned, and the one the prefetch
	// fills.
	bufs    [2]batchBuf
	cur     int
	pending *prefetch
	scratch [imageWorkers]imageScratch
	// job is the batch fill is making, read by makeImage (made once as
	// makeOne, so that a batch allocates nothing).
	job     fillJob
	makeOne func(w, k int)
}

type fillJob struct {
	buf          *batchBuf
	epoch, start int
}

type batchBuf struct {
	x []float32
	y []int
}

type prefetch struct {
	epoch, batch, slot, n int
	done                  chan struct{}
}

// imageWorkers bounds the goroutines that make one batch's images; each
// has its own conversion buffers.
const imageWorkers = 8

// parallelGrain is the fewest values a batch must hold to be made on
// several goroutines.
const parallelGrain = 1 << 16

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
	d.checkSplit(s)
	chw := d.C * d.H * d.W
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
	l.perm = make([]int, s.Len())
	l.makeOne = l.makeImage
	return l
}

// checkSplit panics when s's storage does not hold s.Len() images.
func (d *Dataset) checkSplit(s *Split) {
	n := s.Len()
	switch {
	case s.images != nil:
		if len(s.images) != n {
			panic(fmt.Sprintf("datasets: split has %d images for %d labels", len(s.images), n))
		}
	case s.pix8 != nil:
		if len(s.pix8) != n*s.shape[0]*s.shape[1]*s.shape[2] {
			panic(fmt.Sprintf("datasets: split has %d bytes for %d images of %v", len(s.pix8), n, s.shape))
		}
	default:
		c, h, w := s.shape[0], s.shape[1], s.shape[2]
		if c == 0 {
			c, h, w = d.C, d.H, d.W
		}
		if len(s.X) != n*c*h*w {
			panic(fmt.Sprintf("datasets: split has %d values for %d images of %dx%dx%d", len(s.X), n, c, h, w))
		}
	}
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
	slot := -1
	if p := l.pending; p != nil {
		<-p.done
		l.pending = nil
		if p.epoch == epoch && p.batch == b {
			slot, n = p.slot, p.n
		}
	}
	if b < 0 || b >= l.NumBatches() {
		return nil, nil, 0
	}
	if slot < 0 {
		// The buffer last returned is free again (valid until this call);
		// no prefetch is running.
		l.permute(epoch)
		slot = l.cur
		n = l.fill(slot, epoch, b)
	}
	l.cur = slot
	if l.o.Prefetch && b+1 < l.NumBatches() {
		p := &prefetch{epoch: epoch, batch: b + 1, slot: 1 - slot, done: make(chan struct{})}
		l.pending = p
		go func() {
			p.n = l.fill(p.slot, p.epoch, p.batch)
			close(p.done)
		}()
	}
	buf := &l.bufs[slot]
	return buf.x[:n*l.chw], buf.y[:n], n
}

// fill makes batch b of epoch into buffer slot; l.perm holds epoch's
// permutation and does not change while it runs.
func (l *Loader) fill(slot, epoch, b int) int {
	start := b * l.o.Batch
	n := min(l.o.Batch, l.s.Len()-start)
	buf := &l.bufs[slot]
	if cap(buf.x) < n*l.chw {
		bs := min(l.o.Batch, l.s.Len())
		buf.x, buf.y = make([]float32, bs*l.chw), make([]int, bs)
	}
	l.job = fillJob{buf: buf, epoch: epoch, start: start}
	parallelImages(n, l.chw, l.makeOne)
	return n
}

// makeImage makes image k of the batch l.job describes, on worker w.
func (l *Loader) makeImage(w, k int) {
	j := &l.job
	idx := l.perm[j.start+k]
	dst := j.buf.x[k*l.chw : (k+1)*l.chw]
	src := l.d.image(l.s, idx, &l.scratch[w])
	if l.o.Augment {
		l.augment(dst, src, j.epoch, idx)
	} else {
		l.normalize(dst, src)
	}
	j.buf.y[k] = l.s.Y[idx]
}

// parallelImages runs f(w, k) for every k in [0, n) on up to
// min(GOMAXPROCS, imageWorkers) goroutines, w being the goroutine's index
// (for its scratch buffers); images of size values each. Each image is made
// alone, so the order in which the workers take them changes nothing.
// Small work (tiny images) runs on the calling goroutine.
func parallelImages(n, size int, f func(w, k int)) {
	workers := min(runtime.GOMAXPROCS(0), imageWorkers, n)
	if n*size < parallelGrain {
		workers = 1
	}
	if workers <= 1 {
		for k := range n {
			f(0, k)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= n {
					return
				}
				f(w, k)
			}
		})
	}
	wg.Wait()
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
