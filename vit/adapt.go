package vit

import (
	"fmt"
	"math"
	"strings"

	"vitc/datasets"
)

// InitOptions say how a pretrained checkpoint is adapted to a new task.
type InitOptions struct {
	// Load reads a metadata-less file (heads, LayerNorm eps, statistics);
	// its Log also receives one line per adaptation.
	Load LoadOptions
	// KeepHead refuses a class count other than the file's instead of
	// starting a fresh head.
	KeepHead bool
	// PosEmbedAntialias resamples pos_embed with antialias=True, as timm's
	// checkpoint filters do; false is plain bicubic interpolation.
	PosEmbedAntialias bool
	// Attention, if set, replaces the file's attention kind (conversion
	// from softmax to Taylor attention starts from softmax weights).
	Attention string
	// Pretrained is the file read for fine-tuning, whose architecture the
	// run takes. Nil: the run's configuration is the architecture and init only
	// provides weights of that shape (a run that changes the model, like
	// pruning, starting from a dense checkpoint).
	Pretrained *Checkpoint
}

// NewRunModel is the model a training run starts from: a fresh model of cfg
// seeded with seed and the data's statistics; a model of cfg whose weights
// are read from init (with cfg's shapes: a run that changes the model, like
// pruning) and init's normalisation; or, with io.Pretrained, the pretrained
// model adapted to ds with the normalisation it was trained with (as timm's
// pretrained configs do).
func NewRunModel(cfg Config, seed int64, init string, io InitOptions, ds *datasets.Dataset) (*Model, datasets.Stats, error) {
	pre := io.Pretrained
	if pre == nil {
		m, err := New(cfg, seed)
		if err != nil || init == "" {
			return m, datasets.ComputeStats(ds), err
		}
		c, err := Open(init, io.Load)
		if err != nil {
			return nil, datasets.Stats{}, err
		}
		if err := m.loadWeights(c.file, c.Path); err != nil {
			return nil, datasets.Stats{}, err
		}
		if c.Meta.NormMean == nil {
			return m, datasets.ComputeStats(ds), nil
		}
		return m, datasets.Stats{Mean: c.Meta.NormMean, Std: c.Meta.NormStd}, nil
	}
	if ds.H != ds.W {
		return nil, datasets.Stats{}, fmt.Errorf("images are %dx%d: vitc models take square images", ds.H, ds.W)
	}
	if io.Attention != "" {
		pre.Config.Attention = io.Attention
	}
	m, err := pre.Adapt(Task{Image: ds.H, Channels: ds.C, Classes: len(ds.Classes)}, io, seed)
	if err != nil {
		return nil, datasets.Stats{}, err
	}
	stats, how := pre.normFor(ds.C)
	if stats.Mean == nil {
		stats = datasets.ComputeStats(ds)
	}
	if io.Load.Log != nil {
		io.Load.Log("normalisation %s (%s)", normString(stats.Mean, stats.Std), how)
	}
	return m, stats, nil
}

// normFor is p's input normalisation for data of c channels: as recorded,
// averaged over RGB for grey data (the summed patch projection sees the
// same normalised value in every channel), replicated for RGB data from a
// grey model. Empty when p records none.
func (p *Checkpoint) normFor(c int) (datasets.Stats, string) {
	mean, std := p.Meta.NormMean, p.Meta.NormStd
	switch {
	case len(mean) == 0:
		return datasets.Stats{}, "the checkpoint records none: computed from the training data"
	case len(mean) == c:
		return datasets.Stats{Mean: mean, Std: std}, "the checkpoint's"
	case c == 1:
		var m, s float32
		for i := range mean {
			m += mean[i] / float32(len(mean))
			s += std[i] / float32(len(std))
		}
		return datasets.Stats{Mean: []float32{m}, Std: []float32{s}}, "the checkpoint's, averaged over its channels"
	default:
		st := datasets.Stats{Mean: make([]float32, c), Std: make([]float32, c)}
		for i := range c {
			st.Mean[i], st.Std[i] = mean[i%len(mean)], std[i%len(std)]
		}
		return st, "the checkpoint's, repeated over the channels"
	}
}

// Task is what the new data asks of the model.
type Task struct {
	Image, Channels, Classes int
}

