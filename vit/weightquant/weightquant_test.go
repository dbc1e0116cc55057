package weightquant

import (
	"math"
	"math/rand"
	"testing"

	"vitc/autograd"
)

func randomRows(rows, cols int, seed int64) []float32 {
	rng := rand.New(rand.NewSource(seed))
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	return w
}

// Each rounded row is k·step with |k| ≤ 127 an integer, its largest
// element is ±127 steps, rounding moves no value by more than half a step,
// and rounding twice changes nothing (the checkpoint is a fixed point).
func TestRoundIsTheExportersGrid(t *testing.T) {
	const rows, cols = 5, 37
	w := randomRows(rows, cols, 1)
	clear(w[2*cols : 3*cols]) // a pruned channel
	got := make([]float32, len(w))
	Round(got, w, rows)
	for r := 0; r < rows; r++ {
		var mx float64
		for _, v := range w[r*cols : (r+1)*cols] {
			mx = math.Max(mx, math.Abs(float64(v)))
		}
		if mx == 0 {
			for _, v := range got[r*cols : (r+1)*cols] {
				if v != 0 {
					t.Fatalf("row %d: pruned channel became %g", r, v)
				}
			}
			continue
		}
		step := mx / 127
		var top float64
		for i, v := range got[r*cols : (r+1)*cols] {
			k := float64(v) / step
			if math.Abs(k-math.Round(k)) > 1e-4 || math.Abs(k) > 127+1e-4 {
				t.Fatalf("row %d col %d: %g is %g steps, not an int8 code", r, i, v, k)
			}
			if d := math.Abs(float64(v) - float64(w[r*cols+i])); d > step/2*(1+1e-5) {
				t.Fatalf("row %d col %d: moved %g, more than half a step %g", r, i, d, step/2)
			}
			top = math.Max(top, math.Abs(k))
		}
		if math.Abs(top-127) > 1e-4 {
			t.Errorf("row %d: largest code %g, want 127", r, top)
		}
	}
	again := make([]float32, len(got))
	Round(again, got, rows)
	for i := range got {
		if again[i] != got[i] {
			t.Fatalf("rounding is not idempotent at %d: %g then %g", i, got[i], again[i])
		}
	}
}

// FakeQuant's forward is Round and its gradient is the straight-through
// one, dw = dy. Rounding is a step function, whose finite-difference
// derivative is zero almost everywhere, so the gradient is checked against
// its definition rather than by finite differences.
func TestFakeQuantStraightThrough(t *testing.T) {
	const rows, cols = 3, 8
	tp := autograd.NewTape(true)
	ps := autograd.NewParams()
	p := ps.Add("blocks.0.attn.qkv.weight", rows, cols)
	copy(p.Data, randomRows(rows, cols, 2))
	y := FakeQuant(tp, p.Tensor, rows)
	want := make([]float32, rows*cols)
	Round(want, p.Data, rows)
	for i := range want {
		if y.Data[i] != want[i] {
			t.Fatalf("forward %d: %g, want %g", i, y.Data[i], want[i])
		}
	}
	dy := randomRows(rows, cols, 3)
	tp.BackwardFrom(y, dy)
	for i, g := range p.Grad {
		if g != dy[i] {
			t.Fatalf("gradient %d: %g, want dy %g", i, g, dy[i])
		}
	}
}

// The trainer rounds only the exporter's int8 weights, and only from its
// start fraction on.
func TestTrainerRoundsQuantizedWeightsFromStart(t *testing.T) {
	ps := autograd.NewParams()
	qkv := ps.Add("blocks.1.attn.qkv.weight", 4, 6)
	bias := ps.Add("blocks.1.attn.qkv.bias", 4)
	scores := ps.Add("blocks.1.attn.qkv.weight.block_scores", 4)
	for _, p := range []*autograd.Param{qkv, bias, scores} {
		copy(p.Data, randomRows(1, p.Len(), 4))
	}
	tr := &Trainer{Start: 0.7}
	tp := autograd.NewTape(true)
	tr.BeforeStep(69, 100)
	if got := tr.View(tp, qkv, qkv.Tensor); got != qkv.Tensor {
		t.Error("rounded before the start fraction")
	}
	tr.BeforeStep(70, 100)
	if got := tr.View(tp, qkv, qkv.Tensor); got == qkv.Tensor {
		t.Error("did not round from the start fraction")
	}
	for _, p := range []*autograd.Param{bias, scores} {
		if got := tr.View(tp, p, p.Tensor); got != p.Tensor {
			t.Errorf("rounded %s, which the exporter does not store as int8", p.Name)
		}
	}
	for name, want := range map[string]bool{"patch_embed.proj.weight": true, "head.weight": true,
		"blocks.3.mlp.fc2.weight": true, "blocks.0.norm1.weight": false, "pos_embed": false, "head.bias": false} {
		if Quantized(name) != want {
			t.Errorf("Quantized(%q) = %v, want %v", name, !want, want)
		}
	}
}
