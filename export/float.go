package export

import (
	"math"
	"slices"
	"strconv"

	"vitc/autograd"
	"vitc/tokenprune"
	"vitc/vit"
)

// floatModel runs a vit.Model's forward pass one image at a time in plain
// float32, the same graph the integer model computes, recording the largest
// magnitude of every tensor the integer model stores: the calibration.
type floatModel struct {
	cfg    vit.Config
	w      func(name string) []float32
	absmax map[string]float64
	// tap, when set, also receives every recorded tensor (names as in
	// docs/bundle.md's activation scales): the per-layer error report's
	// float side. Taylor's khat and g come once per head.
	tap func(name string, xs []float32)
	// hists, when set, collects each tensor's magnitude histogram for the
	// percentile and MSE calibration methods.
	hists map[string]*magHist
	// keptTap, when set, receives block l's kept token indices: the ones
	// this graph's own scores choose, even where forceKept overrides them.
	keptTap func(l int, kept []int)
	// forceKept, when set, gives block l's kept token indices (ascending;
	// nil: choose by score). The per-layer error report makes the float
	// graph keep what the integer model kept, so that the tensors after a
	// pruning step hold the same tokens on both sides and their error is
	// the arithmetic's, not a different choice of tokens.
	forceKept func(l int) []int
}

func newFloatModel(m *vit.Model) *floatModel {
	return &floatModel{cfg: m.Config, absmax: map[string]float64{}, w: func(name string) []float32 {
		p, ok := m.Params.Get(name)
		if !ok {
			panic("export: model has no " + name)
		}
		return p.Data
	}}
}

func (f *floatModel) record(name string, xs []float32) {
	if f.tap != nil {
		f.tap(name, xs)
	}
	if f.hists != nil {
		h := f.hists[name]
		if h == nil {
			h = &magHist{}
			f.hists[name] = h
		}
		h.add(xs)
	}
	m := f.absmax[name]
	for _, v := range xs {
		m = math.Max(m, math.Abs(float64(v)))
	}
	f.absmax[name] = m
}

// linear is y (n, out) = x (n, in)·Wᵀ + b.
func (f *floatModel) linear(name string, x []float32, n, in, out int) []float32 {
	y := make([]float32, n*out)
	b := f.w(name + ".bias")
	for r := 0; r < n; r++ {
		copy(y[r*out:(r+1)*out], b)
	}
	autograd.Gemm(false, true, n, out, in, 1, x, in, f.w(name+".weight"), in, 1, y, out)
	return y
}

func (f *floatModel) layerNorm(name string, x []float32, n, d int) []float32 {
	g, b := f.w(name+".weight"), f.w(name+".bias")
	y := make([]float32, n*d)
	for r := 0; r < n; r++ {
		row := x[r*d : (r+1)*d]
		var mu, v float64
		for _, e := range row {
			mu += float64(e)
		}
		mu /= float64(d)
		for _, e := range row {
			v += (float64(e) - mu) * (float64(e) - mu)
		}
		inv := 1 / math.Sqrt(v/float64(d)+f.cfg.Eps())
		for i, e := range row {
			y[r*d+i] = float32((float64(e)-mu)*inv)*g[i] + b[i]
		}
	}
	return y
}

// forward maps one normalised image (C, H, W) to logits, recording ranges.
func (f *floatModel) forward(img []float32) []float32 {
	c := f.cfg
	d, p := c.Dim, c.Patch
	patches := patchesOf(img, c.Channels, c.Image, p) // (P, C·p·p)
	np, cpp := c.Patches(), c.Channels*p*p
	f.record("input", patches)
	emb := f.linear("patch_embed.proj", patches, np, cpp, d) // (P, D)
	f.record("embed", emb)
	pos := f.w("pos_embed")
	f.record("pos", pos[d:])
	n := np + 1
	x := make([]float32, n*d) // (N, D)
	cls := f.w("cls_token")
	for i := 0; i < d; i++ {
		x[i] = cls[i] + pos[i]
	}
	for t := 1; t < n; t++ {
		for i := 0; i < d; i++ {
			x[t*d+i] = emb[(t-1)*d+i] + pos[t*d+i]
		}
	}
	f.record("x0", x)
	for l := 0; l < c.Depth; l++ {
		x, n = f.block(l, x, n)
		f.record(blockOut(l), x)
	}
	h := f.layerNorm("norm", x[:d], 1, d)
	f.record("norm", h)
	logits := f.linear("head", h, 1, d, c.Classes)
	f.record("logits", logits)
	return logits
}

