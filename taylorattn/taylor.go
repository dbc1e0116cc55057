// Package taylorattn is ViTALiTy's linear Taylor attention: softmax's
// first-order expansion around centred keys, computed in O(N·d²) without the
// N×N matrix, plus the sparse high-order correction used only in training.
//
// Per head, with s = 1/√d and keys centred over tokens (K̂ = K − mean_j K_j):
//
//	G = K̂ᵀV (d×d), v̄ = Σ_j v_j, k̄ = Σ_j k̂_j,
//	out_i = (v̄ + s·q_i·G) / (N + s·q_i·k̄),
//
// which is exactly Σ_j a_ij·v_j with a_ij = (1 + s·q_i·k̂_j) / Σ_l (1 + s·q_i·k̂_l).
package taylorattn

import (
	"math"

	"vitc/autograd"
)

// Attention is linear Taylor attention over a packed qkv (B, N, 3·D) in
// timm's (B, N, 3, H, d) layout, returning (B, N, D). With wantCLS it also
// reports each head's cls row of the implicit attention matrix (B, H, N),
// for token pruning.
func Attention(tp *autograd.Tape, qkv *autograd.Tensor, heads int, wantCLS bool) autograd.AttentionResult {
	b, n, d3 := qkv.Shape[0], qkv.Shape[1], qkv.Shape[2]
	d := d3 / 3
	hd := d / heads
	s := float32(1 / math.Sqrt(float64(hd)))
	out := tp.Output([]*autograd.Tensor{qkv}, b, n, d)
	// Saved for the backward pass, per (batch, head): K̂ (N, hd) packed
	// like K, G (hd, hd), k̄ and v̄ (hd each), den (N).
	khatT := tp.New(false, b, n, d)
	khat := khatT.Data
	per := hd*hd + 2*hd + n
	savedT := tp.New(false, b*heads, per)
	saved := savedT.Data
	var clsPerHead []float32 // (B, H, N)
	if wantCLS {
		clsPerHead = make([]float32, b*heads*n)
	}
	autograd.ParallelFor(b*heads, 2, func(lo, hi int) {
		for bh := lo; bh < hi; bh++ {
			bi, h := bh/heads, bh%heads
			q, k, v := autograd.HeadQKV(qkv.Data, bi, h, n, d, hd)
			kh := khat[bi*n*d+h*hd:]
			st := saved[bh*per : (bh+1)*per]
			g, kbar, vbar, den := st[:hd*hd], st[hd*hd:hd*hd+hd], st[hd*hd+hd:hd*hd+2*hd], st[hd*hd+2*hd:]
			centre(kh, d, k, d3, n, hd)
			clear(kbar)
			clear(vbar)
			for j := 0; j < n; j++ {
				for c := 0; c < hd; c++ {
					kbar[c] += kh[j*d+c]
					vbar[c] += v[j*d3+c]
				}
			}
			// G (hd, hd) = K̂ᵀ (hd, N) · V (N, hd)
			autograd.Gemm(true, false, hd, hd, n, 1, kh, d, v, d3, 0, g, hd)
			o := out.Data[bi*n*d+h*hd:]
			// numerator (N, hd) = s·Q·G, then + v̄ and ÷ den per row
			autograd.Gemm(false, false, n, hd, hd, s, q, d3, g, hd, 0, o, d)
			for i := 0; i < n; i++ {
				qi := q[i*d3 : i*d3+hd]
				var qk float32
				for c, kc := range kbar {
					qk += qi[c] * kc
				}
				den[i] = float32(n) + s*qk
				inv := 1 / den[i]
				row := o[i*d : i*d+hd]
				for c := range row {
					row[c] = (row[c] + vbar[c]) * inv
				}
			}
			if wantCLS {
				// a_0j = (1 + s·q_0·k̂_j) / den_0
				q0 := q[:hd]
				row := clsPerHead[bh*n : (bh+1)*n]
				for j := 0; j < n; j++ {
					var dot float32
					for c := 0; c < hd; c++ {
						dot += q0[c] * kh[j*d+c]
					}
					row[j] = (1 + s*dot) / den[0]
				}
			}
		}
	})
	tp.Record(out, func() {
		dqkv := tp.GradOf(qkv)
		dy := out.Grad
		sper := n*hd + hd*hd + hd + n + n*hd + hd
		tmp := tp.Temp(false, b*heads, sper)
		scratch := tmp.Data
		autograd.ParallelFor(b*heads, 2, func(lo, hi int) {
			for bh := lo; bh < hi; bh++ {
				bi, h := bh/heads, bh%heads
				q, _, v := autograd.HeadQKV(qkv.Data, bi, h, n, d, hd) // the backward uses K̂, not K
				kh := khat[bi*n*d+h*hd:]
				dq, dk, dv := autograd.HeadQKV(dqkv, bi, h, n, d, hd)
				o := out.Data[bi*n*d+h*hd:]
				do := dy[bi*n*d+h*hd:]
				st := saved[bh*per : (bh+1)*per]
				g, kbar, den := st[:hd*hd], st[hd*hd:hd*hd+hd], st[hd*hd+2*hd:]
				sc := scratch[bh*sper : (bh+1)*sper]
				dnum, sc := sc[:n*hd], sc[n*hd:]
				dg, sc := sc[:hd*hd], sc[hd*hd:]
				dkbar, sc := sc[:hd], sc[hd:]
				dden, sc := sc[:n], sc[n:]
				dkh, dvbar := sc[:n*hd], sc[n*hd:]
				clear(dvbar)
				// dnum_i = dO_i / den_i ; dden_i = −(dO_i·out_i) / den_i
				for i := 0; i < n; i++ {
					inv := 1 / den[i]
					var dot float32
					for c := 0; c < hd; c++ {
						g := do[i*d+c]
						dnum[i*hd+c] = g * inv
						dvbar[c] += g * inv
						dot += g * o[i*d+c]
					}
					dden[i] = -dot * inv
				}
				// dG (hd, hd) = s·Qᵀ·dNum
				autograd.Gemm(true, false, hd, hd, n, s, q, d3, dnum, hd, 0, dg, hd)
				// dQ += s·dNum·Gᵀ + s·dden_i·k̄
				autograd.Gemm(false, true, n, hd, hd, s, dnum, hd, g, hd, 1, dq, d3)
				clear(dkbar)
				for i := 0; i < n; i++ {
					for c := 0; c < hd; c++ {
						dq[i*d3+c] += s * dden[i] * kbar[c]
						dkbar[c] += s * dden[i] * q[i*d3+c]
					}
				}
				// dV += K̂·dG + v̄'s gradient on every token
				autograd.Gemm(false, false, n, hd, hd, 1, kh, d, dg, hd, 1, dv, d3)
				for j := 0; j < n; j++ {
					for c := 0; c < hd; c++ {
						dv[j*d3+c] += dvbar[c]
					}
				}
				// dK̂ (N, hd) = V·dGᵀ + k̄'s gradient on every token; the
				// centring's backward then removes the mean over tokens.
				autograd.Gemm(false, true, n, hd, hd, 1, v, d3, dg, hd, 0, dkh, hd)
				for j := 0; j < n; j++ {
					for c := 0; c < hd; c++ {
						dkh[j*hd+c] += dkbar[c]
					}
				}
				uncentreInto(dk, d3, dkh, hd, n, hd)
			}
		})
		tp.Release(tmp)
	}, qkv, out, khatT, savedT)
	return autograd.AttentionResult{Out: out, CLSAttention: clsPerHead, Heads: heads}
}

// centreGo is centre in Go.
func centreGo(dst []float32, ldd int, k []float32, ldk, n, hd int) {
	mean := make([]float32, hd)
	for j := 0; j < n; j++ {
		for c, v := range k[j*ldk : j*ldk+hd] {
			mean[c] += v
		}
	}
	for c := range mean {
		mean[c] /= float32(n)
	}
	for j := 0; j < n; j++ {
		row, out := k[j*ldk:j*ldk+hd], dst[j*ldd:j*ldd+hd]
		for c, v := range row {
			out[c] = v - mean[c]
		}
	}
}

// uncentreIntoGo is uncentreInto in Go.
func uncentreIntoGo(dk []float32, ldk int, dkh []float32, ldh, n, hd int) {
	mean := make([]float32, hd)
	for j := 0; j < n; j++ {
		for c, v := range dkh[j*ldh : j*ldh+hd] {
			mean[c] += v
		}
	}
	for c := range mean {
		mean[c] /= float32(n)
	}
	for j := 0; j < n; j++ {
		row, out := dkh[j*ldh:j*ldh+hd], dk[j*ldk:j*ldk+hd]
		for c, v := range row {
			out[c] += v - mean[c]
		}
	}
}
