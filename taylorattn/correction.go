package taylorattn

import (
	"fmt"
	"math"
	"math/bits"

	"vitc/autograd"
)

// The formulations of the sparse training branch (SparseOptions.Formulation).
const (
	// FormulationVitc corrects the Taylor attention towards softmax where a
	// predicted mask says softmax is large: S = M ⊙ (P − A), added as α·S·V
	// (DESIGN.md). With every entry kept and α = 1 the layer is softmax
	// attention.
	FormulationVitc = "vitc"
	// FormulationViTALiTy is the sparse component of ViTALiTy's public
	// training code: S = M ⊙ softmax(s·Q̃K̃ᵀ), the predicted attention itself
	// where it exceeds θ, with Q̃, K̃ fake-quantised to 4 bits (asymmetric, one
	// range over the whole batch) and straight-through, added as α·s·S·V.
	// docs/taylor.md compares the two.
	FormulationViTALiTy = "vitality"
)

// Formulations lists the accepted names; "" reads as FormulationVitc.
var Formulations = []string{FormulationVitc, FormulationViTALiTy}

func checkFormulation(f string) error {
	switch f {
	case "", FormulationVitc, FormulationViTALiTy:
		return nil
	}
	return fmt.Errorf("unknown sparse-branch formulation %q (want %s or %s)", f, FormulationVitc, FormulationViTALiTy)
}

// Correction is the sparse training branch for one layer. Per head, with
// s = 1/√d, a mask M = [softmax(s·Q̃K̃ᵀ) > θ] predicted from 4-bit
// fake-quantised Q̃, K̃ (Sanger-style) and the formulation's S, it returns
//
//	extra   = α·γ·S·V      (B, N, D), added to A·V by the caller
//	absMean = mean |S|     scalar, the regulariser before λ
//
// and the mask density. FormulationVitc ("" too): S = M ⊙ (P − A) with
// P = softmax(s·QKᵀ) and A the Taylor attention matrix, γ = 1; the mask
// passes no gradient, P and A carry it to Q, K and V.
// FormulationViTALiTy: S = M ⊙ softmax(s·Q̃K̃ᵀ), γ = s; Q̃ and K̃ pass their
// gradient straight through to Q and K.
//
// The mask prediction and the softmax P are N×N, so the branch only runs in
// training; inference and export use the low-rank part alone. Where a head's
// mask keeps few entries, S·V and its gradients are computed on the kept
// entries only (sparse rows); the softmax's own backward is dense.
func Correction(tp *autograd.Tape, qkv *autograd.Tensor, heads int, formulation string, alpha, theta float32) (extra, absMean *autograd.Tensor, density float64) {
	return correction(tp, qkv, heads, formulation, alpha, theta, kernelAuto)
}

// kernel chooses how S·V and its gradients are computed: by the mask's
// density (kernelAuto), or always one way (tests).
type kernel int

const (
	kernelAuto kernel = iota
	kernelDense
	kernelSparse
	// kernelDenseNoQuant and kernelSparseNoQuant skip the fake quantisation
	// (Q̃ = Q, K̃ = K), for finite-difference checks of the rest.
	kernelDenseNoQuant
	kernelSparseNoQuant
)

// sparseRowsBelow is the mask density under which a head's S·V and its
// gradients run over the kept entries only: a row's kept columns cost a
// scalar loop each, BLAS runs the dense product several times faster per
// multiply (measured by BenchmarkCorrection's dense and sparse variants).
const sparseRowsBelow = 0.2

func (kn kernel) sparse(kept, nn int) bool {
	switch kn {
	case kernelDense, kernelDenseNoQuant:
		return false
	case kernelSparse, kernelSparseNoQuant:
		return true
	}
	return float64(kept) < sparseRowsBelow*float64(nn)
}

func (kn kernel) quantise() bool { return kn != kernelDenseNoQuant && kn != kernelSparseNoQuant }

