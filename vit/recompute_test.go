package vit_test

import (
	"math"
	"slices"
	"testing"

	"vitc/autograd"
	"vitc/blockprune"
	"vitc/vit"
)

// keptLog records the kept tokens of every pruning layer.
type keptLog struct{ kept [][][]int }

func (k *keptLog) KeptTokens(_ int, kept [][]int) { k.kept = append(k.kept, kept) }

// recomputeModel is the micro preset with token pruning at two blocks and
// weights moved off their init, so that no gradient is zero by symmetry.
func recomputeModel(t *testing.T, attn string, depth int) *vit.Model {
	t.Helper()
	cfg, err := vit.Preset("micro")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Attention, cfg.Depth = attn, depth
	cfg.TokenKeep, cfg.TokenLayers = 0.5, []int{1, 2}
	m, err := vit.New(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	rng := autograd.NewRNG(2, 9)
	for _, p := range m.Params.List() {
		noise := make([]float32, p.Len())
		rng.TruncNormal(noise, 0.05)
		for i := range p.Data {
			p.Data[i] += noise[i]
		}
	}
	return m
}

func batch(m *vit.Model, n int) *autograd.Tensor {
	x := make([]float32, n*m.Channels*m.Image*m.Image)
	autograd.NewRNG(3, 5).TruncNormal(x, 1)
	return autograd.FromData(x, n, m.Channels, m.Image, m.Image)
}

type stepResult struct {
	logits []float32
	loss   float32
	grads  map[string][]float32
	kept   [][][]int
	peak   int64
}

// trainStep runs one forward and backward pass with block masks (weight
// views with straight-through score gradients) and token pruning, as the
// training loop's native engine does.
func trainStep(t *testing.T, m *vit.Model, pr *blockprune.Pruner, recompute bool) stepResult {
	t.Helper()
	tp := autograd.NewTape(true)
	var kept keptLog
	pass := &vit.Pass{Tape: tp, Weights: []vit.WeightView{pr}, Kept: []vit.KeptObserver{&kept}, Recompute: recompute}
	m.Params.ZeroGrad()
	x := batch(m, 6)
	logits, loss, err := runStep(m, pass, x)
	if err != nil {
		t.Fatal(err)
	}
	r := stepResult{logits: slices.Clone(logits.Data), loss: loss.Data[0], grads: map[string][]float32{}, kept: kept.kept, peak: tp.Memory().PeakBytes}
	for _, p := range m.Params.List() {
		r.grads[p.Name] = slices.Clone(p.Grad)
	}
	return r
}

func runStep(m *vit.Model, pass *vit.Pass, x *autograd.Tensor) (logits, loss *autograd.Tensor, err error) {
	logits = m.ForwardPass(pass, x)
	loss = autograd.CrossEntropy(pass.Tape, logits, []int{0, 3, 9, 1, 7, 2}, 0.1)
	pass.Tape.Keep(logits)
	pass.Tape.Backward(loss)
	return logits, loss, nil
}

// Recomputing each block in the backward pass runs the same code on the
// same numbers: logits, loss, every gradient (block scores included) and
// the kept tokens are bit for bit those of the plain pass, and the pass
// holds less memory.
func TestRecomputeGivesTheSameGradients(t *testing.T) {
	for _, attn := range []string{"softmax", "taylor"} {
		t.Run(attn, func(t *testing.T) {
			m := recomputeModel(t, attn, 6)
			pr, err := blockprune.New(m, blockprune.Options{Block: 16, Density: 0.5, Warmup: 0, Ramp: 0.1})
			if err != nil {
				t.Fatal(err)
			}
			pr.BeforeStep(100, 100) // final masks
			plain := trainStep(t, m, pr, false)
			re := trainStep(t, m, pr, true)
			bits := func(a, b []float32) bool {
				return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
			}
			if !bits(re.logits, plain.logits) || math.Float32bits(re.loss) != math.Float32bits(plain.loss) {
				t.Errorf("logits or loss differ with recomputation (loss %v against %v)", re.loss, plain.loss)
			}
			for name, g := range plain.grads {
				if !bits(re.grads[name], g) {
					t.Errorf("gradient of %s differs with recomputation", name)
				}
				if slices.ContainsFunc(g, func(v float32) bool { return math.IsNaN(float64(v)) }) {
					t.Errorf("gradient of %s has NaN: a released buffer was read", name)
				}
			}
			if len(re.kept) != 2 || !slices.EqualFunc(re.kept, plain.kept, func(a, b [][]int) bool {
				return slices.EqualFunc(a, b, slices.Equal[[]int])
			}) {
				t.Errorf("kept tokens reported %d times with recomputation, differently from the plain pass", len(re.kept))
			}
			if re.peak >= plain.peak*3/4 {
				t.Errorf("peak pass memory %d bytes with recomputation, %d without", re.peak, plain.peak)
			}
			t.Logf("peak pass memory %d bytes with recomputation, %d without", re.peak, plain.peak)
		})
	}
}

// An inference pass releases each block's intermediates once its output
// exists: its peak memory does not grow with depth.
func TestInferenceMemoryDoesNotGrowWithDepth(t *testing.T) {
	peak := func(depth int) int64 {
		m := recomputeModel(t, "softmax", depth)
		tp := autograd.NewTape(false)
		m.Forward(tp, batch(m, 6))
		return tp.Memory().PeakBytes
	}
	if p3, p8 := peak(3), peak(8); p8 != p3 {
		t.Errorf("inference peak %d bytes at depth 8, %d at depth 3", p8, p3)
	}
}
