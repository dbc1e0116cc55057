// Package gorgoniavit builds vitc's ViT as a Gorgonia expression graph, from
// the same definition the native engine runs (vit.Define): softmax or Taylor
// attention, block-pruning masks and token pruning included. Parameters are
// input nodes named by timm's state-dict keys whose tensors share memory with
// the model's parameters, so a checkpoint loaded into the model is the
// graph's, and an update to the parameters is seen by the next run.
//
// Gorgonia lacks several of the ViT's ops or gets them subtly wrong (exact
// GELU, LayerNorm, a stable softmax, fused and Taylor attention, token
// keep-and-fuse), so each of those is a Gorgonia Op that runs vitc's own
// forward kernel in Do and its own backward kernel as its gradient: the
// maths is written once, in autograd and the technique packages. Residual
// additions are Gorgonia's own Add. Engine plugs the graph into vitc's
// training loop (vitc train --engine gorgonia).
package gorgoniavit

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"vitc/autograd"
	"vitc/tokenprune"
	"vitc/vit"
)

// Option changes how Build builds the graph.
type Option func(*builder)

// WithPass applies the extensions of p (weight views such as block masks,
// attention hooks such as Taylor attention's sparse branch, head filters,
// the token keep rate and kept-token observers) in every run of the graph,
// as the native engine applies them. Their state is read when the graph
// runs, so a schedule that changes masks between runs is followed; the keep
// rate alone is read when the graph is built, as it fixes the token counts
// (Engine builds one graph per token-count signature). p.Tape is not used:
// each op runs on a tape of its own.
func WithPass(p *vit.Pass) Option { return func(b *builder) { b.pass = p } }

// Inference builds a graph that is only run forward: its ops record no
// backward pass, and training-only extensions (the sparse branch) stay off.
func Inference() Option { return func(b *builder) { b.train = false } }

type builder struct {
	g     *gorgonia.ExprGraph
	m     *vit.Model
	pass  *vit.Pass
	train bool
	err   error
}

// Build adds m's forward pass on the normalised images x (B, C, H, W) to g
// and returns the logits (B, classes). The token keep rate is the pass's
// (WithPass) or the model's. Each parameter the model uses becomes an input
// node of g named by its timm name (ParamNodes); a node already in g by that
// name is reused, so a second Build shares the weights.
func Build(g *gorgonia.ExprGraph, m *vit.Model, x *gorgonia.Node, opts ...Option) (logits *gorgonia.Node, err error) {
	b := &builder{g: g, m: m, pass: &vit.Pass{}, train: true}
	for _, o := range opts {
		o(b)
	}
	if sh := x.Shape(); x.Dtype() != tensor.Float32 || len(sh) != 4 || sh[0] < 1 ||
		!sh.Eq(tensor.Shape{sh[0], m.Channels, m.Image, m.Image}) {
		return nil, fmt.Errorf("images node is %v %v, want float32 (B, %d, %d, %d)", x.Dtype(), sh, m.Channels, m.Image, m.Image)
	}
	keep := m.TokenKeep
	if b.pass.KeepRate != nil {
		keep = b.pass.KeepRate.KeepRate()
	}
	defer func() {
		// Define cannot return an error: an op that fails records it and
		// returns nil, and a nil node reaching Gorgonia panics.
		if r := recover(); r != nil {
			if b.err == nil {
				panic(r)
			}
		}
		if b.err != nil {
			logits, err = nil, b.err
		}
	}()
	logits = vit.Define[*gorgonia.Node](m, b, x, keep)
	return logits, nil
}

// ParamNodes returns the parameter nodes Build added to g for m, by timm
// name. Parameters the graph does not use (e.g. a component's scores) are
// absent.
func ParamNodes(g *gorgonia.ExprGraph, m *vit.Model) map[string]*gorgonia.Node {
	out := map[string]*gorgonia.Node{}
	for _, p := range m.Params.List() {
		if ns := g.ByName(p.Name); len(ns) > 0 {
			out[p.Name] = ns[0]
		}
	}
	return out
}

// param is p's input node, sharing p's memory.
func (b *builder) param(p *autograd.Param) *gorgonia.Node {
	if ns := b.g.ByName(p.Name); len(ns) > 0 {
		return ns[0]
	}
	v := tensor.New(tensor.WithShape(p.Shape...), tensor.WithBacking(p.Data))
	return gorgonia.NewTensor(b.g, tensor.Float32, len(p.Shape), gorgonia.WithShape(p.Shape...),
		gorgonia.WithName(p.Name), gorgonia.WithValue(v))
}

