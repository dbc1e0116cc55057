package vit

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"vitc/autograd"
	"vitc/taylorattn"
	"vitc/tokenprune"
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
	posEmbed  *autograd.Param // (1, N, D)
	blocks    []block         // blocks.i
	norm      layerNorm       // norm
	head      linear          // head
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
	for _, name := range m.NoWeightDecay() {
		p, _ := ps.Get(name)
		p.Decay = false
	}
	m.initWeights(seed)
	return m, nil
}

// initWeights follows timm: trunc_normal(.02) for Linear weights and
// pos_embed, zero biases, unit LayerNorm gains, normal(1e-6) cls_token, and
// torch's default (kaiming-uniform) Conv2d init for the patch projection.
func (m *Model) initWeights(seed int64) {
	rng := autograd.NewRNG(seed, 0x1a17)
	for _, p := range m.Params.List() {
		switch {
		case p.Name == "cls_token":
			for i := range p.Data {
				p.Data[i] = float32(rng.Normal() * 1e-6)
			}
		case p.Name == "pos_embed":
			rng.TruncNormal(p.Data, .02)
		case p.Name == "patch_embed.proj.weight" || p.Name == "patch_embed.proj.bias":
			bound := 1 / math.Sqrt(float64(m.Channels*m.Patch*m.Patch))
			for i := range p.Data {
				p.Data[i] = float32((2*rng.Float64() - 1) * bound)
			}
		case isNormWeight(p.Name):
			for i := range p.Data {
				p.Data[i] = 1
			}
		case len(p.Shape) == 2:
			rng.TruncNormal(p.Data, .02)
		}
	}
}

// Initialisation schemes of a fresh model (TrainOptions.InitScheme).
const (
	// InitTimm is timm's: trunc_normal(.02) Linear weights, made for large
	// models on long schedules; small models learn slowly from it.
	InitTimm = "timm"
	// InitTorch is what a plain PyTorch model gets from its modules'
	// constructors: U(±1/√fan_in) Linear and Conv2d weights and biases,
	// unit LayerNorm gains, pos_embed randn·0.02 and a zero cls_token.
	InitTorch = "torch"
)

// InitSchemes lists the schemes Reinit knows.
var InitSchemes = []string{InitTorch, InitTimm}

// Reinit draws fresh weights for m under the named scheme ("" is timm's,
// what New gives), seeded.
func (m *Model) Reinit(scheme string, seed int64) error {
	switch scheme {
	case "", InitTimm:
		for _, p := range m.Params.List() {
			clear(p.Data) // initWeights leaves biases as Add made them
		}
		m.initWeights(seed)
	case InitTorch:
		m.initTorch(seed)
	default:
		return fmt.Errorf("unknown init scheme %q (want %s)", scheme, strings.Join(InitSchemes, " or "))
	}
	return nil
}

// initTorch follows torch's module defaults (kaiming_uniform(a=√5) is
// U(±1/√fan_in)), which is what the reference PyTorch loop trains from: on
// small data at few epochs it learns far faster than timm's init.
func (m *Model) initTorch(seed int64) {
	rng := autograd.NewRNG(seed, 0x7a4c)
	uniform := func(x []float32, fanIn int) {
		bound := 1 / math.Sqrt(float64(fanIn))
		for i := range x {
			x[i] = float32((2*rng.Float64() - 1) * bound)
		}
	}
	ps := m.Params
	for _, p := range ps.List() {
		switch {
		case p.Name == "cls_token":
			clear(p.Data)
		case p.Name == "pos_embed":
			for i := range p.Data {
				p.Data[i] = float32(rng.Normal() * .02)
			}
		case isNormWeight(p.Name):
			for i := range p.Data {
				p.Data[i] = 1
			}
		case isNormBias(p.Name):
			clear(p.Data)
		case strings.HasSuffix(p.Name, ".weight"): // Linear (out, in) or Conv2d (D, C, p, p)
			uniform(p.Data, p.Len()/p.Shape[0])
		case strings.HasSuffix(p.Name, ".bias"): // fan_in of its weight
			w, _ := ps.Get(strings.TrimSuffix(p.Name, ".bias") + ".weight")
			uniform(p.Data, w.Len()/w.Shape[0])
		}
	}
}

