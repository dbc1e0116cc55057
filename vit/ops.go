package vit

import (
	"vitc/autograd"
	"vitc/tokenprune"
)

// Ops are the operations the ViT is defined in (Define). An executor
// implements them over its own value type T; every weight comes as the
// parameter itself, so an executor reads it (or a view of it) its own way.
type Ops[T any] interface {
	// Patches cuts images (B, C, H, W) into flattened p×p patches
	// (B, P, C·p·p), in the layout of a flattened conv weight [D, C, p, p].
	Patches(images T, p int) T
	// Linear is x·Wᵀ + b over the last dimension, as torch.nn.Linear.
	Linear(x T, w, b *autograd.Param) T
	// LayerNorm normalises the last dimension, then applies gain and bias.
	LayerNorm(x T, g, b *autograd.Param, eps float64) T
	// Tokens prepends the cls token and adds the position embedding:
	// (B, P, D) → (B, P+1, D).
	Tokens(emb T, cls, pos *autograd.Param) T
	// PrependToken prepends a learned token to every image's sequence:
	// (B, N, D) → (B, N+1, D). A distilled DeiT's distillation token goes
	// in this way, before Tokens adds the cls token in front of it.
	PrependToken(x T, tok *autograd.Param) T
	// Mean is (a + b)/2: DeiT averages its two heads' logits.
	Mean(a, b T) T
	// Attention is the multi-head attention of block layer (the model's
	// kind) on a packed qkv (B, N, 3·A), timm's (B, N, 3, H, d) layout.
	// With wantCLS it also returns the cls query's attention to every
	// token, averaged over the heads that count (B, N), for token pruning.
	Attention(layer int, qkv T, heads int, wantCLS bool) (out, cls T)
	// KeepFuse keeps the cls token and the highest-scoring patch tokens
	// and fuses the rest into one (tokenprune.KeepFuse): (B, N, D) →
	// (B, k+2, D).
	KeepFuse(layer int, x, cls T, keep float64) T
	// Add is the residual sum a + b, where b is a branch's output that
	// Define never uses again: an executor may write the sum into b's
	// storage.
	Add(a, b T) T
	// GELU is the exact (erf) GELU.
	GELU(x T) T
	// Token selects token i of every image: (B, N, D) → (B, D).
	Token(x T, i int) T
}

// NativeOps is the native executor of m with the extensions of p: each op
// runs at once on p.Tape. Another engine runs a segment of its graph through
// it, so that the kernels and the extensions apply exactly as natively.
func NativeOps(m *Model, p *Pass) Ops[*autograd.Tensor] { return &tapeOps{m: m, p: p} }

// tapeOps is the native executor: each op runs at once and records its
// backward pass on the tape, with the pass's extensions applied.
type tapeOps struct {
	m *Model
	p *Pass
}

func (o *tapeOps) Patches(x *autograd.Tensor, p int) *autograd.Tensor {
	return autograd.Im2Patches(o.p.Tape, x, p)
}

func (o *tapeOps) Linear(x *autograd.Tensor, w, b *autograd.Param) *autograd.Tensor {
	return autograd.Linear(o.p.Tape, x, o.p.View(w, w.Tensor), b.Tensor)
}

func (o *tapeOps) LayerNorm(x *autograd.Tensor, g, b *autograd.Param, eps float64) *autograd.Tensor {
	return autograd.LayerNorm(o.p.Tape, x, g.Tensor, b.Tensor, eps)
}

func (o *tapeOps) Tokens(emb *autograd.Tensor, cls, pos *autograd.Param) *autograd.Tensor {
	return autograd.PrependCLSAddPos(o.p.Tape, emb, cls.Tensor, pos.Tensor)
}

func (o *tapeOps) PrependToken(x *autograd.Tensor, tok *autograd.Param) *autograd.Tensor {
	return autograd.PrependToken(o.p.Tape, x, tok.Tensor)
}

func (o *tapeOps) Mean(a, b *autograd.Tensor) *autograd.Tensor {
	return autograd.Scale(o.p.Tape, autograd.Add(o.p.Tape, a, b), 0.5)
}

