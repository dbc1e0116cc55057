package export

import (
	"errors"
	"fmt"
	"math"

	"vitc/export/intmath"
	"vitc/tokenprune"
	"vitc/vit"
)

// QLinear is a Linear layer quantized per output channel: W (Out, In) int8
// with symmetric scales, int32 bias at the input scale times the channel's
// weight scale, and per-channel multipliers to the output scale(s).
type QLinear struct {
	Name    string // timm name, e.g. "blocks.0.attn.qkv"
	Out, In int
	W       []int8  // (Out, In)
	Bias    []int32 // (Out)
	WScale  []float64
	Req     []intmath.Multiplier // (Out): sIn·sW[o] / sOut(o)
}

// QBlock is one transformer block's integer constants.
type QBlock struct {
	Heads, Hidden int
	Norm1, Norm2  intmath.LayerNormParams
	QKV, Proj     QLinear
	FC1, FC2      QLinear
	// Taylor attention: keys centred and rescaled (sK → sK̂), G requantised
	// (sK̂·sV → sG), the normaliser; its QK multiplier also gives cls scores.
	Center intmath.Multiplier
	GReq   intmath.Multiplier
	Taylor intmath.TaylorParams
	// Softmax attention: scores to the exponent's fixed point (also the cls
	// scores), P·V (int16 P: scale sV/32767) to the attention output scale.
	Softmax intmath.SoftmaxParams
	PVReq   intmath.Multiplier
	AddAttn intmath.Pair // x + proj
	GELU    intmath.GELUParams
	AddMLP  intmath.Pair // mid + fc2
	// Token pruning after attention: keep KeepNum/KeepDen of the patches.
	Prune            bool
	KeepNum, KeepDen int
}

// QModel is the whole integer model.
type QModel struct {
	Config  vit.Config
	Scales  map[string]float64 // activation scale by tensor name (docs/bundle.md)
	Patch   QLinear            // patch_embed.proj as (D, C·p·p)
	Pos     []int16            // (P, D) pos_embed rows 1.. at the "pos" scale
	Row0    []int16            // (D) cls_token + pos_embed[0] at the "x0" scale
	AddEmb  intmath.Pair       // embed + pos
	Blocks  []QBlock
	Norm    intmath.LayerNormParams
	Head    QLinear // requantised to int32 logits at the "logits" scale
	Classes int
	Calib   CalibOptions // how the activation scales were chosen
	// ActBits is the activation width, 8 or 16 (W8A16): every activation
	// tensor, the input included, is int8 or int16; weights stay int8 per
	// channel and accumulators int32.
	ActBits int
}

// actBytes is the size of one activation element.
func (qm *QModel) actBytes() int { return qm.bits() / 8 }

func (qm *QModel) bits() int {
	if qm.ActBits == 16 {
		return 16
	}
	return 8
}

func (qm *QModel) actDType() string {
	if qm.bits() == 16 {
		return "int16"
	}
	return "int8"
}

// fc1Bits is the precision of the int32 GELU input: its calibrated range
// maps to ±2^15; with 16-bit activations to ±2^23, so that the GELU output
// keeps its 16 bits.
const (
	fc1Bits   = 15
	fc1Bits16 = 23
)

// logitBits maps the calibrated logit range to ±2^20 in the int32 logits.
const logitBits = 20

// Quantize calibrates m on calib (normalised images, n·C·H·W values) with
// the default calibration method and derives every integer constant.
func Quantize(m *vit.Model, calib []float32, n int) (*QModel, error) {
	return QuantizeWith(m, calib, n, CalibOptions{})
}

// ErrDistToken: the int8 bundle, its instruction set and the simulator are
// laid out for one class token; a distilled DeiT's second one has no place.
var ErrDistToken = errors.New("a DeiT distillation token: the int8 bundle, its ISA and the simulator have one class token; export the float model with --format onnx")

// QuantizeWith is Quantize with a chosen calibration method.
func QuantizeWith(m *vit.Model, calib []float32, n int, o CalibOptions) (*QModel, error) {
	cfg := m.Config
	if cfg.DistToken {
		return nil, ErrDistToken
	}
	o, err := o.resolved()
	if err != nil {
		return nil, err
	}
	if n < 1 {
		return nil, fmt.Errorf("calibration needs at least one image")
	}
	f := newFloatModel(m)
	if o.Method != CalibAbsmax {
		f.hists = map[string]*magHist{}
	}
	chw := cfg.Channels * cfg.Image * cfg.Image
	for i := 0; i < n; i++ {
		f.forward(calib[i*chw : (i+1)*chw])
	}
	q := &quantizer{f: f, scales: map[string]float64{}, calib: o, top: intmath.Top(o.ActBits)}
	qm, err := q.model(m)
	if qm != nil {
		qm.Calib = o
		qm.ActBits = o.ActBits
	}
	return qm, err
}

type quantizer struct {
	f      *floatModel
	scales map[string]float64
	calib  CalibOptions
	top    float64 // the activations' largest code: 127 or 32767
	err    error
}