// Adapt builds the model for task from p: p's architecture with the task's
// image size, channels and classes; pos_embed resampled to the new grid,
// the patch projection adapted to the new channels and a fresh head (seeded)
// when the class count changes (unless opts.KeepHead). Each adaptation is
// reported through opts.Load.Log.
func (p *Checkpoint) Adapt(task Task, opts InitOptions, seed int64) (*Model, error) {
	log, keepHead := opts.Load.Log, opts.KeepHead
	if log == nil {
		log = func(string, ...any) {}
	}
	src := p.Config
	cfg := src
	cfg.Image, cfg.Channels, cfg.Classes = task.Image, task.Channels, task.Classes
	if cfg.Image%cfg.Patch != 0 {
		return nil, fmt.Errorf("image size %d is not a multiple of the patch size %d of %s", cfg.Image, cfg.Patch, p.Path)
	}
	if keepHead && src.Classes != cfg.Classes {
		return nil, fmt.Errorf("%s has %d classes, the data %d: keeping the head needs the same classes", p.Path, src.Classes, cfg.Classes)
	}
	m, err := New(cfg, seed)
	if err != nil {
		return nil, err
	}
	newHead := src.Classes != cfg.Classes
	skip := func(name string) bool {
		switch {
		case newHead && strings.HasPrefix(name, "head."):
			return true
		case name == "pos_embed" && src.Image != cfg.Image, name == "patch_embed.proj.weight" && src.Channels != cfg.Channels:
			return true
		}
		return absentQKVBias(p.file)(name)
	}
	if err := m.loadTensors(p.file, skip); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", p.Path, err)
	}
	if newHead {
		log("head: new, %d classes (the checkpoint has %d), freshly initialised", cfg.Classes, src.Classes)
	}
	if src.Image != cfg.Image {
		t, _ := p.file.Lookup("pos_embed")
		pe, err := t.Float32s()
		if err != nil {
			return nil, err
		}
		oldSide, newSide := src.Image/src.Patch, cfg.Image/cfg.Patch
		how := "bicubic"
		if opts.PosEmbedAntialias {
			copy(m.posEmbed.Data, ResamplePosEmbedAntialias(pe, cfg.Dim, oldSide, newSide))
			how = "bicubic, antialiased,"
		} else {
			copy(m.posEmbed.Data, ResamplePosEmbed(pe, cfg.Dim, oldSide, newSide))
		}
		log("pos_embed: resampled %s from a %dx%d to a %dx%d grid (%d to %d px input)", how, oldSide, oldSide, newSide, newSide, src.Image, cfg.Image)
	}
	if src.Channels != cfg.Channels {
		t, _ := p.file.Lookup("patch_embed.proj.weight")
		w, err := t.Float32s()
		if err != nil {
			return nil, err
		}
		copy(m.patchProj.weight.Data, AdaptInputConv(w, src.Dim, src.Channels, cfg.Channels, cfg.Patch*cfg.Patch))
		log("patch_embed.proj: adapted from %d to %d input channels", src.Channels, cfg.Channels)
	}
	return m, nil
}

// ResamplePosEmbed is timm's resample_abs_pos_embed with one prefix (cls)
// token, as torch's interpolate(mode="bicubic", align_corners=False,
// antialias=False) does it: the cls row is kept, the patch rows (oldSide²,
// row-major grid) are resampled to newSide². pe is (1+oldSide², d).
func ResamplePosEmbed(pe []float32, d, oldSide, newSide int) []float32 {
	return resampleGrid(pe, d, oldSide, newSide, bicubicWeights(oldSide, newSide))
}

// ResamplePosEmbedAntialias is ResamplePosEmbed with antialias=True, the
// default of timm's resample_abs_pos_embed and of its checkpoint filters:
// torch's separable antialiased bicubic (Keys' cubic with a = −0.5, support
// widened by the scale when shrinking, taps renormalised at the border).
func ResamplePosEmbedAntialias(pe []float32, d, oldSide, newSide int) []float32 {
	return resampleGrid(pe, d, oldSide, newSide, bicubicWeightsAA(oldSide, newSide))
}