// native is the native executor on tape tp with the extensions of the
// graph's pass.
func (b *builder) native(tp *autograd.Tape) (vit.Ops[*autograd.Tensor], *vit.Pass) {
	p := *b.pass
	p.Tape = tp
	return vit.NativeOps(b.m, &p), &p
}

// apply adds a segment running fn on inputs (params[i] non-nil where input
// i is that parameter) whose output has shape out.
func (b *builder) apply(name string, out tensor.Shape, diff []bool, params []*autograd.Param, inputs []*gorgonia.Node,
	fn func(tp *autograd.Tape, in []*autograd.Tensor) *autograd.Tensor) (*segment, *gorgonia.Node) {
	if b.err != nil {
		return nil, nil
	}
	shapes := make([]tensor.Shape, len(inputs))
	for i, n := range inputs {
		shapes[i] = n.Shape().Clone()
	}
	s := newSegment(name, b.train, params, diff, shapes, out, fn)
	n, err := gorgonia.ApplyOp(s, inputs...)
	if err != nil {
		b.err = fmt.Errorf("%s: %w", name, err)
		return nil, nil
	}
	return s, n
}

func (b *builder) Patches(x *gorgonia.Node, p int) *gorgonia.Node {
	if b.err != nil {
		return nil
	}
	sh := x.Shape()
	out := tensor.Shape{sh[0], (sh[2] / p) * (sh[3] / p), sh[1] * p * p}
	_, n := b.apply("patches", out, []bool{true}, nil, []*gorgonia.Node{x},
		func(tp *autograd.Tape, in []*autograd.Tensor) *autograd.Tensor {
			ops, _ := b.native(tp)
			return ops.Patches(in[0], p)
		})
	return n
}

func (b *builder) Linear(x *gorgonia.Node, w, bias *autograd.Param) *gorgonia.Node {
	if b.err != nil {
		return nil
	}
	out := x.Shape().Clone()
	out[len(out)-1] = w.Shape[0]
	_, n := b.apply("linear:"+w.Name, out, []bool{true, true, true}, []*autograd.Param{nil, w, bias},
		[]*gorgonia.Node{x, b.param(w), b.param(bias)},
		func(tp *autograd.Tape, in []*autograd.Tensor) *autograd.Tensor {
			_, pass := b.native(tp)
			// The views (block masks) see the parameter itself, as
			// natively, and its values as this op's copy.
			return autograd.Linear(tp, in[0], pass.View(w, in[1]), in[2])
		})
	return n
}

func (b *builder) LayerNorm(x *gorgonia.Node, g, bias *autograd.Param, eps float64) *gorgonia.Node {
	if b.err != nil {
		return nil
	}
	_, n := b.apply("layernorm:"+g.Name, x.Shape().Clone(), []bool{true, true, true}, []*autograd.Param{nil, g, bias},
		[]*gorgonia.Node{x, b.param(g), b.param(bias)},
		func(tp *autograd.Tape, in []*autograd.Tensor) *autograd.Tensor {
			return autograd.LayerNorm(tp, in[0], in[1], in[2], eps)
		})
	return n
}

func (b *builder) Tokens(emb *gorgonia.Node, cls, pos *autograd.Param) *gorgonia.Node {
	if b.err != nil {
		return nil
	}
	sh := emb.Shape()
	_, n := b.apply("tokens", tensor.Shape{sh[0], sh[1] + 1, sh[2]}, []bool{true, true, true},
		[]*autograd.Param{nil, cls, pos}, []*gorgonia.Node{emb, b.param(cls), b.param(pos)},
		func(tp *autograd.Tape, in []*autograd.Tensor) *autograd.Tensor {
			return autograd.PrependCLSAddPos(tp, in[0], in[1], in[2])
		})
	return n
}

func (b *builder) PrependToken(x *gorgonia.Node, tok *autograd.Param) *gorgonia.Node {
	if b.err != nil {
		return nil
	}
	sh := x.Shape()
	_, n := b.apply("prepend:"+tok.Name, tensor.Shape{sh[0], sh[1] + 1, sh[2]}, []bool{true, true},
		[]*autograd.Param{nil, tok}, []*gorgonia.Node{x, b.param(tok)},
		func(tp *autograd.Tape, in []*autograd.Tensor) *autograd.Tensor {
			return autograd.PrependToken(tp, in[0], in[1])
		})
	return n
}

