package gorgoniavit

import (
	"fmt"
	"hash"
	"hash/fnv"
	"slices"
	"sync/atomic"

	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"vitc/autograd"
)

// segment is a Gorgonia Op that runs a piece of vitc's native computation:
// Do runs fn (vitc's forward kernels) on the segment's own autograd tape and
// keeps that tape, and the gradient ops it hands Gorgonia (segmentGrad) run
// the tape's backward pass (vitc's backward kernels). Gorgonia schedules,
// differentiates the graph and sums gradients; no maths is written here.
//
// Each application is its own Op value with a unique id in its hash, so
// Gorgonia never merges two applications into one node: each holds its own
// tape.
type segment struct {
	id   uint64
	name string
	// params[i] is the parameter behind input i (nil for activations):
	// a frozen parameter's copy needs no gradient, as natively.
	params []*autograd.Param
	diff   []bool // inputs the op is differentiable in
	ins    []tensor.Shape
	out    tensor.Shape // empty: a scalar
	fn     func(tp *autograd.Tape, in []*autograd.Tensor) *autograd.Tensor

	// tape records the forward pass; a segment given one (the loss, on the
	// training loop's tape) does not reset it, as the loop owns it.
	tape    *autograd.Tape
	ownTape bool
	// wanted marks inputs whose gradient the graph asks for (SymDiff
	// created their gradient op): only those copies need one, so a
	// forward-only graph records no backward pass.
	wanted []bool

	in        []*autograd.Tensor
	res       *autograd.Tensor
	runs, bwd int // forward runs, and the run whose backward has been done
	// value is the output handed to Gorgonia, reused each run: by the next
	// run every value of the previous one is dead (the machine resets its
	// registers), so nothing reads it while it is rewritten.
	value *tensor.Dense
}

var segmentIDs atomic.Uint64

func newSegment(name string, train bool, params []*autograd.Param, diff []bool, ins []tensor.Shape, out tensor.Shape,
	fn func(tp *autograd.Tape, in []*autograd.Tensor) *autograd.Tensor) *segment {
	if params == nil {
		params = make([]*autograd.Param, len(ins))
	}
	return &segment{id: segmentIDs.Add(1), name: name, params: params, diff: diff, ins: ins, out: out, fn: fn,
		tape: autograd.NewTape(train), ownTape: true, wanted: make([]bool, len(ins))}
}

func (s *segment) Arity() int { return len(s.ins) }

func (s *segment) Type() hm.Type {
	ts := make([]hm.Type, 0, len(s.ins)+1)
	for _, sh := range s.ins {
		ts = append(ts, valueType(sh))
	}
	return hm.NewFnType(append(ts, valueType(s.out))...)
}

// valueType is Gorgonia's type of a float32 value of shape sh.
func valueType(sh tensor.Shape) hm.Type {
	if len(sh) == 0 {
		return tensor.Float32
	}
	return gorgonia.TensorType{Dims: len(sh), Of: tensor.Float32}
}

func (s *segment) InferShape(ds ...gorgonia.DimSizer) (tensor.Shape, error) {
	if len(ds) != len(s.ins) {
		return nil, fmt.Errorf("%s: %d inputs, want %d", s.name, len(ds), len(s.ins))
	}
	return s.out.Clone(), nil
}

func (s *segment) ReturnsPtr() bool      { return false }
func (s *segment) CallsExtern() bool     { return false }
func (s *segment) OverwritesInput() int  { return -1 }
func (s *segment) WriteHash(h hash.Hash) { fmt.Fprintf(h, "vitc.%s#%d", s.name, s.id) }
func (s *segment) Hashcode() uint32      { return hashOf(s) }
func (s *segment) String() string        { return fmt.Sprintf("vitc.%s#%d", s.name, s.id) }

func hashOf(op interface{ WriteHash(hash.Hash) }) uint32 {
	h := fnv.New32a()
	op.WriteHash(h)
	return h.Sum32()
}

// Do copies the inputs onto the segment's tape (the segment's backward pass
// reads them after Gorgonia may have reused their registers) and runs the
// native forward pass.
func (s *segment) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	if len(vals) != len(s.ins) {
		return nil, fmt.Errorf("%s: %d inputs, want %d", s.name, len(vals), len(s.ins))
	}
	if s.ownTape {
		s.tape.Reset()
	}
	s.in = s.in[:0]
	for i, v := range vals {
		data, err := floats(v)
		if err != nil {
			return nil, fmt.Errorf("%s input %d: %w", s.name, i, err)
		}
		t := s.tape.New(false, s.ins[i]...)
		if len(data) != t.Len() {
			return nil, fmt.Errorf("%s input %d: %d values for shape %v", s.name, i, len(data), s.ins[i])
		}
		copy(t.Data, data)
		if s.wanted[i] && s.tape.Grad() && (s.params[i] == nil || s.params[i].NeedsGrad()) {
			t.SetNeedsGrad()
		}
		s.in = append(s.in, t)
	}
	s.res = s.fn(s.tape, s.in)
	s.runs++
	if len(s.out) == 0 {
		return gorgonia.NewF32(s.res.Data[0]), nil
	}
	if s.res.Len() != s.out.TotalSize() {
		return nil, fmt.Errorf("%s: %d values for shape %v", s.name, s.res.Len(), s.out)
	}
	return reuse(&s.value, s.out, s.res.Data), nil
}

// reuse copies data into *d, allocating it on first use (or when a
// previous op reshaped it in place).
func reuse(d **tensor.Dense, shape tensor.Shape, data []float32) *tensor.Dense {
	if *d == nil || !(*d).Shape().Eq(shape) || len((*d).Float32s()) != len(data) {
		*d = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, len(data))))
	}
	copy((*d).Float32s(), data)
	return *d
}

