// Package onnx writes a vitc ViT as an ONNX model, the way out of vitc for
// a float model that should run on CPUs and GPUs (onnxruntime and the
// like): softmax and Taylor attention, pruned models (their compacted
// heads and MLP widths, and block-pruned weights, which vitc stores with
// the pruned blocks as zeros) and token pruning as a top-k gather.
//
// The graph is the model's own definition, vit.Define, run by an executor
// whose values are ONNX tensor names: every op of vit.Ops appends the nodes
// that compute it, so the exported graph cannot drift from the model.
// Opset 17 (for LayerNormalization); GELU is the exact erf form.
package onnx

import (
	"fmt"
	"io"
	"math"
	"strconv"

	"vitc/autograd"
	"vitc/internal/atomicfile"
	"vitc/tokenprune"
	"vitc/vit"
)

// Opset is the ONNX operator set the graph uses (LayerNormalization is in
// 17; ReduceMean still takes its axes as an attribute there).
const Opset = 17

// irVersion is the ONNX IR version of opset 17 (ONNX 1.12).
const irVersion = 8

// Input and output names of the graph.
const (
	InputName  = "pixel_values" // (batch, C, H, W), normalised as the model's Meta says
	OutputName = "logits"       // (batch, classes)
)

// Write writes m as an ONNX model to path, atomically. The batch dimension
// is free; the image size is the model's.
func Write(path string, m *vit.Model, version string) error {
	b, err := Encode(m, version)
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(path, b)
}

// WriteTo writes the same bytes as Write to w.
func WriteTo(w io.Writer, m *vit.Model, version string) error {
	b, err := Encode(m, version)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// Encode is the ONNX ModelProto of m; version is the producer version
// recorded in it.
func Encode(m *vit.Model, version string) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	g := &graph{m: m, n: m.Tokens(), consts: map[string]string{}, params: map[string]string{}}
	logits := vit.Define[string](m, g, InputName, m.TokenKeep)
	g.add("Identity", []string{logits}, []string{OutputName})
	in := valueInfo(InputName, -1, int64(m.Channels), int64(m.Image), int64(m.Image))
	out := valueInfo(OutputName, -1, int64(m.Classes))
	return model("vitc_vit", g.nodes, g.inits, []msg{in}, []msg{out}, Opset, version), nil
}

// graph is the executor: its values are tensor names.
type graph struct {
	m      *vit.Model
	nodes  []node
	inits  []tensor
	n      int               // tokens at this point of the model (static: the image size is)
	consts map[string]string // int64 constants by value
	params map[string]string // initializers by parameter and form
	seq    int
}

var _ vit.Ops[string] = (*graph)(nil)

func (g *graph) name(op string) string {
	g.seq++
	return op + "_" + strconv.Itoa(g.seq)
}

// add appends a node with the given outputs.
func (g *graph) add(op string, inputs, outputs []string, attrs ...attribute) {
	g.nodes = append(g.nodes, node{op: op, name: g.name(op + "_node"), inputs: inputs, outputs: outputs, attrs: attrs})
}

// op appends a node with one fresh output and returns its name.
func (g *graph) op(op string, inputs []string, attrs ...attribute) string {
	out := g.name(op)
	g.add(op, inputs, []string{out}, attrs...)
	return out
}

// ints is an int64 constant tensor (1-D, or a scalar with scalar).
func (g *graph) ints(vals ...int64) string {
	key := fmt.Sprint(vals)
	if n, ok := g.consts[key]; ok {
		return n
	}
	n := g.name("const")
	g.inits = append(g.inits, tensor{name: n, dims: []int64{int64(len(vals))}, kind: tInt64, i64: vals})
	g.consts[key] = n
	return n
}

// scalar is a float32 scalar constant.
func (g *graph) scalar(v float32) string {
	key := "f" + strconv.FormatFloat(float64(v), 'g', -1, 32)
	if n, ok := g.consts[key]; ok {
		return n
	}
	n := g.name("const")
	g.inits = append(g.inits, tensor{name: n, kind: tFloat, f32: []float32{v}})
	g.consts[key] = n
	return n
}

// param is a parameter as an initializer, as stored.
func (g *graph) param(p *autograd.Param) string {
	if n, ok := g.params[p.Name]; ok {
		return n
	}
	dims := make([]int64, len(p.Shape))
	for i, d := range p.Shape {
		dims[i] = int64(d)
	}
	g.inits = append(g.inits, tensor{name: p.Name, dims: dims, kind: tFloat, f32: p.Data})
	g.params[p.Name] = p.Name
	return p.Name
}

// weightT is a Linear weight [out, in...] as the MatMul operand [in, out].
func (g *graph) weightT(p *autograd.Param) string {
	key := p.Name + "ᵀ"
	if n, ok := g.params[key]; ok {
		return n
	}
	out := p.Shape[0]
	in := len(p.Data) / out
	t := make([]float32, len(p.Data))
	for o := 0; o < out; o++ {
		for i := 0; i < in; i++ {
			t[i*out+o] = p.Data[o*in+i]
		}
	}
	n := p.Name + ".T"
	g.inits = append(g.inits, tensor{name: n, dims: []int64{int64(in), int64(out)}, kind: tFloat, f32: t})
	g.params[key] = n
	return n
}

