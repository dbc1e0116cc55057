package intmath

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// LayerNorm fixed-point formats: the normalised value carries lnFrac
// fraction bits and γ, β carry lnParamFrac.
const (
	lnFrac      = 16
	lnParamFrac = 12
)

// LayerNormParams are one LayerNorm's integer constants for an int8 (or
// int16) input at scale sIn and output at scale sOut.
type LayerNormParams struct {
	Eps   int32   // ε·D²/sIn², added to the centred sum of squares
	Gamma []int32 // γ_i/sOut · 2^12
	Beta  []int32 // β_i/sOut · 2^12
}

// lnParamMax16 bounds γ and β in an int16 LayerNorm's table: the output
// scale is 256× smaller than int8's, so they are 256× larger.
const (
	lnParamMax   = 1 << 24
	lnParamMax16 = 1 << 30
)

// NewLayerNorm derives the constants of an int8 LayerNorm.
func NewLayerNorm(gamma, beta []float32, eps, sIn, sOut float64) (LayerNormParams, error) {
	return NewLayerNormBits(gamma, beta, eps, sIn, sOut, 8)
}

// NewLayerNormBits derives the constants for bits-bit activations (8 or 16).
func NewLayerNormBits(gamma, beta []float32, eps, sIn, sOut float64, bits int) (LayerNormParams, error) {
	limit := float64(lnParamMax)
	if bits == 16 {
		limit = lnParamMax16
	}
	d := float64(len(gamma))
	e := math.Round(eps * d * d / (sIn * sIn))
	if !(sIn > 0 && sOut > 0) || e > math.MaxInt32 {
		return LayerNormParams{}, fmt.Errorf("intmath: LayerNorm scales in %g out %g do not fit", sIn, sOut)
	}
	p := LayerNormParams{Eps: int32(e), Gamma: make([]int32, len(gamma)), Beta: make([]int32, len(beta))}
	for i := range gamma {
		g := math.Round(float64(gamma[i]) / sOut * (1 << lnParamFrac))
		b := math.Round(float64(beta[i]) / sOut * (1 << lnParamFrac))
		if math.Abs(g) > limit || math.Abs(b) > limit {
			return LayerNormParams{}, fmt.Errorf("intmath: LayerNorm parameter %d does not fit (γ %g, β %g at output scale %g)", i, gamma[i], beta[i], sOut)
		}
		p.Gamma[i], p.Beta[i] = int32(g), int32(b)
	}
	return p, nil
}

// LayerNormWords is the table size of a D-wide LayerNorm.
func LayerNormWords(d int) int { return 1 + 2*d }

// Words lays the constants out as [eps, γ_0..γ_{D−1}, β_0..β_{D−1}].
func (p LayerNormParams) Words() []int32 {
	return append(append([]int32{p.Eps}, p.Gamma...), p.Beta...)
}

// LayerNormFromWords reads a D-wide table of an int8 LayerNorm.
func LayerNormFromWords(w []int32, d int) (LayerNormParams, error) {
	return LayerNormFromWordsBits(w, d, 8)
}

// LayerNormFromWordsBits reads a D-wide table for bits-bit activations.
func LayerNormFromWordsBits(w []int32, d, bits int) (LayerNormParams, error) {
	if len(w) != LayerNormWords(d) || w[0] < 0 {
		return LayerNormParams{}, fmt.Errorf("intmath: bad LayerNorm table")
	}
	limit := int32(lnParamMax)
	if bits == 16 {
		limit = lnParamMax16
	}
	for _, v := range w[1:] {
		if v > limit || v < -limit {
			return LayerNormParams{}, fmt.Errorf("intmath: LayerNorm constant %d out of range", v)
		}
	}
	return LayerNormParams{Eps: w[0], Gamma: w[1 : 1+d], Beta: w[1+d:]}, nil
}

// Row normalises one row: with S = Σx and c_i = D·x_i − S (the centred
// value times D), σ' = ⌊√(Σc²/D + eps)⌋ is D·σ/sIn, r = ⌊2^32/σ'⌋ is one
// reciprocal per row, n_i = (c_i·r) >> 16 is (x_i−μ)/σ with 16 fraction
// bits, and y_i = Sat8((n_i·γ_i + β_i·2^16 + 2^27) >> 28).
func (p LayerNormParams) Row(dst, x []int8) { LayerNormRow(p, dst, x) }