// resampleGrid keeps the cls row of pe (1+oldSide², d) and resamples the
// patch rows with the taps of one axis (the grid is square).
func resampleGrid(pe []float32, d, oldSide, newSide int, wy [][]tap) []float32 {
	out := make([]float32, (1+newSide*newSide)*d) // (1+newSide², d)
	copy(out, pe[:d])
	// Separable: rows first into (newSide, oldSide, d), in float64.
	tmp := make([]float64, newSide*oldSide*d)
	for oy, taps := range wy {
		for _, tp := range taps {
			for x := range oldSide {
				src := pe[d*(1+tp.i*oldSide+x):][:d]
				dst := tmp[(oy*oldSide+x)*d:][:d]
				for k, v := range src {
					dst[k] += tp.w * float64(v)
				}
			}
		}
	}
	acc := make([]float64, d)
	for oy := range newSide {
		for ox, taps := range wy {
			clear(acc)
			for _, tp := range taps {
				src := tmp[(oy*oldSide+tp.i)*d:][:d]
				for k, v := range src {
					acc[k] += tp.w * v
				}
			}
			dst := out[d*(1+oy*newSide+ox):][:d]
			for k, v := range acc {
				dst[k] = float32(v)
			}
		}
	}
	return out
}

type tap struct {
	i int
	w float64
}

// bicubicWeights are torch's upsample_bicubic2d taps for one axis: source
// coordinate (o+0.5)·in/out − 0.5, Keys' cubic with a = −0.75, indices
// clamped to the border. Taps landing on the same clamped index add up.
func bicubicWeights(in, out int) [][]tap {
	const a = -0.75
	cubic1 := func(x float64) float64 { return ((a+2)*x-(a+3))*x*x + 1 }   // |x| <= 1
	cubic2 := func(x float64) float64 { return ((a*x-5*a)*x+8*a)*x - 4*a } // 1 < |x| < 2
	scale := float64(in) / float64(out)
	w := make([][]tap, out)
	for o := range out {
		real := scale*(float64(o)+0.5) - 0.5
		i0 := int(math.Floor(real))
		t := real - float64(i0)
		coef := [4]float64{cubic2(t + 1), cubic1(t), cubic1(1 - t), cubic2(2 - t)}
		for k, c := range coef {
			i := min(max(i0-1+k, 0), in-1)
			w[o] = append(w[o], tap{i, c})
		}
	}
	return w
}

// bicubicWeightsAA are torch's antialiased bicubic taps for one axis
// (_compute_indices_weights_aa): centre (o+0.5)·in/out, window of half-width
// 2·max(in/out, 1), weights Keys(a = −0.5) of the distance scaled down by
// the shrink factor, normalised to sum 1.
func bicubicWeightsAA(in, out int) [][]tap {
	const a = -0.5
	filter := func(x float64) float64 {
		x = math.Abs(x)
		switch {
		case x < 1:
			return ((a+2)*x-(a+3))*x*x + 1
		case x < 2:
			return ((a*x-5*a)*x+8*a)*x - 4*a
		}
		return 0
	}
	scale := float64(in) / float64(out)
	support, invscale := 2.0, 1.0
	if scale >= 1 {
		support, invscale = 2*scale, 1/scale
	}
	w := make([][]tap, out)
	for o := range out {
		centre := scale * (float64(o) + 0.5)
		lo := max(int(centre-support+0.5), 0)
		hi := min(int(centre+support+0.5), in)
		var total float64
		for j := lo; j < hi; j++ {
			c := filter((float64(j) - centre + 0.5) * invscale)
			w[o] = append(w[o], tap{j, c})
			total += c
		}
		if total != 0 {
			for k := range w[o] {
				w[o][k].w /= total
			}
		}
	}
	return w
}

// AdaptInputConv is timm's adapt_input_conv for a patch projection w
// (dOut, cIn, k) with k = patch²: to one channel, the sum over the input
// channels (an RGB model fed grey replicated to RGB computes the same); to
// c channels, the input channels repeated cyclically and scaled by cIn/c
// (timm's 3/c from RGB; from grey, 1/3 keeps a grey image's embedding).
func AdaptInputConv(w []float32, dOut, cIn, c, k int) []float32 {
	out := make([]float32, dOut*c*k) // (dOut, c, k)
	for o := range dOut {
		src := w[o*cIn*k:][:cIn*k]
		dst := out[o*c*k:][:c*k]
		if c == 1 {
			for ci := range cIn {
				for j := range k {
					dst[j] += src[ci*k+j]
				}
			}
			continue
		}
		s := float32(cIn) / float32(c)
		for ci := range c {
			for j := range k {
				dst[ci*k+j] = src[(ci%cIn)*k+j] * s
			}
		}
	}
	return out
}
