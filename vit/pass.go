package vit

import "vitc/autograd"

// Pass is the context of one forward pass: the tape it records on and the
// extensions that change the computation for this pass only. Techniques
// fill it (block pruning views weights through masks, Taylor attention's
// sparse branch adds its correction while training, a keep-rate schedule
// sets the token keep rate); extensions of one kind compose in order, so a
// second technique never silently replaces a first.
type Pass struct {
	Tape *autograd.Tape
	// Weights view each weight matrix in turn (e.g. W ⊙ mask).
	Weights []WeightView
	// Attention hooks may change each layer's attention result, in order.
	Attention []AttentionHook
	// Heads leave heads out of the cls attention that token pruning ranks
	// tokens by: a head is live when every filter says so.
	Heads []HeadFilter
	// KeepRate overrides Config.TokenKeep for this pass (nil: the config's).
	// It is one value by nature, so there is one slot.
	KeepRate KeepRate
	// Kept observers receive each token-pruning layer's kept token indices
	// per image (tokenprune.KeepFuse's second result).
	Kept []KeptObserver
	// Recompute keeps only each block's input through a training pass and
	// runs the block again in the backward pass (activation checkpointing):
	// less memory, about one more forward pass of time, the same gradients.
	// Extensions must then compute the same thing twice; the sparse branch,
	// which sums statistics as it goes, cannot run with it.
	Recompute bool
}

// WeightView replaces a weight by a view of it. w is the weight as earlier
// views left it; a view that does not touch p returns w.
type WeightView interface {
	View(tp *autograd.Tape, p *autograd.Param, w *autograd.Tensor) *autograd.Tensor
}

// AttentionHook changes one layer's attention result, computed from its
// packed qkv (B, N, 3·A).
type AttentionHook interface {
	Attention(tp *autograd.Tape, layer int, qkv *autograd.Tensor, heads int, res autograd.AttentionResult) autograd.AttentionResult
}

// HeadFilter marks the heads of a layer that count (nil: all).
type HeadFilter interface {
	LiveHeads(layer int) []bool
}

// KeepRate is the token keep rate of the current pass.
type KeepRate interface {
	KeepRate() float64
}

// KeptObserver sees which tokens each token-pruning layer keeps.
type KeptObserver interface {
	KeptTokens(layer int, kept [][]int)
}

// View applies the pass's weight views to t, the values of weight w: w
// itself natively, or a copy of it where another engine holds the weight.
func (p *Pass) View(w *autograd.Param, t *autograd.Tensor) *autograd.Tensor {
	for _, v := range p.Weights {
		t = v.View(p.Tape, w, t)
	}
	return t
}

// liveHeads combines the head filters for one layer (nil: all heads live).
func (p *Pass) liveHeads(layer int) []bool {
	var live []bool
	for _, f := range p.Heads {
		l := f.LiveHeads(layer)
		if l == nil {
			continue
		}
		if live == nil {
			live = append([]bool(nil), l...)
			continue
		}
		for h := range live {
			live[h] = live[h] && l[h]
		}
	}
	return live
}