// LayerNormRow is Row over either activation type. For int16 (whose
// output steps are 256× finer) the square root and the reciprocal keep
// more bits: with v = Σc²/D + eps shifted left by the largest even k ≤ 28
// that keeps it below 2^62, σ_k = ⌊√(v·2^k)⌋ is σ'·2^(k/2) with k/2 more
// bits, r = ⌊2^(48+k/2)/σ_k⌋ is 2^48/σ', n_i = (c_i·r) >> 32, and y_i
// saturates to int16. |c_i| ≤ 2√D·σ', so c_i·r stays below 2^49·√D.
func LayerNormRow[T Act](p LayerNormParams, dst, x []T) {
	d := int64(len(x))
	var s int64
	for _, v := range x {
		s += int64(v)
	}
	var ss int64
	for _, v := range x {
		c := d*int64(v) - s
		ss += c * c
	}
	v := uint64(ss/d + int64(p.Eps))
	one, sh := int64(1)<<32, uint(32-lnFrac)
	if Wide[T]() {
		k := 0
		for k < 28 && v < 1<<60 {
			v <<= 2
			k += 2
		}
		one, sh = 1<<(48+k/2), 48-lnFrac
	}
	sigma := max(int64(ISqrt(v)), 1)
	r := one / sigma
	const round = 1 << (lnFrac + lnParamFrac - 1)
	for i, v := range x {
		c := d*int64(v) - s
		n := (c * r) >> sh
		dst[i] = Sat[T]((n*int64(p.Gamma[i]) + int64(p.Beta[i])<<lnFrac + round) >> (lnFrac + lnParamFrac))
	}
}

// GELU: x·½(1 + erf(x/√2)) with I-BERT's second-order erf,
// erf(z) ≈ sgn(z)·(1 − a·(b − min(|z|, b))²), a = 0.2888, b = 1.769. The erf
// value carries geluFrac fraction bits.
const (
	geluA    = 0.2888
	geluB    = 1.769
	geluFrac = 15
)

// GELUParams are one GELU's constants for an int32 input at scale sIn and
// an int8 output at scale sOut, in one of two forms: I-BERT's polynomial
// (Clip, Coef, Shift) or, when Table is set, the tabulated normal CDF
// (Pos).
type GELUParams struct {
	Clip  int32 // ⌊b·√2/sIn⌋: |x| where erf saturates, in input units
	Coef  int32 // a·sIn²/2 · 2^(15+Shift)
	Shift int32
	Out   Multiplier // sIn/sOut
	Table bool
	Pos   Multiplier // sIn·64·2^8: |x| to its position in the table
}

// The table GELU is x·Φ(x), Φ the normal CDF, from geluTable: Φ at 64
// points per unit on [0, 4] with 16 fraction bits, interpolated linearly
// (within 1e-5 of Φ). I-BERT's polynomial is off by up to about 1e-2,
// which cost a CIFAR softmax model more agreement than rounding its GELU
// outputs to int8 (docs/quantization.md).
const (
	geluTabStep = 64
	geluTabLen  = 4*geluTabStep + 1
	geluTabFrac = 16
	geluPosFrac = 8
)

// geluTable is T[i] = round(2^16·Φ(i/64)), i = 0..256.
var geluTable = func() [geluTabLen]int64 {
	var t [geluTabLen]int64
	for i := range t {
		z := float64(i) / geluTabStep
		t[i] = int64(math.Round(0.5 * (1 + math.Erf(z/math.Sqrt2)) * (1 << geluTabFrac)))
	}
	return t
}()

// NewGELUTable derives the table form's constants.
func NewGELUTable(sIn, sOut float64) (GELUParams, error) {
	if !(sIn > 0) {
		return GELUParams{}, fmt.Errorf("intmath: GELU input scale %g out of range", sIn)
	}
	pos, err := NewMultiplier(sIn * geluTabStep * (1 << geluPosFrac))
	if err != nil {
		return GELUParams{}, err
	}
	out, err := NewMultiplier(sIn / sOut)
	if err != nil {
		return GELUParams{}, err
	}
	return GELUParams{Table: true, Pos: pos, Out: out}, nil
}

