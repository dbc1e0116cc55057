package taylorattn

import (
	"math"
	"math/bits"
)

// The element-wise passes of the sparse branch, one head (N×N) at a time.
// A mask row is `words` 32-bit words (bit t of word w: column 32·w + t),
// stored as float32 bit patterns in the saved tensor. These pure-Go versions
// are always built; the native build (the openblas tag) replaces them in
// init with C loops the compiler vectorises (kernels_native.go): the same
// formulas, other orders of summation.
var (
	// centre writes K (n rows of hd, row stride ldk) minus its mean over
	// the rows into dst (row stride ldd).
	centre = centreGo
	// uncentreInto adds the backward of centring, dK = dK̂ − mean_j dK̂_j,
	// into dk (row stride ldk) from dkh (row stride ldh). The native
	// versions of both sum each column in the same order: the same values.
	uncentreInto = uncentreIntoGo
	// fakeQuant4 writes x (n rows of hd, row stride ld) rounded to a
	// symmetric 4-bit grid of one scale amax/7 per head (of one image),
	// packed with stride hd: vitc's mask predictor.
	fakeQuant4 = fakeQuant4Go
	// quantAsym4 writes x on ViTALiTy's grid, packed with stride hd:
	// round((x − lo)/scale) (half to even, as torch.round), clamped to
	// [0, 15], times scale, plus lo.
	quantAsym4 = quantAsym4Go
	// maskTaylor (vitc) reads Ẑ = s·QK̂ᵀ in z and the predicted softmax P̃
	// in pt; it writes each row's Taylor normaliser den_i = N + Σ_j Ẑ_ij,
	// the mask [P̃ > θ], and over pt A = (1 + Ẑ)/den on the mask, 0 off it.
	// It returns how many entries the mask keeps.
	maskTaylor = maskTaylorGo
	// maskKeep (vitality) writes the mask [P̃ > θ] of pt and S = P̃ on the
	// mask, 0 off it, into sm; it returns the count kept and Σ S.
	maskKeep = maskKeepGo
	// subMasked (vitc) replaces A on the mask in sm by S = P − A and
	// returns Σ |S|.
	subMasked = subMaskedGo
	// scoreGrad turns ds, the gradient of S (dense: only the mask's entries
	// are read), into the gradient of the scores the softmax p came from:
	// dE = M ⊙ (dS + rg·sign(S)), c_i = Σ_j P_ij·dE_ij, then
	//   den == nil (vitality): W = P ⊙ (dE − c)
	//   otherwise (vitc):       W = P ⊙ (dE − c) + (r − dE)/den,
	//                           r_i = Σ_j A_ij·dE_ij with A = P − S on the mask.
	scoreGrad = scoreGradGo
	// sparseSV writes out (n rows of hd, row stride ldo) = ag·S·V over the
	// mask's entries only (V: row stride ldv).
	sparseSV = sparseSVGo
	// sparseGradSV, over the mask's entries only, writes dS = ag·dO·Vᵀ
	// into ds (other entries are left as they are) and adds ag·Sᵀ·dO to dV
	// (dO: row stride ldo; V and dV: row stride ldv).
	sparseGradSV = sparseGradSVGo
	// minMax is the smallest and largest of rows rows of width values, row
	// stride ld (NaNs ignored).
	minMax = minMaxGo
	// kernelsName names the versions in use.
	kernelsName = "Go"
)