func correction(tp *autograd.Tape, qkv *autograd.Tensor, heads int, formulation string, alpha, theta float32, kn kernel) (extra, absMean *autograd.Tensor, density float64) {
	if err := checkFormulation(formulation); err != nil {
		panic(err)
	}
	vitality := formulation == FormulationViTALiTy
	b, n, d3 := qkv.Shape[0], qkv.Shape[1], qkv.Shape[2]
	d := d3 / 3
	hd := d / heads
	s := float32(1 / math.Sqrt(float64(hd)))
	gamma := float32(1) // extra = α·γ·S·V
	if vitality {
		gamma = s
	}
	ag := alpha * gamma
	bh := b * heads
	extra = tp.Output([]*autograd.Tensor{qkv}, b, n, d)
	absMean = tp.Output([]*autograd.Tensor{qkv}, 1)
	// Saved per (batch, head):
	//   pd    (N×N)  the softmax whose backward the branch needs: P (vitc) or
	//                the predicted P̃ (vitality)
	//   sm    (N×N)  S, zero outside the mask
	//   mask  (N×w)  the mask, one bit per entry, rows of w 32-bit words
	//                stored as float32 bit patterns
	//   a1, a2, a3 (N×hd each), den (N): vitc K̂, then Q̃ and K̃ (forward
	//                scratch), den the Taylor normaliser; vitality a2 = Q̃,
	//                a3 = K̃
	nn, nhd := n*n, n*hd
	words := (n + 31) / 32
	per := 2*nn + n*words + 3*nhd + n
	savedT := tp.New(false, bh, per)
	saved := savedT.Data
	view := func(x int) (pd, sm, mask, a1, a2, a3, den []float32) {
		st := saved[x*per : (x+1)*per]
		pd, st = st[:nn], st[nn:]
		sm, st = st[:nn], st[nn:]
		mask, st = st[:n*words], st[n*words:]
		a1, st = st[:nhd], st[nhd:]
		a2, st = st[:nhd], st[nhd:]
		a3, den = st[:nhd], st[nhd:nhd+n]
		return
	}
	var qr, kr quantRange
	if vitality {
		qr, kr = tensorRange(qkv.Data, b*n, d3, 0, d), tensorRange(qkv.Data, b*n, d3, d, d)
	}
	absSums := make([]float64, bh)
	kept := make([]int, bh)
	autograd.ParallelFor(bh, 1, func(lo, hi int) {
		for x := lo; x < hi; x++ {
			bi, h := x/heads, x%heads
			q, k, v := autograd.HeadQKV(qkv.Data, bi, h, n, d, hd)
			pd, sm, mask, a1, a2, a3, den := view(x)
			var abs float64
			var nnz int
			if vitality {
				// P̃ = softmax(s·Q̃K̃ᵀ); S = P̃ where P̃ > θ
				qq, kq := q, k
				ldq := d3
				if kn.quantise() {
					qr.fakeQuant(a2, q, d3, n, hd)
					kr.fakeQuant(a3, k, d3, n, hd)
					qq, kq, ldq = a2, a3, hd
				} else {
					copyRows(a2, q, d3, n, hd)
					copyRows(a3, k, d3, n, hd)
				}
				autograd.Gemm(false, true, n, n, hd, s, qq, ldq, kq, ldq, 0, pd, n)
				autograd.SoftmaxRows(pd, n, n)
				for i := 0; i < n; i++ {
					pr, sr, mr := pd[i*n:(i+1)*n], sm[i*n:(i+1)*n], mask[i*words:(i+1)*words]
					var rowAbs float32
					for w := range mr {
						lo, hi := w<<5, min(w<<5+32, n)
						ps, ss := pr[lo:hi], sr[lo:hi]
						ss = ss[:len(ps)]
						var u uint32
						for t, p := range ps {
							if p > theta {
								u |= 1 << t
								ss[t] = p
								rowAbs += p
							} else {
								ss[t] = 0
							}
						}
						mr[w] = math.Float32frombits(u)
						nnz += bits.OnesCount32(u)
					}
					abs += float64(rowAbs)
				}
			} else {
				// Ẑ = s·QK̂ᵀ: P = softmax(Ẑ) (softmax ignores the per-row
				// shift by the key mean) and A = (1 + Ẑ)/den
				kh := a1
				centre(kh, hd, k, d3, n, hd)
				autograd.Gemm(false, true, n, n, hd, s, q, d3, kh, hd, 0, pd, n)
				qq, kq, ldq := q, k, d3
				if kn.quantise() {
					fakeQuant4(a2, q, d3, n, hd)
					fakeQuant4(a3, k, d3, n, hd)
					qq, kq, ldq = a2, a3, hd
				}
				// the predicted P̃ goes in sm, then each row becomes A on the mask
				autograd.Gemm(false, true, n, n, hd, s, qq, ldq, kq, ldq, 0, sm, n)
				autograd.SoftmaxRows(sm, n, n)
				for i := 0; i < n; i++ {
					zr, sr, mr := pd[i*n:(i+1)*n], sm[i*n:(i+1)*n], mask[i*words:(i+1)*words]
					z := float32(n)
					for _, v := range zr {
						z += v
					}
					den[i] = z
					for w := range mr {
						lo, hi := w<<5, min(w<<5+32, n)
						ps, zs := sr[lo:hi], zr[lo:hi]
						zs = zs[:len(ps)]
						var u uint32
						for t, p := range ps {
							if p > theta {
								u |= 1 << t
								ps[t] = (zs[t] + 1) / z
							} else {
								ps[t] = 0
							}
						}
						mr[w] = math.Float32frombits(u)
						nnz += bits.OnesCount32(u)
					}
				}
				autograd.SoftmaxRows(pd, n, n)
				// S = P − A on the mask
				for i := 0; i < n; i++ {
					pr, sr, mr := pd[i*n:(i+1)*n], sm[i*n:(i+1)*n], mask[i*words:(i+1)*words]
					var rowAbs float32
					for w := range mr {
						u, lo := math.Float32bits(mr[w]), w<<5
						for u != 0 {
							j := lo + bits.TrailingZeros32(u)
							sv := pr[j] - sr[j]
							sr[j] = sv
							rowAbs += max(sv, -sv)
							u &= u - 1
						}
					}
					abs += float64(rowAbs)
				}
			}
			absSums[x], kept[x] = abs, nnz
			// extra (N, hd) = α·γ·S·V, into this head's columns
			out := extra.Data[bi*n*d+h*hd:]
			if !kn.sparse(nnz, nn) {
				autograd.Gemm(false, false, n, hd, n, ag, sm, n, v, d3, 0, out, d)
				continue
			}
			for i := 0; i < n; i++ {
				oi, sr := out[i*d:i*d+hd], sm[i*n:(i+1)*n]
				clear(oi)
				forMasked(mask[i*words:(i+1)*words], func(j int) {
					axpy(oi, ag*sr[j], v[j*d3:j*d3+hd])
				})
			}
		}
	})
	var abs float64
	total := 0
	for x := range absSums {
		abs += absSums[x]
		total += kept[x]
	}
	count := float64(bh * nn)
	absMean.Data[0] = float32(abs / count)
	density = float64(total) / count
	tp.Record(extra, func() {
		dqkv := tp.GradOf(qkv)
		var dExtra []float32
		if extra.Grad != nil && ag != 0 {
			dExtra = extra.Grad
		}
		var regGrad float32
		if absMean.Grad != nil {
			regGrad = absMean.Grad[0] / float32(count)
		}
		tmp := tp.Temp(false, bh, nn+nhd)
		scratch := tmp.Data
		autograd.ParallelFor(bh, 1, func(lo, hi int) {
			for x := lo; x < hi; x++ {
				bi, h := x/heads, x%heads
				q, _, v := autograd.HeadQKV(qkv.Data, bi, h, n, d, hd) // the backward uses K̂ or K̃, not K
				dq, dk, dv := autograd.HeadQKV(dqkv, bi, h, n, d, hd)
				pd, sm, mask, a1, a2, a3, den := view(x)
				ds, dkh := scratch[x*(nn+nhd):x*(nn+nhd)+nn], scratch[x*(nn+nhd)+nn:(x+1)*(nn+nhd)]
				sparse := kn.sparse(kept[x], nn)
				// dS = α·γ·dExtra·Vᵀ (needed on the mask only);
				// dV += α·γ·Sᵀ·dExtra
				switch {
				case dExtra == nil:
					clear(ds)
				case !sparse:
					de := dExtra[bi*n*d+h*hd:]
					autograd.Gemm(false, true, n, n, hd, ag, de, d, v, d3, 0, ds, n)
					autograd.Gemm(true, false, n, hd, n, ag, sm, n, de, d, 1, dv, d3)
				default:
					de := dExtra[bi*n*d+h*hd:]
					for i := 0; i < n; i++ {
						di, sr, dr := de[i*d:i*d+hd], sm[i*n:(i+1)*n], ds[i*n:(i+1)*n]
						forMasked(mask[i*words:(i+1)*words], func(j int) {
							vj := v[j*d3 : j*d3+hd]
							dr[j] = ag * dot(di, vj)
							axpy(dv[j*d3:j*d3+hd], ag*sr[j], di)
						})
					}
				}
				// dE = M ⊙ (dS + regGrad·sign(S)), then per row the gradient W
				// of the scores the softmax (and for vitc A) came from:
				//   vitc:     W = P ⊙ (dE − c) + (r − dE)/den, c = Σ P·dE,
				//             r = Σ A·dE (the −dE through A = (1 + Ẑ)/den)
				//   vitality: W = P̃ ⊙ (dE − c)
				for i := 0; i < n; i++ {
					pr, sr, dr := pd[i*n:(i+1)*n], sm[i*n:(i+1)*n], ds[i*n:(i+1)*n]
					mr := mask[i*words : (i+1)*words]
					var c, es float32 // Σ P·dE, Σ S·dE
					for w := range mr {
						u, lo, hi := math.Float32bits(mr[w]), w<<5, min(w<<5+32, n)
						gs, ps, ss := dr[lo:hi], pr[lo:hi], sr[lo:hi]
						ps, ss = ps[:len(gs)], ss[:len(gs)]
						for t := range gs {
							if u&(1<<t) == 0 {
								gs[t] = 0
								continue
							}
							g := gs[t]
							if sv := ss[t]; sv > 0 {
								g += regGrad
							} else if sv < 0 {
								g -= regGrad
							}
							gs[t] = g
							c += ps[t] * g
							es += ss[t] * g
						}
					}
					pr = pr[:len(dr)]
					if vitality {
						for j, g := range dr {
							dr[j] = pr[j] * (g - c)
						}
						continue
					}
					r := c - es // Σ A·dE with A = P − S on the mask
					inv := 1 / den[i]
					for j, g := range dr {
						dr[j] = pr[j]*(g-c) + (r-g)*inv
					}
				}
				if vitality {
					// the scores were s·Q̃K̃ᵀ; straight through to Q and K
					autograd.Gemm(false, false, n, hd, n, s, ds, n, a3, hd, 1, dq, d3)
					autograd.Gemm(true, false, n, hd, n, s, ds, n, a2, hd, 1, dk, d3)
					continue
				}
				// the scores were s·QK̂ᵀ; the centring's backward removes the
				// mean over tokens from dK̂
				autograd.Gemm(false, false, n, hd, n, s, ds, n, a1, hd, 1, dq, d3)
				autograd.Gemm(true, false, n, hd, n, s, ds, n, q, d3, 0, dkh, hd)
				uncentreInto(dk, d3, dkh, hd, n, hd)
			}
		})
		tp.Release(tmp)
	}, qkv, savedT)
	return extra, absMean, density
}