// NewGELU derives the constants.
func NewGELU(sIn, sOut float64) (GELUParams, error) {
	clip := math.Floor(geluB * math.Sqrt2 / sIn)
	if !(sIn > 0) || clip > 1<<30 || clip < 1 {
		return GELUParams{}, fmt.Errorf("intmath: GELU input scale %g out of range", sIn)
	}
	// The largest t² is clip²; keep t²·coef below 2^62.
	c := geluA * sIn * sIn / 2 * (1 << geluFrac)
	shift := 0
	for shift < 40 && c*math.Ldexp(1, shift+1)*clip*clip < 1<<61 && c*math.Ldexp(1, shift+1) < 1<<30 {
		shift++
	}
	out, err := NewMultiplier(sIn / sOut)
	if err != nil {
		return GELUParams{}, err
	}
	return GELUParams{Clip: int32(clip), Coef: int32(math.Round(math.Ldexp(c, shift))), Shift: int32(shift), Out: out}, nil
}

// GELUWords is the table size of a GELU.
const GELUWords = 5

// Words lays the constants out as [clip, coef, shift, M, shift_out], or
// for the table form [M_pos, shift_pos, −1, M, shift_out]: the −1 where a
// shift cannot be negative marks the form, so that readers of the
// polynomial form alone refuse the table form.
func (p GELUParams) Words() []int32 {
	w := p.Out.Words()
	if p.Table {
		pw := p.Pos.Words()
		return []int32{pw[0], pw[1], -1, w[0], w[1]}
	}
	return []int32{p.Clip, p.Coef, p.Shift, w[0], w[1]}
}

// GELUFromWords reads a table.
func GELUFromWords(w []int32) (GELUParams, error) {
	if len(w) == GELUWords && w[2] == -1 {
		pos, err := MultiplierFromWords(w[0], w[1])
		if err != nil {
			return GELUParams{}, err
		}
		out, err := MultiplierFromWords(w[3], w[4])
		return GELUParams{Table: true, Pos: pos, Out: out}, err
	}
	if len(w) != GELUWords || w[0] < 1 || w[1] < 0 || w[2] < 0 || w[2] > 40 {
		return GELUParams{}, fmt.Errorf("intmath: bad GELU table")
	}
	out, err := MultiplierFromWords(w[3], w[4])
	return GELUParams{Clip: w[0], Coef: w[1], Shift: w[2], Out: out}, err
}

// Apply maps one int32 input to int8: t = clip − min(|x|, clip),
// e = 2^15 − (t²·coef >> shift) is erf(|x|/√2) with 15 fraction bits,
// v = (x·(2^15 ± e) + 2^15) >> 16 is GELU(x) in input units, y = Sat8(Out(v)).
func (p GELUParams) Apply(x int32) int8 { return Sat8(p.value(x)) }

// GELUApply is Apply with an output of either activation type.
func GELUApply[T Act](p GELUParams, x int32) T { return Sat[T](p.value(x)) }

// value is the output before saturation.
func (p GELUParams) value(x int32) int64 {
	u := int64(x)
	neg := u < 0
	if neg {
		u = -u
	}
	if p.Table {
		return p.applyTable(x, min(u, math.MaxInt32), neg)
	}
	t := int64(p.Clip) - min(u, int64(p.Clip))
	e := int64(1)<<geluFrac - (t*t*int64(p.Coef))>>p.Shift
	if neg {
		e = -e
	}
	v := (int64(x)*(1<<geluFrac+e) + 1<<geluFrac) >> (geluFrac + 1)
	return p.Out.Apply(v)
}

// applyTable is the table form: pos = Pos(|x|) (8 fraction bits),
// Φ = 2^16 beyond the table, else T[i] + ((T[i+1] − T[i])·f + 2^7) >> 8
// with i = pos >> 8, f = pos & 255; e = Φ, or 2^16 − Φ for x < 0;
// v = (x·e + 2^15) >> 16 is GELU(x) in input units, y = Sat8(Out(v)).
func (p GELUParams) applyTable(x int32, u int64, neg bool) int64 {
	pos := p.Pos.Apply(u)
	phi := int64(1) << geluTabFrac
	if pos < (geluTabLen-1)<<geluPosFrac {
		i, f := pos>>geluPosFrac, pos&(1<<geluPosFrac-1)
		phi = geluTable[i] + ((geluTable[i+1]-geluTable[i])*f+1<<(geluPosFrac-1))>>geluPosFrac
	}
	if neg {
		phi = 1<<geluTabFrac - phi
	}
	v := (int64(x)*phi + 1<<(geluTabFrac-1)) >> geluTabFrac
	return p.Out.Apply(v)
}