// scale is the scale of a calibrated activation tensor: clip/127, or
// clip/32767 with 16-bit activations.
func (q *quantizer) scale(name string) float64 { return q.scaleTop(name, q.top, true) }

// scaleBits is the scale of a wide (int32) tensor whose calibrated range
// maps to ±top.
func (q *quantizer) scaleBits(name string, top float64) float64 { return q.scaleTop(name, top, false) }

func (q *quantizer) scaleTop(name string, top float64, clips bool) float64 {
	if s, ok := q.scales[name]; ok {
		return s
	}
	m, ok := q.f.absmax[name]
	if !ok {
		panic("export: tensor " + name + " was not calibrated")
	}
	if !(m > 0) || math.IsInf(m, 0) {
		m = 1 // an all-zero tensor: any scale represents it
	}
	// The activation tensors (int8 or int16) clip where the method says;
	// the wide ones (fc1 at 2^15 or 2^23, logits at 2^20) have resolution to
	// spare and keep their range.
	if h := q.f.hists[name]; h != nil && clips {
		var clip float64
		switch q.calib.Method {
		case CalibPercentile:
			clip = h.percentile(q.calib.Percentile)
		case CalibMSE:
			clip = h.mseClip(m, top)
		}
		if clip > 0 && clip < m {
			m = clip
		}
	}
	s := m / top
	q.scales[name] = s
	return s
}

func (q *quantizer) fail(err error) {
	if err != nil && q.err == nil {
		q.err = err
	}
}

func (q *quantizer) mult(r float64) intmath.Multiplier {
	m, err := intmath.NewMultiplier(r)
	q.fail(err)
	return m
}

func (q *quantizer) pair(ra, rb float64) intmath.Pair {
	p, err := intmath.NewPair(ra, rb)
	q.fail(err)
	return p
}

func (q *quantizer) layerNorm(name string, sIn, sOut float64) intmath.LayerNormParams {
	p, err := intmath.NewLayerNormBits(q.f.w(name+".weight"), q.f.w(name+".bias"), q.f.cfg.Eps(), sIn, sOut, q.calib.ActBits)
	q.fail(err)
	return p
}

// linear quantizes a layer whose input has scale sIn; outScale gives the
// output scale of each channel.
func (q *quantizer) linear(name string, out, in int, sIn float64, outScale func(o int) float64) QLinear {
	w, b := q.f.w(name+".weight"), q.f.w(name+".bias")
	l := QLinear{Name: name, Out: out, In: in, W: make([]int8, out*in), Bias: make([]int32, out),
		WScale: make([]float64, out), Req: make([]intmath.Multiplier, out)}
	for o := 0; o < out; o++ {
		row := w[o*in : (o+1)*in]
		var mx float64
		for _, v := range row {
			mx = math.Max(mx, math.Abs(float64(v)))
		}
		s := mx / 127
		if s == 0 {
			s = 1 // a pruned channel: all zero whatever the scale
		}
		l.WScale[o] = s
		for i, v := range row {
			l.W[o*in+i] = int8(math.Round(float64(v) / s))
		}
		acc := sIn * s
		bq := math.Round(float64(b[o]) / acc)
		if math.Abs(bq) > 1<<30 {
			q.fail(fmt.Errorf("%s: bias %d is over 2^30 at scale %g", name, o, acc))
		}
		l.Bias[o] = int32(bq)
		l.Req[o] = q.mult(acc / outScale(o))
	}
	return l
}

func (q *quantizer) model(m *vit.Model) (*QModel, error) {
	c := m.Config
	d := c.Dim
	qm := &QModel{Config: c, Scales: q.scales, Classes: c.Classes}
	sIn, sEmb, sPos, sX := q.scale("input"), q.scale("embed"), q.scale("pos"), q.scale("x0")
	cpp := c.Channels * c.Patch * c.Patch
	// The conv weight [D, C, p, p] is the (D, C·p·p) matrix of patch rows.
	qm.Patch = q.linear("patch_embed.proj", d, cpp, sIn, func(int) float64 { return sEmb })
	pos, cls := q.f.w("pos_embed"), q.f.w("cls_token")
	qm.Pos = quantizeVec(pos[d:], sPos, q.top)
	row0 := make([]float32, d)
	for i := range row0 {
		row0[i] = cls[i] + pos[i]
	}
	qm.Row0 = quantizeVec(row0, sX, q.top)
	qm.AddEmb = q.pair(sEmb/sX, sPos/sX)
	for l := 0; l < c.Depth; l++ {
		qm.Blocks = append(qm.Blocks, q.block(c, l, sX))
		sX = q.scale(blockOut(l))
	}
	sNorm := q.scale("norm")
	qm.Norm = q.layerNorm("norm", sX, sNorm)
	sLogit := q.scaleBits("logits", 1<<logitBits)
	qm.Head = q.linear("head", c.Classes, d, sNorm, func(int) float64 { return sLogit })
	if q.err != nil {
		return nil, q.err
	}
	return qm, nil
}