func (o *tapeOps) Attention(layer int, qkv *autograd.Tensor, heads int, wantCLS bool) (out, cls *autograd.Tensor) {
	tp := o.p.Tape
	res := o.m.attention(tp, qkv, heads, wantCLS)
	for _, hook := range o.p.Attention {
		res = hook.Attention(tp, layer, qkv, heads, res)
	}
	if wantCLS {
		b, n := res.Out.Shape[0], res.Out.Shape[1]
		cls = autograd.FromData(meanCLS(res, o.p.liveHeads(layer)), b, n)
	}
	return res.Out, cls
}

func (o *tapeOps) KeepFuse(layer int, x, cls *autograd.Tensor, keep float64) *autograd.Tensor {
	y, kept := tokenprune.KeepFuse(o.p.Tape, x, cls.Data, keep)
	for _, obs := range o.p.Kept {
		obs.KeptTokens(layer, kept)
	}
	return y
}

func (o *tapeOps) Add(a, b *autograd.Tensor) *autograd.Tensor {
	return autograd.Residual(o.p.Tape, a, b)
}

// blockRunner is implemented by an executor that runs each transformer
// block as a unit: run(ops, x) is the block on x, with the ops it is handed.
type blockRunner[T any] interface {
	Block(layer int, x T, run func(ops Ops[T], x T) T) T
}

// Block runs one transformer block natively. An inference pass releases
// the block's intermediates once its output exists, so inference holds one
// block's activations at a time. A training pass with Pass.Recompute keeps
// only the block's input: the block runs on a tape of its own whose
// buffers go back to the pool at once, and the backward pass runs it again
// (on the same input, with the same weights and extensions: the same
// numbers) and backpropagates through that recomputation.
func (o *tapeOps) Block(layer int, x *autograd.Tensor, run func(Ops[*autograd.Tensor], *autograd.Tensor) *autograd.Tensor) *autograd.Tensor {
	tp := o.p.Tape
	switch {
	case !tp.Grad():
		mark := tp.Mark()
		y := run(o, x)
		tp.ReleaseSince(mark, y)
		return y
	case !o.p.Recompute:
		return run(o, x)
	}
	on := func(sub *autograd.Tape, observe bool) *tapeOps {
		p := *o.p
		p.Tape = sub
		if !observe {
			p.Kept = nil // the forward pass reported this block's kept tokens
		}
		return &tapeOps{m: o.m, p: &p}
	}
	// The forward pass records (so that every op and extension runs as in
	// the recomputation), then forgets everything but the output.
	fwd := tp.Shared(true)
	y := tp.Adopt(run(on(fwd, true), x))
	fwd.Reset()
	tp.Record(y, func() {
		if x.NeedsGrad() {
			tp.GradOf(x) // x's gradient is this tape's, whichever closure first adds to it
		}
		bwd := tp.Shared(true)
		y2 := run(on(bwd, false), x)
		bwd.BackwardWith(y2, tp.GradOf(y))
		bwd.Reset()
	}, x)
	return y
}

func (o *tapeOps) GELU(x *autograd.Tensor) *autograd.Tensor { return autograd.GELU(o.p.Tape, x) }

func (o *tapeOps) Token(x *autograd.Tensor, i int) *autograd.Tensor {
	return autograd.SelectToken(o.p.Tape, x, i)
}

// meanCLS averages the cls query's attention (B, H, N) over the heads that
// alive marks (all when nil) into token-pruning scores (B, N). A block-pruned
// model leaves out the heads that compaction will remove, so that the
// compacted model, which no longer has them, ranks tokens the same way.
func meanCLS(r autograd.AttentionResult, alive []bool) []float32 {
	h := r.Heads
	b, tokens := r.Out.Shape[0], r.Out.Shape[1]
	out := make([]float32, b*tokens)
	count := 0
	for hi := 0; hi < h; hi++ {
		if alive == nil || alive[hi] {
			count++
		}
	}
	if count == 0 {
		return out
	}
	inv := 1 / float32(count)
	for bi := 0; bi < b; bi++ {
		dst := out[bi*tokens : (bi+1)*tokens]
		for hi := 0; hi < h; hi++ {
			if alive != nil && !alive[hi] {
				continue
			}
			row := r.CLSAttention[(bi*h+hi)*tokens : (bi*h+hi+1)*tokens]
			for j, v := range row {
				dst[j] += v * inv
			}
		}
	}
	return out
}