func (s *segment) DiffWRT(n int) []bool { return s.diff }

// SymDiff hands Gorgonia one gradient op per differentiable input; they
// share the segment's one backward pass.
func (s *segment) SymDiff(inputs gorgonia.Nodes, output, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	out := make(gorgonia.Nodes, len(inputs))
	for i := range inputs {
		if !s.diff[i] {
			continue
		}
		s.wanted[i] = true
		n, err := gorgonia.ApplyOp(&segmentGrad{s: s, i: i}, output, grad)
		if err != nil {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

// backward runs the tape's backward pass from the output's gradient once
// per forward run, whichever input's gradient op comes first.
func (s *segment) backward(grad gorgonia.Value) error {
	if s.bwd == s.runs {
		return nil
	}
	if s.res == nil {
		return fmt.Errorf("%s: gradient before the forward pass", s.name)
	}
	g, err := floats(grad)
	if err != nil {
		return fmt.Errorf("%s output gradient: %w", s.name, err)
	}
	if !s.tape.Grad() {
		return fmt.Errorf("%s: a gradient of a graph built for inference", s.name)
	}
	s.tape.BackwardFrom(s.res, g)
	s.bwd = s.runs
	return nil
}

// segmentGrad is the gradient of a segment's output with respect to its
// input i; its inputs are the segment's output (so that it runs after the
// forward pass) and that output's gradient.
type segmentGrad struct {
	s     *segment
	i     int
	value *tensor.Dense // reused each run, as segment.value
}

func (o *segmentGrad) Arity() int { return 2 }
func (o *segmentGrad) Type() hm.Type {
	return hm.NewFnType(valueType(o.s.out), valueType(o.s.out), valueType(o.s.ins[o.i]))
}
func (o *segmentGrad) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) {
	return o.s.ins[o.i].Clone(), nil
}
func (o *segmentGrad) ReturnsPtr() bool     { return false }
func (o *segmentGrad) CallsExtern() bool    { return false }
func (o *segmentGrad) OverwritesInput() int { return -1 }
func (o *segmentGrad) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "vitc.%s#%d.grad%d", o.s.name, o.s.id, o.i)
}
func (o *segmentGrad) Hashcode() uint32 { return hashOf(o) }
func (o *segmentGrad) String() string {
	return fmt.Sprintf("∂vitc.%s#%d/∂in%d", o.s.name, o.s.id, o.i)
}

func (o *segmentGrad) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	if len(vals) != 2 {
		return nil, fmt.Errorf("%v: %d inputs, want 2", o, len(vals))
	}
	if err := o.s.backward(vals[1]); err != nil {
		return nil, err
	}
	in := o.s.in[o.i]
	if in.Grad == nil { // nothing reached this input: its gradient is 0
		in.Grad = make([]float32, in.Len())
	}
	return reuse(&o.value, o.s.ins[o.i], in.Grad), nil
}

// readOnly is a non-differentiable Op whose value another op computed as a
// side result (an attention layer's cls scores): it takes that op's node as
// its input so that it runs after it.
type readOnly struct {
	id    uint64
	name  string
	in    tensor.Shape
	out   tensor.Shape
	value func() []float32
}

func (o *readOnly) Arity() int { return 1 }
func (o *readOnly) Type() hm.Type {
	return hm.NewFnType(valueType(o.in), valueType(o.out))
}
func (o *readOnly) InferShape(...gorgonia.DimSizer) (tensor.Shape, error) { return o.out.Clone(), nil }
func (o *readOnly) ReturnsPtr() bool                                      { return false }
func (o *readOnly) CallsExtern() bool                                     { return false }
func (o *readOnly) OverwritesInput() int                                  { return -1 }
func (o *readOnly) WriteHash(h hash.Hash)                                 { fmt.Fprintf(h, "vitc.%s#%d", o.name, o.id) }
func (o *readOnly) Hashcode() uint32                                      { return hashOf(o) }
func (o *readOnly) String() string                                        { return fmt.Sprintf("vitc.%s#%d", o.name, o.id) }
func (o *readOnly) DiffWRT(int) []bool                                    { return []bool{false} }
func (o *readOnly) SymDiff(gorgonia.Nodes, *gorgonia.Node, *gorgonia.Node) (gorgonia.Nodes, error) {
	return gorgonia.Nodes{nil}, nil
}

func (o *readOnly) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	v := o.value()
	if len(v) != o.out.TotalSize() {
		return nil, fmt.Errorf("%v: %d values for shape %v", o, len(v), o.out)
	}
	return tensor.New(tensor.WithShape(o.out...), tensor.WithBacking(slices.Clone(v))), nil
}

// floats is the float32 data of a Gorgonia value (a tensor or a scalar).
func floats(v gorgonia.Value) ([]float32, error) {
	switch x := v.(type) {
	case *gorgonia.F32:
		return []float32{float32(*x)}, nil
	case *tensor.Dense:
		if x.Dtype() != tensor.Float32 {
			return nil, fmt.Errorf("dtype %v, want float32", x.Dtype())
		}
		if x.IsScalar() {
			return []float32{x.ScalarValue().(float32)}, nil
		}
		if !x.IsMaterializable() {
			return x.Float32s(), nil
		}
		m := x.Materialize().(*tensor.Dense)
		return m.Float32s(), nil
	case nil:
		return nil, fmt.Errorf("no value")
	}
	return nil, fmt.Errorf("value of type %T, want a float32 tensor", v)
}