func (q *quantizer) block(c vit.Config, l int, sX float64) QBlock {
	pre := blockName(l)
	d, heads, hd := c.Dim, c.HeadsAt(l), c.HeadDim()
	a := heads * hd
	b := QBlock{Heads: heads, Hidden: c.HiddenAt(l)}
	sN1 := q.scale(pre + ".norm1")
	b.Norm1 = q.layerNorm(pre+".norm1", sX, sN1)
	sQ, sK, sV := q.scale(pre+".q"), q.scale(pre+".k"), q.scale(pre+".v")
	b.QKV = q.linear(pre+".attn.qkv", 3*a, d, sN1, func(o int) float64 { return [3]float64{sQ, sK, sV}[o/a] })
	sAttn := q.scale(pre + ".attn")
	s := 1 / math.Sqrt(float64(hd))
	if c.Attention == "taylor" {
		sKh, sG := q.scale(pre+".khat"), q.scale(pre+".g")
		b.Center = q.mult(sK / sKh)
		b.GReq = q.mult(sKh * sV * q.qkScale() / sG)
		// With 16-bit activations q·G comes out of its matmul shifted right
		// by wideMatmulShift and the q·k̄, q·k̂ dot products by
		// TaylorDotShift: the multipliers take the factors back.
		sKd, sGd := sKh, sG
		if q.calib.ActBits == 16 {
			sKd *= 1 << intmath.TaylorDotShift
			sGd *= 1 << wideMatmulShift
		}
		t, err := intmath.NewTaylor(s, sQ, sKd, sV, sGd, sAttn)
		q.fail(err)
		b.Taylor = t
	} else {
		sm, err := intmath.NewSoftmax(s * sQ * sK * q.qkScale())
		q.fail(err)
		b.Softmax = sm
		b.PVReq = q.mult(sV / intmath.ProbOne16 / sAttn)
	}
	sProj, sMid := q.scale(pre+".proj"), q.scale(pre+".mid")
	b.Proj = q.linear(pre+".attn.proj", d, a, sAttn, func(int) float64 { return sProj })
	b.AddAttn = q.pair(sX/sMid, sProj/sMid)
	if c.PrunesTokens(l) {
		// The keep rate as the exact fraction k/(n−1) of this block's static
		// token count, so that top-k's integer ⌈(n−1)·num/den⌉ is
		// tokenprune.KeepCount's k whatever the rate's decimals.
		n, _ := c.TokensAt(l)
		b.Prune = true
		b.KeepNum, b.KeepDen = tokenprune.KeepCount(n, c.TokenKeep), n-1
		if b.KeepDen > 1<<16-1 {
			q.fail(fmt.Errorf("%d tokens do not fit top-k's fields", n))
		}
	}
	sN2 := q.scale(pre + ".norm2")
	b.Norm2 = q.layerNorm(pre+".norm2", sMid, sN2)
	sFC1 := q.scaleBits(pre+".fc1", float64(int(1)<<q.fc1Bits()))
	b.FC1 = q.linear(pre+".mlp.fc1", b.Hidden, d, sN2, func(int) float64 { return sFC1 })
	sGELU := q.scale(pre + ".gelu")
	g, err := intmath.NewGELUTable(sFC1, sGELU)
	q.fail(err)
	b.GELU = g
	sFC2, sOut := q.scale(pre+".fc2"), q.scale(blockOut(l))
	b.FC2 = q.linear(pre+".mlp.fc2", d, b.Hidden, sGELU, func(int) float64 { return sFC2 })
	b.AddMLP = q.pair(sMid/sOut, sFC2/sOut)
	return b
}

// wideMatmulShift is the right shift of the int16 × int16 matmuls (q·kᵀ,
// k̂ᵀ·V, q·G): their products reach 2^30, so the sums are shifted back into
// int32; the consumers' multipliers carry the 2^8.
const wideMatmulShift = 8

// qkScale is the factor an activation × activation matmul's shift puts on
// its int32 result's scale: 2^8 with 16-bit activations, else 1.
func (q *quantizer) qkScale() float64 {
	if q.calib.ActBits == 16 {
		return 1 << wideMatmulShift
	}
	return 1
}

func (q *quantizer) fc1Bits() int {
	if q.calib.ActBits == 16 {
		return fc1Bits16
	}
	return fc1Bits
}

// quantizeVec rounds xs at scale s into ±top (127 or 32767).
func quantizeVec(xs []float32, s, top float64) []int16 {
	out := make([]int16, len(xs))
	for i, v := range xs {
		out[i] = int16(min(max(math.Round(float64(v)/s), -top-1), top))
	}
	return out
}

// QuantizeInput maps one normalised image to the patch matrix (P, C·p·p)
// the accelerator reads, int8 or int16 values: the host's only arithmetic.
func (qm *QModel) QuantizeInput(img []float32) []int16 {
	c := qm.Config
	return quantizeVec(patchesOf(img, c.Channels, c.Image, c.Patch), qm.Scales["input"], intmath.Top(qm.bits()))
}