// Softmax and cls scores work on a fixed-point exponent argument with
// expFrac fraction bits, clamped at −expFloor; exp values carry 16 fraction
// bits, and so do cls scores (ScoreOne is 1.0).
const (
	expFrac  = 12
	expFloor = 24 << expFrac
	ScoreOne = 1 << 16
	// ProbOne is the int8 code of probability 1 in softmax outputs.
	ProbOne = 127
	// ProbOne16 is the int16 code of probability 1. With int8 codes an
	// attention row over 65 tokens puts most of its probabilities on the
	// codes 0..4; that rounding was the largest single error of softmax
	// models (docs/quantization.md).
	ProbOne16 = 32767
)

// I-BERT's exp on (−ln2, 0]: 0.3585·(r + 1.353)² + 0.344, in fixed point.
var (
	expLn2 = int64(math.Round(math.Ln2 * (1 << expFrac)))
	expB   = int64(math.Round(1.353 * (1 << expFrac)))
	expA   = int64(math.Round(0.3585 * (1 << 16)))
	expC   = int64(math.Round(0.344 * (1 << 16)))
)

// Exp is e^(z/2^12) for z ≤ 0 with 16 fraction bits: z = r − k·ln2 with
// r in (−ln2, 0], the polynomial on r, then a right shift by k.
func Exp(z int64) int64 {
	z = max(z, -expFloor)
	k := -z / expLn2
	r := z + k*expLn2 // in (−ln2, 0]
	rr := r + expB
	e := (expA*rr*rr)>>(2*expFrac) + expC
	return e >> k
}

// SoftmaxParams hold the multiplier that turns an int32 score (scale sIn,
// the attention scale 1/√d included) into the exponent's fixed point.
type SoftmaxParams struct{ In Multiplier }

// NewSoftmax derives the constant.
func NewSoftmax(sIn float64) (SoftmaxParams, error) {
	m, err := NewMultiplier(sIn * (1 << expFrac))
	return SoftmaxParams{In: m}, err
}

// SoftmaxWords is the table size of a softmax (and of a cls score).
const SoftmaxWords = 2

// Words is [M, shift].
func (p SoftmaxParams) Words() []int32 { w := p.In.Words(); return w[:] }

// SoftmaxFromWords reads a table.
func SoftmaxFromWords(w []int32) (SoftmaxParams, error) {
	if len(w) != SoftmaxWords {
		return SoftmaxParams{}, fmt.Errorf("intmath: bad softmax table")
	}
	m, err := MultiplierFromWords(w[0], w[1])
	return SoftmaxParams{In: m}, err
}

// Exps fills e with each score's exp relative to the row maximum (16
// fraction bits) and returns their sum.
func (p SoftmaxParams) Exps(e []int64, scores []int32) int64 {
	mx := slices.Max(scores)
	var sum int64
	for j, s := range scores {
		e[j] = Exp(p.In.Apply(Clamp32(int64(s) - int64(mx))))
		sum += e[j]
	}
	return sum
}

// Row writes one softmax row as int8 probabilities (127 = 1): one
// reciprocal per row, r = ⌊127·2^32/Σe⌋, then p_j = (e_j·r + 2^31) >> 32.
func (p SoftmaxParams) Row(dst []int8, scores []int32, scratch []int64) {
	e := scratch[:len(scores)]
	sum := p.Exps(e, scores)
	r := (int64(ProbOne) << 32) / sum
	for j := range e {
		dst[j] = Sat8((e[j]*r + 1<<31) >> 32)
	}
}

// Row16 is Row with int16 probabilities (32767 = 1):
// r = ⌊32767·2^32/Σe⌋, p_j = Sat16((e_j·r + 2^31) >> 32).
func (p SoftmaxParams) Row16(dst []int16, scores []int32, scratch []int64) {
	e := scratch[:len(scores)]
	sum := p.Exps(e, scores)
	r := (int64(ProbOne16) << 32) / sum
	for j := range e {
		dst[j] = Sat16((e[j]*r + 1<<31) >> 32)
	}
}

