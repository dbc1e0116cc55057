package vit

import "math"

// FLOPs is the analytical forward cost of one image, counting a
// multiply-add as two operations: patch embedding, every linear layer,
// attention's two token-mixing products, and the head. Element-wise work
// (norms, GELU, softmax) is left out, as in the papers' counts. A pruned
// config counts each block's kept heads and MLP units and the tokens left
// after token pruning (the MLP of a pruning block sees the pruned count).
func (c Config) FLOPs() int64 { return c.SparseFLOPs(nil) }

// SparseFLOPs is FLOPs with the linear layers of block i scaled by
// density(i, name), the fraction of their weight blocks an accelerator that
// skips pruned blocks still computes (name: "attn.qkv", "attn.proj",
// "mlp.fc1", "mlp.fc2"); nil density counts every block.
func (c Config) SparseFLOPs(density func(layer int, name string) float64) int64 {
	dens := func(i int, name string) float64 {
		if density == nil {
			return 1
		}
		return density(i, name)
	}
	d := int64(c.Dim)
	patchIn := int64(c.Channels * c.Patch * c.Patch)
	f := float64(2 * int64(c.Patches()) * patchIn * d) // patch_embed.proj
	for i := 0; i < c.Depth; i++ {
		nIn, nOut := c.TokensAt(i)
		n, m := int64(nIn), int64(nOut)
		a := int64(c.HeadsAt(i) * c.HeadDim())
		hidden := int64(c.HiddenAt(i))
		f += float64(2*n*d*3*a) * dens(i, "attn.qkv")
		f += float64(AttentionFLOPs(c.Attention, int(n), int(a), c.HeadsAt(i)))
		f += float64(2*n*a*d) * dens(i, "attn.proj")
		f += float64(2*m*d*hidden) * dens(i, "mlp.fc1")
		f += float64(2*m*hidden*d) * dens(i, "mlp.fc2")
	}
	f += float64(2 * d * int64(c.Classes)) // head
	if c.DistHead {
		f += float64(2 * d * int64(c.Classes)) // head_dist
	}
	return int64(math.Round(f))
}

// AttentionFLOPs is the token-mixing cost of one attention layer over n
// tokens: softmax forms Q·Kᵀ and P·V, O(n²·d); Taylor forms K̂ᵀ·V and Q·G,
// O(n·d²/heads).
func AttentionFLOPs(kind string, n, dim, heads int) int64 {
	N, D, hd := int64(n), int64(dim), int64(dim/heads)
	if kind == "taylor" {
		return 2 * 2 * N * D * hd
	}
	return 2 * 2 * N * N * D
}