func isNormBias(name string) bool {
	return isNormWeight(strings.TrimSuffix(name, ".bias") + ".weight")
}

func isNormWeight(name string) bool {
	for _, s := range []string{"norm1.weight", "norm2.weight", "norm.weight"} {
		if len(name) >= len(s) && name[len(name)-len(s):] == s {
			return true
		}
	}
	return false
}

// NoWeightDecay names the parameters AdamW must not decay beyond the rank
// rule (biases and norm gains, rank 1, are never decayed): the cls token and
// the position embedding, as timm's VisionTransformer.no_weight_decay().
func (m *Model) NoWeightDecay() []string { return []string{"cls_token", "pos_embed"} }

func (m *Model) linear(p *Pass, l linear, x *autograd.Tensor) *autograd.Tensor {
	return autograd.Linear(p.Tape, x, p.weight(l.weight), l.bias.Tensor)
}

func (m *Model) layerNorm(p *Pass, l layerNorm, x *autograd.Tensor) *autograd.Tensor {
	return autograd.LayerNorm(p.Tape, x, l.weight.Tensor, l.bias.Tensor, m.Eps())
}

// Forward maps normalised images (B, C, H, W) to logits (B, classes) with
// no extension: the model as its checkpoint defines it.
func (m *Model) Forward(tp *autograd.Tape, images *autograd.Tensor) *autograd.Tensor {
	return m.ForwardPass(&Pass{Tape: tp}, images)
}

// ForwardPass is Forward with the extensions of p applied.
func (m *Model) ForwardPass(p *Pass, images *autograd.Tensor) *autograd.Tensor {
	tp := p.Tape
	patches := autograd.Im2Patches(tp, images, m.Patch)                           // (B, P, C·p·p)
	emb := m.linear(p, m.patchProj, patches)                                      // (B, P, D)
	x := autograd.PrependCLSAddPos(tp, emb, m.clsToken.Tensor, m.posEmbed.Tensor) // (B, N, D)
	keep := m.TokenKeep
	if p.KeepRate != nil {
		keep = p.KeepRate.KeepRate()
	}
	for i := range m.blocks {
		x = m.block(p, i, x, keep)
	}
	x = m.layerNorm(p, m.norm, x)         // (B, N', D)
	cls := autograd.SelectToken(tp, x, 0) // (B, D)
	return m.linear(p, m.head, cls)       // (B, classes)
}

// block is one pre-norm transformer block; keep is this pass's token keep
// rate at the blocks that prune tokens.
func (m *Model) block(p *Pass, i int, x *autograd.Tensor, keep float64) *autograd.Tensor {
	tp := p.Tape
	b := &m.blocks[i]
	h := m.layerNorm(p, b.norm1, x) // (B, N, D)
	qkv := m.linear(p, b.qkv, h)    // (B, N, 3·A), A = heads·d_head
	prune := keep > 0 && keep < 1 && slices.Contains(m.TokenLayers, i)
	attn := m.attention(tp, qkv, b.heads, prune)
	for _, hook := range p.Attention {
		attn = hook.Attention(tp, i, qkv, b.heads, attn)
	}
	a := m.linear(p, b.proj, attn.Out) // (B, N, D)
	x = autograd.Add(tp, x, a)
	if prune {
		var kept [][]int
		x, kept = tokenprune.KeepFuse(tp, x, meanCLS(attn, p.liveHeads(i)), keep) // (B, k+2, D)
		for _, o := range p.Kept {
			o.KeptTokens(i, kept)
		}
	}
	h = m.layerNorm(p, b.norm2, x)
	h = m.linear(p, b.fc1, h) // (B, N', hidden)
	h = autograd.GELU(tp, h)
	h = m.linear(p, b.fc2, h) // (B, N', D)
	return autograd.Add(tp, x, h)
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