// ClsRow writes the cls row of softmax attention as scores with 16 fraction
// bits: s_j = ⌊e_j·2^16/Σe⌋ computed as (e_j·⌊2^40/Σe⌋) >> 24.
func (p SoftmaxParams) ClsRow(dst []int64, scores []int32, scratch []int64) {
	e := scratch[:len(scores)]
	sum := p.Exps(e, scores)
	r := (int64(1) << 40) / sum
	for j := range e {
		dst[j] = (e[j] * r) >> 24
	}
}

// TaylorParams are the constants of the Taylor normaliser for one layer:
// out_i = (v̄ + s·q_i·G) / (N + s·q_i·k̄). The numerator is formed in units
// of the output scale with 8 fraction bits, the denominator with 16.
type TaylorParams struct {
	VBar Multiplier // sV/sOut · 2^8
	QG   Multiplier // s·sQ·sG/sOut · 2^8
	QK   Multiplier // s·sQ·sK̂ · 2^16 (also the cls-score multiplier)
}

const (
	taylorNumFrac = 8
	taylorDenFrac = 16
)

// NewTaylor derives the constants; attn is 1/√d.
func NewTaylor(attn, sQ, sK, sV, sG, sOut float64) (TaylorParams, error) {
	var p TaylorParams
	var err [3]error
	p.VBar, err[0] = NewMultiplier(sV / sOut * (1 << taylorNumFrac))
	p.QG, err[1] = NewMultiplier(attn * sQ * sG / sOut * (1 << taylorNumFrac))
	p.QK, err[2] = NewMultiplier(attn * sQ * sK * (1 << taylorDenFrac))
	for _, e := range err {
		if e != nil {
			return TaylorParams{}, e
		}
	}
	return p, nil
}

// TaylorWords is the table size of a Taylor normaliser.
const TaylorWords = 6

// Words is [VBar, QG, QK] as (M, shift) pairs.
func (p TaylorParams) Words() []int32 {
	a, b, c := p.VBar.Words(), p.QG.Words(), p.QK.Words()
	return []int32{a[0], a[1], b[0], b[1], c[0], c[1]}
}

// TaylorFromWords reads a table.
func TaylorFromWords(w []int32) (TaylorParams, error) {
	if len(w) != TaylorWords {
		return TaylorParams{}, fmt.Errorf("intmath: bad Taylor table")
	}
	var p TaylorParams
	var err [3]error
	p.VBar, err[0] = MultiplierFromWords(w[0], w[1])
	p.QG, err[1] = MultiplierFromWords(w[2], w[3])
	p.QK, err[2] = MultiplierFromWords(w[4], w[5])
	for _, e := range err {
		if e != nil {
			return TaylorParams{}, e
		}
	}
	return p, nil
}

// Den is N + s·q·k̄ with 16 fraction bits, clamped to [2^12, 2^40] so that
// Row's reciprocal stays in range.
func (p TaylorParams) Den(n int, q []int8, kbar []int32) int64 { return TaylorDen(p, n, q, kbar) }

// TaylorDen is Den over either activation type; for int16 the dot product
// is first shifted right by TaylorDotShift, rounded (QK carries the 2^8).
func TaylorDen[T Act](p TaylorParams, n int, q []T, kbar []int32) int64 {
	var dot int64
	for c, v := range q {
		dot += int64(v) * int64(kbar[c])
	}
	dot = dotShift[T](dot)
	return min(max(int64(n)<<taylorDenFrac+p.QK.Apply(Clamp32(dot)), 1<<12), 1<<40)
}

// Row divides one token's numerator by its denominator: num_c =
// VBar(v̄_c) + QG(qG_c) clamped to ±2^30, one reciprocal r = ⌊2^36/den⌋,
// out_c = Sat8((num_c·2^8·r + 2^35) >> 36). n is the token count.
func (p TaylorParams) Row(dst []int8, qg []int32, q []int8, vbar, kbar []int32, n int) {
	TaylorRow(p, dst, qg, q, vbar, kbar, n)
}