func blockOut(l int) string { return blockName(l) + ".out" }

func blockName(l int) string { return "blocks." + strconv.Itoa(l) }

func (f *floatModel) block(l int, x []float32, n int) ([]float32, int) {
	c := f.cfg
	pre := blockName(l)
	d, heads, hd := c.Dim, c.HeadsAt(l), c.HeadDim()
	a := heads * hd
	h := f.layerNorm(pre+".norm1", x, n, d)
	f.record(pre+".norm1", h)
	qkv := f.linear(pre+".attn.qkv", h, n, d, 3*a) // (N, 3A)
	q, k, v := make([]float32, n*a), make([]float32, n*a), make([]float32, n*a)
	for t := 0; t < n; t++ {
		copy(q[t*a:], qkv[t*3*a:t*3*a+a])
		copy(k[t*a:], qkv[t*3*a+a:t*3*a+2*a])
		copy(v[t*a:], qkv[t*3*a+2*a:t*3*a+3*a])
	}
	f.record(pre+".q", q)
	f.record(pre+".k", k)
	f.record(pre+".v", v)
	out := make([]float32, n*a) // (N, A)
	score := make([]float32, n) // cls attention, mean over heads
	s := 1 / math.Sqrt(float64(hd))
	for hh := 0; hh < heads; hh++ {
		col := func(m []float32, t, j int) float64 { return float64(m[t*a+hh*hd+j]) }
		if c.Attention == "taylor" {
			kh := make([]float64, n*hd)
			for j := 0; j < hd; j++ {
				var mu float64
				for t := 0; t < n; t++ {
					mu += col(k, t, j)
				}
				mu /= float64(n)
				for t := 0; t < n; t++ {
					kh[t*hd+j] = col(k, t, j) - mu
				}
			}
			f.record(pre+".khat", f32(kh))
			g := make([]float64, hd*hd) // (hd, hd) = K̂ᵀV
			vbar, kbar := make([]float64, hd), make([]float64, hd)
			for t := 0; t < n; t++ {
				for i := 0; i < hd; i++ {
					kbar[i] += kh[t*hd+i]
					vbar[i] += col(v, t, i)
					for j := 0; j < hd; j++ {
						g[i*hd+j] += kh[t*hd+i] * col(v, t, j)
					}
				}
			}
			f.record(pre+".g", f32(g))
			den0 := 0.0
			for t := 0; t < n; t++ {
				var qk float64
				for i := 0; i < hd; i++ {
					qk += col(q, t, i) * kbar[i]
				}
				den := float64(n) + s*qk
				if t == 0 {
					den0 = den
				}
				for j := 0; j < hd; j++ {
					var qg float64
					for i := 0; i < hd; i++ {
						qg += col(q, t, i) * g[i*hd+j]
					}
					out[t*a+hh*hd+j] = float32((vbar[j] + s*qg) / den)
				}
			}
			for t := 0; t < n; t++ {
				var dot float64
				for i := 0; i < hd; i++ {
					dot += col(q, 0, i) * kh[t*hd+i]
				}
				score[t] += float32((1 + s*dot) / den0 / float64(heads))
			}
			continue
		}
		probs := make([]float64, n)
		for t := 0; t < n; t++ {
			mx := math.Inf(-1)
			for u := 0; u < n; u++ {
				var dot float64
				for i := 0; i < hd; i++ {
					dot += col(q, t, i) * col(k, u, i)
				}
				probs[u] = s * dot
				mx = math.Max(mx, probs[u])
			}
			var sum float64
			for u := range probs {
				probs[u] = math.Exp(probs[u] - mx)
				sum += probs[u]
			}
			for u := range probs {
				probs[u] /= sum
			}
			if t == 0 {
				for u := range probs {
					score[u] += float32(probs[u] / float64(heads))
				}
			}
			for j := 0; j < hd; j++ {
				var o float64
				for u := 0; u < n; u++ {
					o += probs[u] * col(v, u, j)
				}
				out[t*a+hh*hd+j] = float32(o)
			}
		}
	}
	f.record(pre+".attn", out)
	proj := f.linear(pre+".attn.proj", out, n, a, d)
	f.record(pre+".proj", proj)
	mid := slices.Clone(x)
	for i := range mid {
		mid[i] += proj[i]
	}
	f.record(pre+".mid", mid)
	if c.PrunesTokens(l) {
		fused, fn, kept := fuseFloat(mid, score, n, d, c.TokenKeep)
		if f.keptTap != nil {
			f.keptTap(l, kept)
		}
		if force := f.forcedKept(l); force != nil {
			fused, fn = fuseKept(mid, score, n, d, force)
		}
		mid, n = fused, fn
	}
	h = f.layerNorm(pre+".norm2", mid, n, d)
	f.record(pre+".norm2", h)
	hidden := c.HiddenAt(l)
	h1 := f.linear(pre+".mlp.fc1", h, n, d, hidden)
	f.record(pre+".fc1", h1)
	for i, e := range h1 {
		h1[i] = float32(float64(e) * 0.5 * (1 + math.Erf(float64(e)/math.Sqrt2)))
	}
	f.record(pre+".gelu", h1)
	h2 := f.linear(pre+".mlp.fc2", h1, n, hidden, d)
	f.record(pre+".fc2", h2)
	for i := range mid {
		mid[i] += h2[i]
	}
	return mid, n
}

