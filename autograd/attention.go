package autograd

import "math"

// AttentionResult is the output of a fused attention op together with the
// cls query's attention, which token pruning ranks tokens by.
type AttentionResult struct {
	Out *Tensor // (B, N, D)
	// CLSAttention[(b·H+h)·N+j] is the attention of head h's cls query to
	// token j (B, H, N). Nil unless requested.
	CLSAttention []float32
	Heads        int
}

// SoftmaxAttention is multi-head scaled dot-product attention over a packed
// qkv tensor (B, N, 3·D) laid out as timm's (B, N, 3, H, d). It never
// materialises per-head copies of Q, K and V: each head is a strided view
// handed straight to GEMM. The (B, H, N, N) probabilities are kept for the
// backward pass.
func SoftmaxAttention(tp *Tape, qkv *Tensor, heads int, wantCLS bool) AttentionResult {
	b, n, d3 := qkv.Shape[0], qkv.Shape[1], qkv.Shape[2]
	d := d3 / 3
	hd := d / heads
	scale := float32(1 / math.Sqrt(float64(hd)))
	out := tp.Output([]*Tensor{qkv}, b, n, d)
	probs := tp.New(false, b, heads, n, n) // (B, H, N, N)
	// Few heads (one image) are cut into blocks of query rows too, so that
	// every core has work; each row's attention is computed the same way.
	blocks := min(max(1, 8/(b*heads)), max(1, n/32))
	rows := (n + blocks - 1) / blocks
	ParallelFor(b*heads*blocks, 1, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			bh, r0 := t/blocks, t%blocks*rows
			r1 := min(r0+rows, n)
			if r0 >= r1 {
				continue
			}
			bi, h := bh/heads, bh%heads
			q, k, v := HeadQKV(qkv.Data, bi, h, n, d, hd)
			p := probs.Data[bh*n*n+r0*n : bh*n*n+r1*n]
			// (R, N) = s·(R, hd)·(N, hd)ᵀ for query rows r0..r1
			Gemm(false, true, r1-r0, n, hd, scale, q[r0*d3:], d3, k, d3, 0, p, n)
			softmaxRows(p, r1-r0, n)
			// (R, hd) = (R, N)·(N, hd), written into this head's columns
			Gemm(false, false, r1-r0, hd, n, 1, p, n, v, d3, 0, out.Data[bi*n*d+r0*d+h*hd:], d)
		}
	})
	res := AttentionResult{Out: out, Heads: heads}
	if wantCLS {
		res.CLSAttention = make([]float32, b*heads*n) // (B, H, N): row 0 of each head's P
		for bh := 0; bh < b*heads; bh++ {
			copy(res.CLSAttention[bh*n:(bh+1)*n], probs.Data[bh*n*n:bh*n*n+n])
		}
	}
	tp.Record(out, func() {
		dqkv := tp.GradOf(qkv)
		dy := out.Grad
		tmp := tp.Temp(false, b*heads, n*n)
		scratch := tmp.Data
		ParallelFor(b*heads, 2, func(lo, hi int) {
			for bh := lo; bh < hi; bh++ {
				bi, h := bh/heads, bh%heads
				q, k, v := HeadQKV(qkv.Data, bi, h, n, d, hd)
				dq, dk, dv := HeadQKV(dqkv, bi, h, n, d, hd)
				do := dy[bi*n*d+h*hd:]
				p := probs.Data[bh*n*n : (bh+1)*n*n]
				dp := scratch[bh*n*n : (bh+1)*n*n]
				// dV (N, hd) += Pᵀ·dO
				Gemm(true, false, n, hd, n, 1, p, n, do, d, 1, dv, d3)
				// dP (N, N) = dO·Vᵀ
				Gemm(false, true, n, n, hd, 1, do, d, v, d3, 0, dp, n)
				// dS = P ⊙ (dP − rowsum(dP ⊙ P)), the softmax backward
				for i := 0; i < n; i++ {
					SoftmaxRowBackward(dp[i*n:(i+1)*n], p[i*n:(i+1)*n], dp[i*n:(i+1)*n])
				}
				// dQ (N, hd) += s·dS·K ; dK (N, hd) += s·dSᵀ·Q
				Gemm(false, false, n, hd, n, scale, dp, n, k, d3, 1, dq, d3)
				Gemm(true, false, n, hd, n, scale, dp, n, q, d3, 1, dk, d3)
			}
		})
		tp.Release(tmp)
	}, qkv, probs)
	return res
}

// HeadQKV returns head h of image bi in a packed qkv buffer laid out as
// timm's (B, N, 3, H, d_head), with D = H·d_head: views of Q, K and V whose
// rows start 3·D apart, so they go to GEMM with leading dimension 3·D
// without a copy.
func HeadQKV(packed []float32, bi, h, n, d, hd int) (q, k, v []float32) {
	base := bi*n*3*d + h*hd
	return packed[base:], packed[base+d:], packed[base+2*d:]
}