// forMasked calls f with the column of every set bit of a mask row.
func forMasked(row []float32, f func(j int)) {
	for w, word := range row {
		u := math.Float32bits(word)
		for u != 0 {
			f(w<<5 + bits.TrailingZeros32(u))
			u &= u - 1
		}
	}
}

func dot(a, b []float32) float32 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// axpy adds a·x to y.
func axpy(y []float32, a float32, x []float32) {
	x = x[:len(y)]
	for i, v := range x {
		y[i] += a * v
	}
}

func copyRows(dst, x []float32, ld, n, hd int) {
	for i := 0; i < n; i++ {
		copy(dst[i*hd:(i+1)*hd], x[i*ld:i*ld+hd])
	}
}

// fakeQuant4 writes x (n rows of hd, row stride ld) rounded to a symmetric
// 4-bit grid of one scale per head (of one image), packed with stride hd:
// vitc's mask predictor.
func fakeQuant4(dst, x []float32, ld, n, hd int) {
	var amax float32
	for i := 0; i < n; i++ {
		for _, v := range x[i*ld : i*ld+hd] {
			amax = max(amax, v, -v)
		}
	}
	if amax == 0 {
		clear(dst[:n*hd])
		return
	}
	scale := amax / 7
	for i := 0; i < n; i++ {
		row, out := x[i*ld:i*ld+hd], dst[i*hd:(i+1)*hd]
		for c, v := range row {
			// round half away from zero (math.Round), in float64 where
			// adding ½ is exact; |v/scale| ≤ 7 needs no clamp above, and
			// −8 is never reached
			t := float64(v / scale)
			var q float32
			if t >= 0 {
				q = float32(int32(t + 0.5))
			} else {
				q = -float32(int32(0.5 - t))
			}
			out[c] = min(7, q) * scale
		}
	}
}

// quantRange is the asymmetric 4-bit grid of ViTALiTy's quantiser: 16
// levels from lo in steps of scale, one range for a whole tensor (every
// image and head of the batch).
type quantRange struct{ lo, scale float32 }

// tensorRange is the grid for columns [off, off+width) of rows rows of
// stride ld: the minimum and maximum over all of them.
func tensorRange(x []float32, rows, ld, off, width int) quantRange {
	lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
	for i := 0; i < rows; i++ {
		for _, v := range x[i*ld+off : i*ld+off+width] {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	return quantRange{lo: lo, scale: max((hi-lo)/15, 1e-8)}
}

// fakeQuant writes x (n rows of hd, row stride ld) on the grid, packed with
// stride hd: round((x − lo)/scale) (half to even, as torch.round), clamped
// to [0, 15], times scale, plus lo.
func (r quantRange) fakeQuant(dst, x []float32, ld, n, hd int) {
	for i := 0; i < n; i++ {
		row, out := x[i*ld:i*ld+hd], dst[i*hd:(i+1)*hd]
		for c, v := range row {
			t := float32(math.RoundToEven(float64((v - r.lo) / r.scale)))
			t = max(0, min(15, t))
			out[c] = float32(t*r.scale) + r.lo
		}
	}
}
