package training

import (
	"vitc/autograd"
	"vitc/vit"
)

// Engine runs one batch's forward and backward pass for the loop; the loop
// around it (data, loss, clipping, AdamW, schedules, saving) is the same
// whatever runs the model. Step runs m on images with pass's extensions,
// builds the loss from the logits with lossOf (on pass.Tape), and
// backpropagates it, adding every gradient to the parameters' Grad; an
// engine may skip the backward pass when the loss is not finite (the loop
// then discards the batch). Native is vitc's own engine; vitc/vit/gorgoniavit
// has the Gorgonia one.
type Engine interface {
	Name() string
	Step(m *vit.Model, pass *vit.Pass, images *autograd.Tensor, lossOf func(logits *autograd.Tensor) *autograd.Tensor) (logits, loss *autograd.Tensor, err error)
}

// Native is the native engine: the model runs on the pass's tape, which
// then replays its backward closures.
type Native struct{}

// Name is the engine's --engine value.
func (Native) Name() string { return "native" }

// Step implements Engine.
func (Native) Step(m *vit.Model, pass *vit.Pass, images *autograd.Tensor, lossOf func(*autograd.Tensor) *autograd.Tensor) (logits, loss *autograd.Tensor, err error) {
	logits = m.ForwardPass(pass, images)
	loss = lossOf(logits)
	// The loop scores the logits after the backward pass, which would
	// otherwise release them once the loss's closure has read them.
	pass.Tape.Keep(logits)
	pass.Tape.Keep(loss)
	if isFinite(float64(loss.Data[0])) {
		pass.Tape.Backward(loss)
	}
	return logits, loss, nil
}
