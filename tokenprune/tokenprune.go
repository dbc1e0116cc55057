// Package tokenprune implements EViT-style dynamic token pruning for vitc's
// Vision Transformers: after the attention of chosen layers, each image keeps
// its cls token and the patch tokens the cls token attends to most, and fuses
// the rest into one token, so later layers run on fewer tokens. It also holds
// the keep-rate schedule used while training with pruning and a PNG writer
// that shows which patches survive each pruning stage.
package tokenprune

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"vitc/autograd"
)

// integerSlack is how close keep·(n−1) must be to an integer to count as
// that integer: keep rates such as 0.7 are not exact in binary, and 0.7·10
// must give 7 tokens, not ⌈7.000000000000001⌉ = 8.
const integerSlack = 1e-9

// KeepCount returns how many patch tokens survive out of n tokens, n counting
// the cls token: ⌈keep·(n−1)⌉ clamped to [1, n−1]. At least one patch token is
// always kept so that the fused token never stands for the whole image. With
// no patch tokens (n ≤ 1) it returns 0.
func KeepCount(n int, keep float64) int {
	patches := n - 1
	if patches < 1 {
		return 0
	}
	// Comparisons written so that NaN lands on a defined side: a NaN keep
	// rate prunes as hard as possible rather than converting NaN to int.
	if !(keep > 0) {
		return 1
	}
	if keep >= 1 {
		return patches
	}
	v := keep * float64(patches)
	k := int(math.Ceil(v))
	if r := math.Round(v); math.Abs(v-r) <= integerSlack {
		k = int(r)
	}
	return min(max(k, 1), patches)
}

// KeepFuse prunes the tokens of x (B, N, D) given each image's cls attention
// score (B, N): score[b·N+j] is how much image b's cls token attends to token
// j (score[b·N] belongs to the cls token itself and is ignored). Per image the
// output holds the cls token, then the k = KeepCount(N, keep) highest-scoring
// tokens in their original order (equal scores prefer the lower index), then
// one fused token Σ_dropped score_j·x_j. The sum is deliberately not
// normalised by the dropped scores' total, as in EViT: the fused token then
// carries the share of attention its tokens had. The result is (B, k+2, D).
//
// The second result lists, per image, the token indices in x (1..N−1) of the
// kept tokens, ascending. A token index counts every token of x, so at a
// later pruning stage a previous stage's fused token can be kept or fused
// again like any other.
//
// When nothing would be dropped (k = N−1, e.g. keep 1) x itself is returned
// with no fused token, so a keep rate of 1 leaves the model unchanged.
//
// Scores are constants: no gradient flows into them, as in EViT, where the
// ranking and fusion weights come from a detached attention map. Gradients
// flow into x through the kept copies and, scaled by score_j, through the
// fused token. The scores are copied, so the caller may reuse the buffer
// before the backward pass.
func KeepFuse(tp *autograd.Tape, x *autograd.Tensor, score []float32, keep float64) (*autograd.Tensor, [][]int) {
	b, n, d := x.Shape[0], x.Shape[1], x.Shape[2]
	if len(score) != b*n {
		panic(fmt.Sprintf("tokenprune: %d scores for %d images of %d tokens", len(score), b, n))
	}
	k := KeepCount(n, keep)
	kept := make([][]int, b)
	if k >= n-1 {
		for bi := range kept {
			kept[bi] = make([]int, n-1)
			for i := range kept[bi] {
				kept[bi][i] = i + 1
			}
		}
		return x, kept
	}

	m := k + 2
	y := tp.Output([]*autograd.Tensor{x}, b, m, d) // (B, k+2, D)
	// Per image, the dropped token indices and their fusion weights, kept
	// for the backward pass.
	dropped := make([][]int, b)
	weights := make([][]float32, b)
	autograd.ParallelFor(b, 2, func(lo, hi int) {
		order := make([]int, n-1)
		for bi := lo; bi < hi; bi++ {
			s := score[bi*n : (bi+1)*n] // (N)
			for i := range order {
				order[i] = i + 1
			}
			slices.SortFunc(order, func(i, j int) int {
				// Descending score; cmp.Compare orders NaN first, so a NaN
				// score ranks last and is dropped.
				if c := cmp.Compare(s[j], s[i]); c != 0 {
					return c
				}
				return i - j
			})
			kp := slices.Clone(order[:k])
			slices.Sort(kp)
			// Sorted so that the fused sum has a fixed order whatever the
			// ranking was, which keeps results reproducible.
			dr := slices.Clone(order[k:])
			slices.Sort(dr)
			w := make([]float32, len(dr))
			for i, j := range dr {
				w[i] = s[j]
			}
			kept[bi], dropped[bi], weights[bi] = kp, dr, w

			xb := x.Data[bi*n*d : (bi+1)*n*d] // (N, D)
			yb := y.Data[bi*m*d : (bi+1)*m*d] // (k+2, D)
			copy(yb[:d], xb[:d])
			for i, j := range kp {
				copy(yb[(i+1)*d:(i+2)*d], xb[j*d:(j+1)*d])
			}
			fused := yb[(k+1)*d:] // (D)
			clear(fused)
			for i, j := range dr {
				for c, v := range xb[j*d : (j+1)*d] {
					fused[c] += w[i] * v
				}
			}
		}
	})
	// The caller owns the returned lists; backward keeps its own copy.
	out := make([][]int, b)
	for bi := range kept {
		out[bi] = slices.Clone(kept[bi])
	}

	tp.Record(y, func() {
		g := tp.GradOf(x) // (B, N, D)
		autograd.ParallelFor(b, 2, func(lo, hi int) {
			for bi := lo; bi < hi; bi++ {
				dy := y.Grad[bi*m*d : (bi+1)*m*d] // (k+2, D)
				gb := g[bi*n*d : (bi+1)*n*d]      // (N, D)
				for c, v := range dy[:d] {
					gb[c] += v
				}
				for i, j := range kept[bi] {
					dst := gb[j*d : (j+1)*d]
					for c, v := range dy[(i+1)*d : (i+2)*d] {
						dst[c] += v
					}
				}
				df := dy[(k+1)*d:] // (D)
				for i, j := range dropped[bi] {
					w := weights[bi][i]
					dst := gb[j*d : (j+1)*d]
					for c, v := range df {
						dst[c] += w * v
					}
				}
			}
		})
	})
	return y, out
}

// fccmLayers are the layers of a 12-layer DeiT-Small after whose attention
// the FCCM'24 design prunes tokens.
var fccmLayers = [...]int{2, 6, 9}

// Layers returns the layers (0-based, ascending, distinct) after whose
// attention tokens are pruned by default in a model of the given depth: the
// FCCM'24 positions scaled by depth/12 and rounded to nearest. When scaling
// makes two positions collide, the later one moves one layer deeper if the
// model has that layer and is dropped otherwise, so shallow models prune at
// fewer layers instead of pruning twice at one.
func Layers(depth int) []int {
	if depth <= 0 {
		return nil
	}
	var out []int
	for _, p := range fccmLayers {
		// round(p·depth/12) with halves rounded up, in integers so that no
		// float error decides a tie.
		l := (2*p*depth + 12) / 24
		l = min(max(l, 0), depth-1)
		if len(out) > 0 && l <= out[len(out)-1] {
			l = out[len(out)-1] + 1
		}
		if l > depth-1 {
			continue
		}
		out = append(out, l)
	}
	return out
}
