package onnx

import (
	"encoding/binary"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// The ONNX protobuf messages vitc writes (onnx.proto3, the field numbers of
// ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto,
// ValueInfoProto and TypeProto), encoded with protowire: a few messages do
// not justify generated code.

// ONNX element types.
const (
	tFloat = 1
	tInt64 = 7
)

// Attribute types.
const (
	attrFloat = 1
	attrInt   = 2
	attrInts  = 7
)

type msg []byte

func (m msg) str(field protowire.Number, s string) msg {
	m = protowire.AppendTag(m, field, protowire.BytesType)
	return protowire.AppendString(m, s)
}

func (m msg) bytes(field protowire.Number, b []byte) msg {
	m = protowire.AppendTag(m, field, protowire.BytesType)
	return protowire.AppendBytes(m, b)
}

func (m msg) sub(field protowire.Number, s msg) msg { return m.bytes(field, s) }

func (m msg) varint(field protowire.Number, v int64) msg {
	m = protowire.AppendTag(m, field, protowire.VarintType)
	return protowire.AppendVarint(m, uint64(v))
}

func (m msg) float(field protowire.Number, f float32) msg {
	m = protowire.AppendTag(m, field, protowire.Fixed32Type)
	return protowire.AppendFixed32(m, math.Float32bits(f))
}

// attribute is an AttributeProto.
type attribute struct {
	name string
	kind int
	i    int64
	f    float32
	ints []int64
}

func (a attribute) encode() msg {
	m := msg(nil).str(1, a.name)
	switch a.kind {
	case attrFloat:
		m = m.float(2, a.f)
	case attrInt:
		m = m.varint(3, a.i)
	case attrInts:
		for _, v := range a.ints {
			m = m.varint(8, v)
		}
	}
	return m.varint(20, int64(a.kind))
}

func intAttr(name string, v int64) attribute     { return attribute{name: name, kind: attrInt, i: v} }
func floatAttr(name string, v float32) attribute { return attribute{name: name, kind: attrFloat, f: v} }
func intsAttr(name string, v ...int64) attribute {
	return attribute{name: name, kind: attrInts, ints: v}
}

// node is a NodeProto.
type node struct {
	op      string
	name    string
	inputs  []string
	outputs []string
	attrs   []attribute
}

func (n node) encode() msg {
	var m msg
	for _, in := range n.inputs {
		m = m.str(1, in)
	}
	for _, out := range n.outputs {
		m = m.str(2, out)
	}
	m = m.str(3, n.name).str(4, n.op)
	for _, a := range n.attrs {
		m = m.sub(5, a.encode())
	}
	return m
}

// tensor is a TensorProto initializer: float32 or int64 raw data.
type tensor struct {
	name string
	dims []int64
	kind int
	f32  []float32
	i64  []int64
}

func (t tensor) encode() msg {
	var m msg
	for _, d := range t.dims {
		m = m.varint(1, d)
	}
	m = m.varint(2, int64(t.kind)).str(8, t.name)
	var raw []byte
	switch t.kind {
	case tFloat:
		raw = make([]byte, 4*len(t.f32))
		for i, v := range t.f32 {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
		}
	case tInt64:
		raw = make([]byte, 8*len(t.i64))
		for i, v := range t.i64 {
			binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
		}
	}
	return m.bytes(9, raw)
}

// valueInfo is a graph input or output: a float tensor whose dimensions are
// numbers, or names where negative (-1: "batch").
func valueInfo(name string, dims ...int64) msg {
	var shape msg
	for _, d := range dims {
		var dim msg
		if d < 0 {
			dim = dim.str(2, "batch")
		} else {
			dim = dim.varint(1, d)
		}
		shape = shape.sub(1, dim)
	}
	tt := msg(nil).varint(1, tFloat).sub(2, shape)
	return msg(nil).str(1, name).sub(2, msg(nil).sub(1, tt))
}

// model is a ModelProto of one graph at one opset of the default domain.
func model(graphName string, nodes []node, inits []tensor, inputs, outputs []msg, opset int64, producerVersion string) []byte {
	var g msg
	for _, n := range nodes {
		g = g.sub(1, n.encode())
	}
	g = g.str(2, graphName)
	for _, t := range inits {
		g = g.sub(5, t.encode())
	}
	for _, in := range inputs {
		g = g.sub(11, in)
	}
	for _, out := range outputs {
		g = g.sub(12, out)
	}
	m := msg(nil).varint(1, irVersion).str(2, "vitc").str(3, producerVersion).sub(7, g)
	return m.sub(8, msg(nil).str(1, "").varint(2, opset))
}
