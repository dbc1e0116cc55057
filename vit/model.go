package vit

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"vitc/autograd"
	"vitc/taylorattn"
)

// Model is a DeiT/timm ViT. Its parameters carry timm's state-dict names, so
// checkpoints load in timm and timm checkpoints load here. The model holds
// no hooks: what a technique changes in one forward pass it says in that
// pass's Pass.
type Model struct {
	Config
	Params *autograd.Params

	patchProj linear          // patch_embed.proj, conv weight [D, C, p, p] used as (D, C·p·p)
	clsToken  *autograd.Param // (1, 1, D)
	distToken *autograd.Param // (1, 1, D): a distilled DeiT's, else nil
	posEmbed  *autograd.Param // (1, N, D)
	blocks    []block         // blocks.i
	norm      layerNorm       // norm
	head      linear          // head
	headDist  linear          // head_dist: a distilled DeiT's, else nil weights
	attention AttentionFunc   // softmax or Taylor
}

type linear struct{ weight, bias *autograd.Param }

type layerNorm struct{ weight, bias *autograd.Param }

type block struct {
	heads        int
	norm1, norm2 layerNorm
	qkv, proj    linear
	fc1, fc2     linear
}

// AttentionFunc runs multi-head attention on a packed qkv (B, N, 3·D).
type AttentionFunc func(tp *autograd.Tape, qkv *autograd.Tensor, heads int, wantCLS bool) autograd.AttentionResult

var attentionFuncs = map[string]AttentionFunc{
	"softmax": autograd.SoftmaxAttention,
	"taylor":  taylorattn.Attention,
}

// LayerNormEps is timm's ViT LayerNorm epsilon, the default of Config.LNEps.
const LayerNormEps = 1e-6

// New builds a model with timm's initialisation, seeded.
func New(cfg Config, seed int64) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	attn, ok := attentionFuncs[cfg.Attention]
	if !ok {
		return nil, fmt.Errorf("attention kind %q is not available in this build", cfg.Attention)
	}
	m := &Model{Config: cfg, Params: autograd.NewParams(), attention: attn}
	ps := m.Params
	d, p, c := cfg.Dim, cfg.Patch, cfg.Channels
	m.patchProj = linear{ps.Add("patch_embed.proj.weight", d, c, p, p), ps.Add("patch_embed.proj.bias", d)}
	m.clsToken = ps.Add("cls_token", 1, 1, d)
	if cfg.DistToken {
		m.distToken = ps.Add("dist_token", 1, 1, d)
	}
	m.posEmbed = ps.Add("pos_embed", 1, cfg.Tokens(), d)
	addLinear := func(name string, out, in int) linear {
		return linear{ps.Add(name+".weight", out, in), ps.Add(name+".bias", out)}
	}
	addNorm := func(name string) layerNorm {
		return layerNorm{ps.Add(name+".weight", d), ps.Add(name+".bias", d)}
	}
	for i := 0; i < cfg.Depth; i++ {
		pre := fmt.Sprintf("blocks.%d.", i)
		a := cfg.HeadsAt(i) * cfg.HeadDim() // attention width: d unless heads were pruned
		m.blocks = append(m.blocks, block{
			heads: cfg.HeadsAt(i),
			norm1: addNorm(pre + "norm1"),
			qkv:   addLinear(pre+"attn.qkv", 3*a, d),
			proj:  addLinear(pre+"attn.proj", d, a),
			norm2: addNorm(pre + "norm2"),
			fc1:   addLinear(pre+"mlp.fc1", cfg.HiddenAt(i), d),
			fc2:   addLinear(pre+"mlp.fc2", d, cfg.HiddenAt(i)),
		})
	}
	m.norm = addNorm("norm")
	m.head = addLinear("head", cfg.Classes, d)
	if cfg.DistHead {
		m.headDist = addLinear("head_dist", cfg.Classes, d)
	}
	for _, name := range m.NoWeightDecay() {
		p, _ := ps.Get(name)
		p.Decay = false
	}
	m.initWeights(seed)
	return m, nil
}

// NoWeightDecay names the parameters AdamW must not decay beyond the rank
// rule (biases and norm gains, rank 1, are never decayed): the cls token and
// the position embedding, as timm's VisionTransformer.no_weight_decay().
func (m *Model) NoWeightDecay() []string {
	if m.DistToken {
		return []string{"cls_token", "dist_token", "pos_embed"}
	}
	return []string{"cls_token", "pos_embed"}
}

