package vit

// FLOPs is the analytical forward cost of one image, counting a
// multiply-add as two operations: patch embedding, every linear layer,
// attention's two token-mixing products, and the head. Element-wise work
// (norms, GELU, softmax) is left out, as in the papers' counts.
func (c Config) FLOPs() int64 {
	n := int64(c.Tokens())
	d := int64(c.Dim)
	hidden := int64(c.Hidden())
	patchIn := int64(c.Channels * c.Patch * c.Patch)
	f := 2 * int64(c.Patches()) * patchIn * d // patch_embed.proj
	for i := 0; i < c.Depth; i++ {
		f += 2 * n * d * 3 * d // attn.qkv
		f += AttentionFLOPs(c.Attention, int(n), c.Dim, c.Heads)
		f += 2 * n * d * d          // attn.proj
		f += 2 * 2 * n * d * hidden // mlp.fc1 + mlp.fc2
	}
	f += 2 * d * int64(c.Classes) // head
	return f
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