// Patches cuts (B, C, H, W) into (B, P, C·p·p), row-major over the patch
// grid, each patch flattened as a conv weight [C, p, p].
func (g *graph) Patches(x string, p int) string {
	m := g.m
	side := int64(m.Image / p)
	c, pp := int64(m.Channels), int64(p)
	x = g.op("Reshape", []string{x, g.ints(-1, c, side, pp, side, pp)})
	x = g.op("Transpose", []string{x}, intsAttr("perm", 0, 2, 4, 1, 3, 5)) // (B, side, side, C, p, p)
	return g.op("Reshape", []string{x, g.ints(-1, side*side, c*pp*pp)})
}

func (g *graph) Linear(x string, w, b *autograd.Param) string {
	y := g.op("MatMul", []string{x, g.weightT(w)})
	return g.op("Add", []string{y, g.param(b)})
}

func (g *graph) LayerNorm(x string, w, b *autograd.Param, eps float64) string {
	return g.op("LayerNormalization", []string{x, g.param(w), g.param(b)}, intAttr("axis", -1), floatAttr("epsilon", float32(eps)))
}

// Tokens prepends the cls token, broadcast over the batch, and adds the
// position embedding.
func (g *graph) Tokens(emb string, cls, pos *autograd.Param) string {
	// (B, 1, D): the batch taken from emb's shape.
	batch := g.op("Slice", []string{g.op("Shape", []string{emb}), g.ints(0), g.ints(1)})
	shape := g.op("Concat", []string{batch, g.ints(1, int64(g.m.Dim))}, intAttr("axis", 0))
	c := g.op("Expand", []string{g.param(cls), shape})
	x := g.op("Concat", []string{c, emb}, intAttr("axis", 1))
	return g.op("Add", []string{x, g.param(pos)})
}

// PrependToken puts a learned token (1, 1, D) in front of every sequence.
func (g *graph) PrependToken(x string, tok *autograd.Param) string {
	batch := g.op("Slice", []string{g.op("Shape", []string{x}), g.ints(0), g.ints(1)})
	shape := g.op("Concat", []string{batch, g.ints(1, int64(g.m.Dim))}, intAttr("axis", 0))
	t := g.op("Expand", []string{g.param(tok), shape})
	return g.op("Concat", []string{t, x}, intAttr("axis", 1))
}

// Mean is (a + b)/2.
func (g *graph) Mean(a, b string) string {
	return g.op("Mul", []string{g.op("Add", []string{a, b}), g.scalar(0.5)})
}

// heads splits qkv (B, N, 3·A) into q, k, v (B, H, N, d), timm's layout.
func (g *graph) heads(qkv string, heads int) (q, k, v string) {
	d := int64(g.m.HeadDim())
	x := g.op("Reshape", []string{qkv, g.ints(0, int64(g.n), 3, int64(heads), d)})
	x = g.op("Transpose", []string{x}, intsAttr("perm", 2, 0, 3, 1, 4)) // (3, B, H, N, d)
	pick := func(i int64) string {
		return g.op("Squeeze", []string{g.op("Slice", []string{x, g.ints(i), g.ints(i + 1), g.ints(0)}), g.ints(0)})
	}
	return pick(0), pick(1), pick(2)
}

