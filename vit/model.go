package vit

import (
	"fmt"
	"math"
	"strings"

	"vitc/autograd"
	"vitc/taylorattn"
	"vitc/tokenprune"
)

// Model is a DeiT/timm ViT. Its parameters carry timm's state-dict names, so
// checkpoints load in timm and timm checkpoints load here.
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

	// Hooks let compression techniques change the forward pass without a new
	// model: WeightView replaces a weight by its masked view (block pruning).
	WeightView func(tp *autograd.Tape, p *autograd.Param) *autograd.Tensor
	// AttentionHook may change a layer's attention result (Taylor's sparse
	// training branch adds its correction here).
	AttentionHook func(tp *autograd.Tape, layer int, qkv *autograd.Tensor, heads int, res autograd.AttentionResult) autograd.AttentionResult
	// LiveHeads marks the heads of a layer that token pruning averages cls
	// attention over (nil: all): block pruning leaves out the heads that
	// compaction will remove, so the compacted model ranks tokens alike.
	LiveHeads func(layer int) []bool
	// TokensKept, when set, receives each token-pruning layer's kept token
	// indices per image (tokenprune.KeepFuse's second result).
	TokensKept func(layer int, kept [][]int)
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

// LayerNormEps is timm's ViT LayerNorm epsilon.
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

func (m *Model) weight(tp *autograd.Tape, p *autograd.Param) *autograd.Tensor {
	if m.WeightView != nil {
		return m.WeightView(tp, p)
	}
	return p.Tensor
}

func (m *Model) linear(tp *autograd.Tape, l linear, x *autograd.Tensor) *autograd.Tensor {
	return autograd.Linear(tp, x, m.weight(tp, l.weight), l.bias.Tensor)
}

func (m *Model) layerNorm(tp *autograd.Tape, l layerNorm, x *autograd.Tensor) *autograd.Tensor {
	return autograd.LayerNorm(tp, x, l.weight.Tensor, l.bias.Tensor, LayerNormEps)
}

// Forward maps normalised images (B, C, H, W) to logits (B, classes).
func (m *Model) Forward(tp *autograd.Tape, images *autograd.Tensor) *autograd.Tensor {
	patches := autograd.Im2Patches(tp, images, m.Patch)                           // (B, P, C·p·p)
	emb := m.linear(tp, m.patchProj, patches)                                     // (B, P, D)
	x := autograd.PrependCLSAddPos(tp, emb, m.clsToken.Tensor, m.posEmbed.Tensor) // (B, N, D)
	for i := range m.blocks {
		x = m.block(tp, i, x)
	}
	x = m.layerNorm(tp, m.norm, x)        // (B, N', D)
	cls := autograd.SelectToken(tp, x, 0) // (B, D)
	return m.linear(tp, m.head, cls)      // (B, classes)
}

// block is one pre-norm transformer block.
func (m *Model) block(tp *autograd.Tape, i int, x *autograd.Tensor) *autograd.Tensor {
	b := &m.blocks[i]
	h := m.layerNorm(tp, b.norm1, x) // (B, N, D)
	qkv := m.linear(tp, b.qkv, h)    // (B, N, 3·A), A = heads·d_head
	// A keep-rate schedule changes m.TokenKeep while training.
	prune := m.PrunesTokens(i)
	attn := m.attention(tp, qkv, b.heads, prune)
	if m.AttentionHook != nil {
		attn = m.AttentionHook(tp, i, qkv, b.heads, attn)
	}
	a := m.linear(tp, b.proj, attn.Out) // (B, N, D)
	x = autograd.Add(tp, x, a)
	if prune {
		var live []bool
		if m.LiveHeads != nil {
			live = m.LiveHeads(i)
		}
		var kept [][]int
		x, kept = tokenprune.KeepFuse(tp, x, attn.MeanCLS(live), m.TokenKeep) // (B, k+2, D)
		if m.TokensKept != nil {
			m.TokensKept(i, kept)
		}
	}
	h = m.layerNorm(tp, b.norm2, x)
	h = m.linear(tp, b.fc1, h) // (B, N', hidden)
	h = autograd.GELU(tp, h)
	h = m.linear(tp, b.fc2, h) // (B, N', D)
	return autograd.Add(tp, x, h)
}
