// Package weightquant trains a model towards the exporter's int8 weights
// and leaves its checkpoint on them, so that the float model a user
// evaluates and the integer model the accelerator runs share every weight.
//
// The exporter (docs/bundle.md) quantizes each linear layer's weight per
// output channel: step = max|row|/127, w_int = round(w/step). Rounding costs
// a model a little agreement with its float self on hard data: on the
// CIFAR-10 subset, the weights' rounding alone moved 4–7 of 1,000 top-1
// predictions, more than all the 16-bit activations together
// (docs/quantization.md). Training the last part of a run through that
// rounding (straight-through gradient, as in quantization-aware training)
// and snapping the saved weights to the grid moves the rounding into the
// float model, where its accuracy is measured and gated.
package weightquant

import (
	"math"
	"strings"

	"vitc/autograd"
)

// linearWeights are the weights the exporter quantizes to int8, by name
// suffix: every linear layer and the patch embedding.
var linearWeights = []string{"patch_embed.proj.weight", "attn.qkv.weight", "attn.proj.weight",
	"mlp.fc1.weight", "mlp.fc2.weight", "head.weight"}

// Quantized reports whether the exporter stores the parameter name as int8.
func Quantized(name string) bool {
	for _, s := range linearWeights {
		if name == s || strings.HasSuffix(name, "."+s) {
			return true
		}
	}
	return false
}

// Round writes to dst each of w's rows rounded to its own int8 grid, the
// exporter's rule; an all-zero row (a pruned channel) stays zero. dst may
// be w.
func Round(dst, w []float32, rows int) {
	cols := len(w) / rows
	for r := 0; r < rows; r++ {
		row, out := w[r*cols:(r+1)*cols], dst[r*cols:(r+1)*cols]
		var mx float64
		for _, v := range row {
			mx = math.Max(mx, math.Abs(float64(v)))
		}
		if mx == 0 {
			copy(out, row)
			continue
		}
		step := mx / 127
		for i, v := range row {
			out[i] = float32(math.Round(float64(v)/step) * step)
		}
	}
}

// FakeQuant is w (rows, …) rounded by Round, with the straight-through
// gradient: dw = dy. Rounding has no useful derivative (zero almost
// everywhere), so the gradient treats it as the identity and the float
// weights keep learning underneath the grid.
func FakeQuant(tp *autograd.Tape, w *autograd.Tensor, rows int) *autograd.Tensor {
	y := tp.Output([]*autograd.Tensor{w}, w.Shape...)
	Round(y.Data, w.Data, rows)
	tp.Record(y, func() {
		if w.NeedsGrad() {
			dw := tp.GradOf(w)
			for i, g := range y.Grad {
				dw[i] += g
			}
		}
	})
	return y
}

// Snap rounds every quantized weight of a parameter list in place: the
// checkpoint then holds exactly what the exporter will store.
func Snap(params []*autograd.Param) {
	for _, p := range params {
		if Quantized(p.Name) && len(p.Shape) >= 2 {
			Round(p.Data, p.Data, p.Shape[0])
		}
	}
}

// Trainer is the training component: from Start (a fraction of the run's
// steps) on, every quantized weight reaches the model through FakeQuant.
// It comes after other weight views (block masks), so it rounds the weight
// the model computes with. Its state is the step alone, so it saves none.
type Trainer struct {
	Start  float64
	active bool
}

// Name identifies the component in metrics.
func (t *Trainer) Name() string { return "int8_weights" }

// BeforeStep turns the rounding on at the start fraction.
func (t *Trainer) BeforeStep(step, total int) {
	t.active = float64(step) >= t.Start*float64(total)
}

// View rounds a quantized weight once the rounding is on.
func (t *Trainer) View(tp *autograd.Tape, p *autograd.Param, w *autograd.Tensor) *autograd.Tensor {
	if !t.active || !Quantized(p.Name) || len(p.Shape) < 2 {
		return w
	}
	return FakeQuant(tp, w, p.Shape[0])
}

// EpochMetrics says whether the epoch trained through the rounding.
func (t *Trainer) EpochMetrics() map[string]any { return map[string]any{"int8_weights": t.active} }