// TaylorRow is Row over either activation type. For int16 the reciprocal
// keeps 8 more bits, r = ⌊2^44/den⌋ and out_c = Sat16((num_c·2^8·r + 2^43)
// >> 44), with num_c clamped to ±min(2^30, 2^8·den) (beyond 2^7·den the
// output saturates anyway) so that the product stays below 2^61.
func TaylorRow[T Act](p TaylorParams, dst []T, qg []int32, q []T, vbar, kbar []int32, n int) {
	den := TaylorDen(p, n, q, kbar)
	if Wide[T]() {
		r := (int64(1) << 44) / den
		lim := min(int64(1)<<30, den<<8)
		for c := range dst {
			num := p.VBar.Apply(int64(vbar[c])) + p.QG.Apply(int64(qg[c]))
			num = min(max(num, -lim), lim)
			dst[c] = Sat[T]((num<<taylorNumFrac*r + 1<<43) >> 44)
		}
		return
	}
	r := (int64(1) << 36) / den
	for c := range dst {
		num := p.VBar.Apply(int64(vbar[c])) + p.QG.Apply(int64(qg[c]))
		num = min(max(num, -(1<<30)), 1<<30)
		dst[c] = Sat[T]((num<<taylorNumFrac*r + 1<<35) >> 36)
	}
}

// dotShift is TaylorDotShift's rounding shift for int16 operands.
func dotShift[T Act](dot int64) int64 {
	if Wide[T]() {
		return (dot + 1<<(TaylorDotShift-1)) >> TaylorDotShift
	}
	return dot
}

// ClsScore is token j's Taylor attention from the cls token with 16
// fraction bits: (2^16 + QK(q_0·k̂_j))·2^16 / den_0, rounded.
func (p TaylorParams) ClsScore(q0, kj []int8, den0 int64) int64 {
	return TaylorClsScore(p, q0, kj, den0)
}

// TaylorClsScore is ClsScore over either activation type.
func TaylorClsScore[T Act](p TaylorParams, q0, kj []T, den0 int64) int64 {
	var dot int64
	for c, v := range q0 {
		dot += int64(v) * int64(kj[c])
	}
	dot = dotShift[T](dot)
	return RoundDiv((ScoreOne+p.QK.Apply(Clamp32(dot)))<<taylorDenFrac, den0)
}

// Clamp32 limits x to the int32 range, the domain of Multiplier.Apply.
func Clamp32(x int64) int64 { return min(max(x, math.MinInt32), math.MaxInt32) }

// Requant writes int32 accumulators rescaled per column, to int8 (wide
// false) or saturated int32 (wide true).
func Requant(m Multiplier, acc int32, wide bool) int32 {
	v := m.Apply(int64(acc))
	if wide {
		return Sat32(v)
	}
	return int32(Sat8(v))
}

// CenterColumn subtracts the rounded column mean from col (one column of
// rows values) and rescales: y = Sat8(m(x − RoundDiv(Σx, rows))).
func CenterColumn[T Act](dst, col []T, m Multiplier) {
	var s int64
	for _, v := range col {
		s += int64(v)
	}
	mu := RoundDiv(s, int64(len(col)))
	for i, v := range col {
		dst[i] = Sat[T](m.Apply(int64(v) - mu))
	}
}

// KeepCount is ⌈(n−1)·num/den⌉ clamped to [1, n−1]: the patch tokens kept
// out of n tokens (cls included) at keep rate num/den.
func KeepCount(n, num, den int) int {
	if n < 2 {
		return 0
	}
	k := ((n-1)*num + den - 1) / den
	return min(max(k, 1), n-1)
}

// TopK ranks the patch tokens 1..n−1 by score, descending, equal scores
// preferring the lower index, and returns the k kept indices then the
// dropped ones, each ascending.
func TopK(scores []int64, k int) []int {
	order := make([]int, len(scores)-1)
	for i := range order {
		order[i] = i + 1
	}
	slices.SortFunc(order, func(i, j int) int {
		if c := cmp.Compare(scores[j], scores[i]); c != 0 {
			return c
		}
		return i - j
	})
	slices.Sort(order[:k])
	slices.Sort(order[k:])
	return order
}

// Fuse is the fused token's column: Sat8(RoundDiv(Σ_j score_j·x_j, divisor))
// over the dropped tokens, divisor = heads·2^16 (the mean over heads).
func Fuse[T Act](xs []T, scores []int64, divisor int64) T {
	var s int64
	for j, v := range xs {
		s += scores[j] * int64(v)
	}
	return Sat[T](RoundDiv(s, divisor))
}
