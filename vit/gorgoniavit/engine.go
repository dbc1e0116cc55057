package gorgoniavit

import (
	"fmt"
	"slices"
	"strings"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"vitc/autograd"
	"vitc/vit"
)

// Engine runs the training loop's forward and backward passes as Gorgonia
// graphs (vitc train --engine gorgonia; it is a training.Engine). A graph is
// the model (Build), vitc's loss as one op on the loop's tape, and
// gorgonia.Grad of that loss over the trainable parameters, run by a
// TapeMachine; the gradients are added to the parameters' Grad, where vitc's
// clipping and AdamW take them. A graph has fixed shapes, so there is one
// per batch size and token-pruning shape (a keep-rate schedule steps
// through a few), built on first use and kept.
type Engine struct {
	graphs map[string]*trainGraph
	order  []string // build order, to drop the oldest past maxGraphs
}

// maxGraphs bounds the graphs kept: a keep-rate ramp visits one token count
// after another and never returns to an old one.
const maxGraphs = 8

type trainGraph struct {
	g      *gorgonia.ExprGraph
	x      *gorgonia.Node
	b      *builder
	loss   *segment
	lossOf func(*autograd.Tensor) *autograd.Tensor
	params []*autograd.Param
	grads  []gorgonia.Value // read from the gradient nodes each run
	vm     gorgonia.VM
}

// NewEngine returns an engine with no graphs built yet.
func NewEngine() *Engine { return &Engine{graphs: map[string]*trainGraph{}} }

// Name is the engine's --engine value.
func (e *Engine) Name() string { return "gorgonia" }

// Step runs m on images with pass's extensions, the loss lossOf builds from
// the logits on pass.Tape, and the backward pass, adding every gradient to
// the parameters' Grad (as the native engine accumulates them). The graph
// always runs its backward pass; a non-finite loss leaves non-finite
// gradients, which the loop discards with the batch.
func (e *Engine) Step(m *vit.Model, pass *vit.Pass, images *autograd.Tensor, lossOf func(*autograd.Tensor) *autograd.Tensor) (logits, loss *autograd.Tensor, err error) {
	keep := m.TokenKeep
	if pass.KeepRate != nil {
		keep = pass.KeepRate.KeepRate()
	}
	key := fmt.Sprintf("%p/%v/%s", m, images.Shape, tokenSignature(m, keep))
	tg, ok := e.graphs[key]
	if !ok {
		if tg, err = newTrainGraph(m, images.Shape, pass, keep); err != nil {
			return nil, nil, err
		}
		if len(e.order) == maxGraphs {
			old := e.order[0]
			e.graphs[old].vm.Close()
			delete(e.graphs, old)
			e.order = e.order[1:]
		}
		e.graphs[key] = tg
		e.order = append(e.order, key)
	}
	tg.b.pass = pass
	tg.loss.tape = pass.Tape
	tg.lossOf = lossOf
	x := tensor.New(tensor.WithShape(images.Shape...), tensor.WithBacking(images.Data))
	if err := gorgonia.Let(tg.x, x); err != nil {
		return nil, nil, err
	}
	tg.vm.Reset()
	if err := tg.vm.RunAll(); err != nil {
		return nil, nil, fmt.Errorf("gorgonia engine: %w", err)
	}
	for i, p := range tg.params {
		g, err := floats(tg.grads[i])
		if err != nil {
			return nil, nil, fmt.Errorf("gradient of %s: %w", p.Name, err)
		}
		for j, v := range g {
			p.Grad[j] += v
		}
	}
	return tg.loss.in[0], tg.loss.res, nil
}

func newTrainGraph(m *vit.Model, shape []int, pass *vit.Pass, keep float64) (*trainGraph, error) {
	g := gorgonia.NewGraph()
	tg := &trainGraph{g: g}
	tg.x = gorgonia.NewTensor(g, tensor.Float32, len(shape), gorgonia.WithShape(shape...), gorgonia.WithName("images"))
	b := &builder{g: g, m: m, pass: pass, train: true}
	tg.b = b
	var logits *gorgonia.Node
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				if b.err == nil {
					panic(r)
				}
			}
			err = b.err
		}()
		logits = vit.Define[*gorgonia.Node](m, b, tg.x, keep)
		return nil
	}()
	if err != nil {
		return nil, err
	}
	tg.loss = newSegment("loss", true, nil, []bool{true}, []tensor.Shape{logits.Shape().Clone()}, tensor.ScalarShape(),
		func(tp *autograd.Tape, in []*autograd.Tensor) *autograd.Tensor {
			// Step returns the logits and the loss after the backward pass.
			tp.Keep(in[0])
			loss := tg.lossOf(in[0])
			tp.Keep(loss)
			return loss
		})
	tg.loss.ownTape = false // the loop's tape, which the loop resets
	cost, err := gorgonia.ApplyOp(tg.loss, logits)
	if err != nil {
		return nil, fmt.Errorf("loss: %w", err)
	}
	nodes := ParamNodes(g, m)
	var wrt gorgonia.Nodes
	for _, p := range m.Params.List() {
		if n, ok := nodes[p.Name]; ok && p.NeedsGrad() {
			tg.params = append(tg.params, p)
			wrt = append(wrt, n)
		}
	}
	if len(wrt) == 0 {
		return nil, fmt.Errorf("gorgonia engine: no trainable parameter in the graph")
	}
	grads, err := gorgonia.Grad(cost, wrt...)
	if err != nil {
		return nil, fmt.Errorf("gorgonia engine: gradients: %w", err)
	}
	// Values are read through Read nodes: after a TapeMachine run a node's
	// Value() may be a register a later instruction reused.
	tg.grads = make([]gorgonia.Value, len(grads))
	for i, n := range grads {
		gorgonia.Read(n, &tg.grads[i])
	}
	tg.vm = gorgonia.NewTapeMachine(g)
	return tg, nil
}

// tokenSignature names the token counts after each pruning layer at keep
// rate keep: two rates with the same signature run the same graph, as
// tokenprune.KeepFuse depends on the rate only through KeepCount.
func tokenSignature(m *vit.Model, keep float64) string {
	if !(keep > 0 && keep < 1) {
		return "all"
	}
	var sb strings.Builder
	sh := tensor.Shape{1, m.Tokens(), m.Dim}
	for i := 0; i < m.Depth; i++ {
		if slices.Contains(m.TokenLayers, i) {
			sh = KeptShape(sh, keep)
			fmt.Fprintf(&sb, "%d:%d,", i, sh[1])
		}
	}
	return sb.String()
}