func (b *builder) Mean(x, y *gorgonia.Node) *gorgonia.Node {
	if b.err != nil {
		return nil
	}
	_, n := b.apply("mean", x.Shape().Clone(), []bool{true, true}, nil, []*gorgonia.Node{x, y},
		func(tp *autograd.Tape, in []*autograd.Tensor) *autograd.Tensor {
			return autograd.Scale(tp, autograd.Add(tp, in[0], in[1]), 0.5)
		})
	return n
}

func (b *builder) Attention(layer int, qkv *gorgonia.Node, heads int, wantCLS bool) (out, cls *gorgonia.Node) {
	if b.err != nil {
		return nil, nil
	}
	sh := qkv.Shape()
	var scores []float32
	_, out = b.apply(fmt.Sprintf("attention%d", layer), tensor.Shape{sh[0], sh[1], sh[2] / 3}, []bool{true}, nil,
		[]*gorgonia.Node{qkv},
		func(tp *autograd.Tape, in []*autograd.Tensor) *autograd.Tensor {
			ops, _ := b.native(tp)
			y, c := ops.Attention(layer, in[0], heads, wantCLS)
			if c != nil {
				scores = append(scores[:0], c.Data...)
			}
			return y
		})
	if !wantCLS || out == nil {
		return out, nil
	}
	ro := &readOnly{id: segmentIDs.Add(1), name: fmt.Sprintf("cls%d", layer), in: out.Shape().Clone(),
		out: tensor.Shape{sh[0], sh[1]}, value: func() []float32 { return scores }}
	cls, err := gorgonia.ApplyOp(ro, out)
	if err != nil {
		b.err = fmt.Errorf("cls scores of layer %d: %w", layer, err)
		return nil, nil
	}
	return out, cls
}

func (b *builder) KeepFuse(layer int, x, cls *gorgonia.Node, keep float64) *gorgonia.Node {
	if b.err != nil {
		return nil
	}
	out := KeptShape(x.Shape(), keep)
	_, n := b.apply(fmt.Sprintf("keepfuse%d", layer), out, []bool{true, false}, nil, []*gorgonia.Node{x, cls},
		func(tp *autograd.Tape, in []*autograd.Tensor) *autograd.Tensor {
			ops, _ := b.native(tp)
			return ops.KeepFuse(layer, in[0], in[1], keep)
		})
	return n
}

// KeptShape is the shape of tokenprune.KeepFuse's result on x (B, N, D):
// (B, k+2, D), or x's own shape when it keeps every token.
func KeptShape(x tensor.Shape, keep float64) tensor.Shape {
	out := x.Clone()
	if k := tokenprune.KeepCount(x[1], keep); k < x[1]-1 {
		out[1] = k + 2
	}
	return out
}

// Add is Gorgonia's own: an element-wise sum needs no vitc kernel.
func (b *builder) Add(x, y *gorgonia.Node) *gorgonia.Node {
	if b.err != nil {
		return nil
	}
	n, err := gorgonia.Add(x, y)
	if err != nil {
		b.err = fmt.Errorf("residual add: %w", err)
	}
	return n
}

func (b *builder) GELU(x *gorgonia.Node) *gorgonia.Node {
	if b.err != nil {
		return nil
	}
	_, n := b.apply("gelu", x.Shape().Clone(), []bool{true}, nil, []*gorgonia.Node{x},
		func(tp *autograd.Tape, in []*autograd.Tensor) *autograd.Tensor {
			ops, _ := b.native(tp)
			return ops.GELU(in[0])
		})
	return n
}

func (b *builder) Token(x *gorgonia.Node, i int) *gorgonia.Node {
	if b.err != nil {
		return nil
	}
	sh := x.Shape()
	_, n := b.apply(fmt.Sprintf("token%d", i), tensor.Shape{sh[0], sh[2]}, []bool{true}, nil, []*gorgonia.Node{x},
		func(tp *autograd.Tape, in []*autograd.Tensor) *autograd.Tensor {
			ops, _ := b.native(tp)
			return ops.Token(in[0], i)
		})
	return n
}