// Forward maps normalised images (B, C, H, W) to logits (B, classes) with
// no extension: the model as its checkpoint defines it.
func (m *Model) Forward(tp *autograd.Tape, images *autograd.Tensor) *autograd.Tensor {
	return m.ForwardPass(&Pass{Tape: tp}, images)
}

// ForwardPass is Forward on the native engine with the extensions of p.
func (m *Model) ForwardPass(p *Pass, images *autograd.Tensor) *autograd.Tensor {
	keep := m.TokenKeep
	if p.KeepRate != nil {
		keep = p.KeepRate.KeepRate()
	}
	return Define[*autograd.Tensor](m, &tapeOps{m: m, p: p}, images, keep)
}

// Define is the ViT, written once over the operations of an executor
// (Ops): the native engine runs it on an autograd tape, and another engine
// can build its own graph from it. keep is the token keep rate at the
// blocks that prune tokens (1: none pruned).
func Define[T any](m *Model, ops Ops[T], images T, keep float64) T {
	patches := ops.Patches(images, m.Patch)                          // (B, P, C·p·p)
	emb := ops.Linear(patches, m.patchProj.weight, m.patchProj.bias) // (B, P, D)
	if m.distToken != nil {
		emb = ops.PrependToken(emb, m.distToken) // (B, P+1, D): the distillation token first
	}
	x := ops.Tokens(emb, m.clsToken, m.posEmbed) // (B, N, D)
	br, _ := any(ops).(blockRunner[T])
	for i := range m.blocks {
		if br != nil {
			x = br.Block(i, x, func(ops Ops[T], x T) T { return defineBlock(m, ops, i, x, keep) })
		} else {
			x = defineBlock(m, ops, i, x, keep)
		}
	}
	x = ops.LayerNorm(x, m.norm.weight, m.norm.bias, m.Eps())         // (B, N', D)
	logits := ops.Linear(ops.Token(x, 0), m.head.weight, m.head.bias) // (B, classes)
	if m.headDist.weight != nil {
		// DeiT at inference: the mean of the cls and distillation heads.
		dist := ops.Linear(ops.Token(x, 1), m.headDist.weight, m.headDist.bias)
		logits = ops.Mean(logits, dist)
	}
	return logits
}

// defineBlock is one pre-norm transformer block.
func defineBlock[T any](m *Model, ops Ops[T], i int, x T, keep float64) T {
	b := &m.blocks[i]
	h := ops.LayerNorm(x, b.norm1.weight, b.norm1.bias, m.Eps()) // (B, N, D)
	qkv := ops.Linear(h, b.qkv.weight, b.qkv.bias)               // (B, N, 3·A), A = heads·d_head
	prune := keep > 0 && keep < 1 && slices.Contains(m.TokenLayers, i)
	attn, cls := ops.Attention(i, qkv, b.heads, prune)           // (B, N, A); (B, N) when pruning
	x = ops.Add(x, ops.Linear(attn, b.proj.weight, b.proj.bias)) // (B, N, D)
	if prune {
		x = ops.KeepFuse(i, x, cls, keep) // (B, k+2, D)
	}
	h = ops.LayerNorm(x, b.norm2.weight, b.norm2.bias, m.Eps())
	h = ops.Linear(h, b.fc1.weight, b.fc1.bias) // (B, N', hidden)
	h = ops.GELU(h)
	h = ops.Linear(h, b.fc2.weight, b.fc2.bias) // (B, N', D)
	return ops.Add(x, h)
}

// LayerID is the depth of a parameter for layer-wise learning-rate decay, as
// timm's ViT groups it: 0 for the embedding (patch_embed, cls_token,
// pos_embed), i+1 for blocks.i, and Depth+1 for the final norm and the head
// (and for anything else a component registered).
func (m *Model) LayerID(name string) int {
	switch {
	case strings.HasPrefix(name, "patch_embed.") || name == "cls_token" || name == "pos_embed":
		return 0
	case strings.HasPrefix(name, "blocks."):
		rest := name[len("blocks."):]
		if dot := strings.IndexByte(rest, '.'); dot > 0 {
			if i, err := strconv.Atoi(rest[:dot]); err == nil && i >= 0 && i < m.Depth {
				return i + 1
			}
		}
	}
	return m.Depth + 1
}