func fakeQuant4Go(dst, x []float32, ld, n, hd int) {
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

func quantAsym4Go(dst, x []float32, ld, n, hd int, lo, scale float32) {
	for i := 0; i < n; i++ {
		row, out := x[i*ld:i*ld+hd], dst[i*hd:(i+1)*hd]
		for c, v := range row {
			t := float32(math.RoundToEven(float64((v - lo) / scale)))
			t = max(0, min(15, t))
			out[c] = float32(t*scale) + lo
		}
	}
}

func maskTaylorGo(z, pt, mask, den []float32, n, words int, theta float32) (nnz int) {
	for i := 0; i < n; i++ {
		zr, pr, mr := z[i*n:(i+1)*n], pt[i*n:(i+1)*n], mask[i*words:(i+1)*words]
		s := float32(n)
		for _, v := range zr {
			s += v
		}
		den[i] = s
		for w := range mr {
			lo, hi := w<<5, min(w<<5+32, n)
			ps, zs := pr[lo:hi], zr[lo:hi]
			zs = zs[:len(ps)]
			var u uint32
			for t, p := range ps {
				if p > theta {
					u |= 1 << t
					ps[t] = (zs[t] + 1) / s
				} else {
					ps[t] = 0
				}
			}
			mr[w] = math.Float32frombits(u)
			nnz += bits.OnesCount32(u)
		}
	}
	return nnz
}

func maskKeepGo(pt, sm, mask []float32, n, words int, theta float32) (nnz int, sum float64) {
	for i := 0; i < n; i++ {
		pr, sr, mr := pt[i*n:(i+1)*n], sm[i*n:(i+1)*n], mask[i*words:(i+1)*words]
		var row float32
		for w := range mr {
			lo, hi := w<<5, min(w<<5+32, n)
			ps, ss := pr[lo:hi], sr[lo:hi]
			ss = ss[:len(ps)]
			var u uint32
			for t, p := range ps {
				if p > theta {
					u |= 1 << t
					ss[t] = p
					row += p
				} else {
					ss[t] = 0
				}
			}
			mr[w] = math.Float32frombits(u)
			nnz += bits.OnesCount32(u)
		}
		sum += float64(row)
	}
	return nnz, sum
}

func subMaskedGo(p, sm, mask []float32, n, words int) (abs float64) {
	for i := 0; i < n; i++ {
		pr, sr, mr := p[i*n:(i+1)*n], sm[i*n:(i+1)*n], mask[i*words:(i+1)*words]
		var row float32
		for w := range mr {
			u, lo := math.Float32bits(mr[w]), w<<5
			for u != 0 {
				j := lo + bits.TrailingZeros32(u)
				sv := pr[j] - sr[j]
				sr[j] = sv
				row += max(sv, -sv)
				u &= u - 1
			}
		}
		abs += float64(row)
	}
	return abs
}

func scoreGradGo(p, sm, mask, ds, den []float32, n, words int, rg float32) {
	for i := 0; i < n; i++ {
		pr, sr, dr := p[i*n:(i+1)*n], sm[i*n:(i+1)*n], ds[i*n:(i+1)*n]
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
					g += rg
				} else if sv < 0 {
					g -= rg
				}
				gs[t] = g
				c += ps[t] * g
				es += ss[t] * g
			}
		}
		pr = pr[:len(dr)]
		if den == nil {
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
}

func minMaxGo(x []float32, rows, ld, width int) (lo, hi float32) {
	lo, hi = float32(math.Inf(1)), float32(math.Inf(-1))
	for i := 0; i < rows; i++ {
		for _, v := range x[i*ld : i*ld+width] {
			if v < lo {
				lo = v
			}
			if v > hi {
				hi = v
			}
		}
	}
	return lo, hi
}

func sparseSVGo(sm, mask, v []float32, ldv int, out []float32, ldo, n, words, hd int, ag float32) {
	for i := 0; i < n; i++ {
		oi, sr := out[i*ldo:i*ldo+hd], sm[i*n:(i+1)*n]
		clear(oi)
		forMasked(mask[i*words:(i+1)*words], func(j int) {
			axpy(oi, ag*sr[j], v[j*ldv:j*ldv+hd])
		})
	}
}

func sparseGradSVGo(do []float32, ldo int, v, dv []float32, ldv int, sm, mask, ds []float32, n, words, hd int, ag float32) {
	for i := 0; i < n; i++ {
		di, sr, dr := do[i*ldo:i*ldo+hd], sm[i*n:(i+1)*n], ds[i*n:(i+1)*n]
		forMasked(mask[i*words:(i+1)*words], func(j int) {
			dr[j] = ag * dot(di, v[j*ldv:j*ldv+hd])
			axpy(dv[j*ldv:j*ldv+hd], ag*sr[j], di)
		})
	}
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