// fuseFloat is tokenprune.KeepFuse on one image.
// It also returns the kept token indices.
func fuseFloat(x, score []float32, n, d int, keep float64) ([]float32, int, []int) {
	tp := autograd.NewTape(false)
	y, kept := tokenprune.KeepFuse(tp, autograd.FromData(x, 1, n, d), score, keep)
	return slices.Clone(y.Data), y.Shape[1], kept[0]
}

// forcedKept is forceKept's list for block l, or nil.
func (f *floatModel) forcedKept(l int) []int {
	if f.forceKept == nil {
		return nil
	}
	return f.forceKept(l)
}

// fuseKept is fuseFloat with the kept tokens given (ascending, in 1..n−1)
// instead of chosen: cls, the kept tokens, then the others fused with
// their scores as weights, summed in ascending order as KeepFuse does.
func fuseKept(x, score []float32, n, d int, kept []int) ([]float32, int) {
	k := len(kept)
	if k >= n-1 {
		return x, n
	}
	y := make([]float32, (k+2)*d)
	copy(y, x[:d])
	in := make([]bool, n)
	for i, j := range kept {
		copy(y[(i+1)*d:(i+2)*d], x[j*d:(j+1)*d])
		in[j] = true
	}
	fused := y[(k+1)*d:]
	for j := 1; j < n; j++ {
		if in[j] {
			continue
		}
		for c, v := range x[j*d : (j+1)*d] {
			fused[c] += score[j] * v
		}
	}
	return y, k + 2
}

// patchesOf is autograd.Im2Patches on one image (C, H, W): (P, C·p·p).
func patchesOf(img []float32, ch, size, p int) []float32 {
	tp := autograd.NewTape(false)
	return slices.Clone(autograd.Im2Patches(tp, autograd.FromData(img, 1, ch, size, size), p).Data)
}

func f32(xs []float64) []float32 {
	out := make([]float32, len(xs))
	for i, v := range xs {
		out[i] = float32(v)
	}
	return out
}