// Attention is the model's attention kind on qkv, and with wantCLS the cls
// query's attention to every token averaged over the heads (B, N).
func (g *graph) Attention(layer int, qkv string, heads int, wantCLS bool) (out, cls string) {
	q, k, v := g.heads(qkv, heads)
	s := g.scalar(float32(1 / math.Sqrt(float64(g.m.HeadDim()))))
	var o string
	switch g.m.Attention {
	case "softmax":
		kt := g.op("Transpose", []string{k}, intsAttr("perm", 0, 1, 3, 2))
		scores := g.op("Mul", []string{g.op("MatMul", []string{q, kt}), s})
		p := g.op("Softmax", []string{scores}, intAttr("axis", -1)) // (B, H, N, N)
		o = g.op("MatMul", []string{p, v})
		if wantCLS {
			row := g.op("Squeeze", []string{g.op("Slice", []string{p, g.ints(0), g.ints(1), g.ints(2)}), g.ints(2)}) // (B, H, N)
			cls = g.op("ReduceMean", []string{row}, intsAttr("axes", 1), intAttr("keepdims", 0))
		}
	case "taylor":
		// out_i = (v̄ + s·q_i·K̂ᵀV) / (N + s·q_i·k̄), K̂ = K − mean_j K
		// (DESIGN.md; taylorattn.Attention), as plain matrix products.
		kh := g.op("Sub", []string{k, g.op("ReduceMean", []string{k}, intsAttr("axes", 2), intAttr("keepdims", 1))})
		kht := g.op("Transpose", []string{kh}, intsAttr("perm", 0, 1, 3, 2)) // (B, H, d, N)
		gm := g.op("MatMul", []string{kht, v})                               // (B, H, d, d)
		vbar := g.op("ReduceSum", []string{v, g.ints(2)}, intAttr("keepdims", 1))
		kbar := g.op("ReduceSum", []string{kh, g.ints(2)}, intAttr("keepdims", 1)) // (B, H, 1, d)
		num := g.op("Add", []string{g.op("Mul", []string{g.op("MatMul", []string{q, gm}), s}), vbar})
		qk := g.op("MatMul", []string{q, g.op("Transpose", []string{kbar}, intsAttr("perm", 0, 1, 3, 2))}) // (B, H, N, 1)
		den := g.op("Add", []string{g.op("Mul", []string{qk, s}), g.scalar(float32(g.n))})
		o = g.op("Div", []string{num, den})
		if wantCLS {
			// a_0j = (1 + s·q_0·k̂_j) / den_0
			q0 := g.op("Slice", []string{q, g.ints(0), g.ints(1), g.ints(2)})     // (B, H, 1, d)
			den0 := g.op("Slice", []string{den, g.ints(0), g.ints(1), g.ints(2)}) // (B, H, 1, 1)
			a := g.op("Add", []string{g.op("Mul", []string{g.op("MatMul", []string{q0, kht}), s}), g.scalar(1)})
			a = g.op("Squeeze", []string{g.op("Div", []string{a, den0}), g.ints(2)}) // (B, H, N)
			cls = g.op("ReduceMean", []string{a}, intsAttr("axes", 1), intAttr("keepdims", 0))
		}
	default:
		panic("onnx: attention kind " + g.m.Attention)
	}
	o = g.op("Transpose", []string{o}, intsAttr("perm", 0, 2, 1, 3)) // (B, N, H, d)
	return g.op("Reshape", []string{o, g.ints(0, int64(g.n), int64(heads*g.m.HeadDim()))}), cls
}

// KeepFuse is EViT's keep-and-fuse (tokenprune.KeepFuse) as a top-k
// gather: the cls token, the k patch tokens of highest cls attention in
// their original order (TopK breaks ties towards the lower index, as vitc
// does), and one token Σ_dropped score_j·x_j.
func (g *graph) KeepFuse(layer int, x, cls string, keep float64) string {
	n := g.n
	k := tokenprune.KeepCount(n, keep)
	if k >= n-1 {
		return x
	}
	d := int64(g.m.Dim)
	scores := g.op("Slice", []string{cls, g.ints(1), g.ints(int64(n)), g.ints(1)}) // (B, N−1)
	patches := g.op("Slice", []string{x, g.ints(1), g.ints(int64(n)), g.ints(1)})  // (B, N−1, D)
	first := g.op("Slice", []string{x, g.ints(0), g.ints(1), g.ints(1)})           // (B, 1, D)
	vals, idx := g.name("TopK"), g.name("TopK")
	g.add("TopK", []string{scores, g.ints(int64(k))}, []string{vals, idx}, intAttr("axis", 1), intAttr("largest", 1), intAttr("sorted", 1))
	// Ascending token order: the largest of −idx first.
	neg, order := g.name("TopK"), g.name("TopK")
	g.add("TopK", []string{g.op("Neg", []string{idx}), g.ints(int64(k))}, []string{neg, order}, intAttr("axis", 1), intAttr("largest", 1), intAttr("sorted", 1))
	asc := g.op("Neg", []string{neg}) // (B, k)
	gather := g.op("Expand", []string{g.op("Unsqueeze", []string{asc, g.ints(2)}), g.ints(1, 1, d)})
	kept := g.op("GatherElements", []string{patches, gather}, intAttr("axis", 1)) // (B, k, D)
	// Fusion weights: the scores of the dropped tokens (kept ones zeroed).
	zeros := g.op("Mul", []string{scores, g.scalar(0)})
	ones := g.op("Add", []string{g.op("Mul", []string{vals, g.scalar(0)}), g.scalar(1)})
	keptMask := g.op("ScatterElements", []string{zeros, idx, ones}, intAttr("axis", 1))
	w := g.op("Mul", []string{scores, g.op("Sub", []string{g.scalar(1), keptMask})})
	fused := g.op("MatMul", []string{g.op("Unsqueeze", []string{w, g.ints(1)}), patches}) // (B, 1, D)
	g.n = k + 2
	return g.op("Concat", []string{first, kept, fused}, intAttr("axis", 1))
}

func (g *graph) Add(a, b string) string { return g.op("Add", []string{a, b}) }

// GELU is the exact form 0.5·x·(1 + erf(x/√2)).
func (g *graph) GELU(x string) string {
	e := g.op("Erf", []string{g.op("Mul", []string{x, g.scalar(float32(1 / math.Sqrt2))})})
	return g.op("Mul", []string{g.op("Mul", []string{x, g.scalar(0.5)}), g.op("Add", []string{e, g.scalar(1)})})
}

// Token selects token i: (B, N, D) → (B, D).
func (g *graph) Token(x string, i int) string {
	return g.op("Squeeze", []string{g.op("Slice", []string{x, g.ints(int64(i)), g.ints(int64(i + 1)), g.ints(1)}), g.ints(1)})
}
