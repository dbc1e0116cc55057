package vit

import (
	"slices"
	"testing"

	"vitc/autograd"
)

func tinyConfig() Config {
	return Config{Image: 8, Channels: 2, Patch: 4, Dim: 8, Depth: 2, Heads: 2, MLPRatio: 2, Classes: 3, Attention: "softmax"}
}

func randomImages(seed int64, n int, cfg Config) *autograd.Tensor {
	x := make([]float32, n*cfg.Channels*cfg.Image*cfg.Image)
	autograd.NewRNG(seed, 5).TruncNormal(x, 1)
	return autograd.FromData(x, n, cfg.Channels, cfg.Image, cfg.Image)
}

// perturb moves every parameter away from its init so that no gradient is
// zero by symmetry (zero biases, unit gains, tiny cls token).
func perturb(m *Model, seed int64) {
	rng := autograd.NewRNG(seed, 9)
	for _, p := range m.Params.List() {
		noise := make([]float32, p.Len())
		rng.TruncNormal(noise, 0.3)
		for i := range p.Data {
			p.Data[i] += noise[i]
		}
	}
}

func TestModelGradient(t *testing.T) {
	for _, attn := range []string{"softmax", "taylor"} {
		t.Run(attn, func(t *testing.T) { testModelGradient(t, attn) })
	}
}

func testModelGradient(t *testing.T, attn string) {
	cfg := tinyConfig()
	cfg.Attention = attn
	m, err := New(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	perturb(m, 2)
	x := randomImages(3, 2, cfg)
	labels := []int{0, 2}
	var params []*autograd.Tensor
	for _, p := range m.Params.List() {
		params = append(params, p.Tensor)
	}
	err2 := autograd.GradCheck(func(tp *autograd.Tape) *autograd.Tensor {
		return autograd.CrossEntropy(tp, m.Forward(tp, x), labels, 0.1)
	}, params, 1e-2)
	if err2 > 3e-2 {
		t.Errorf("model gradient error %.3g", err2)
	}
}

func TestEveryParameterGetsGradient(t *testing.T) {
	for _, attn := range []string{"softmax", "taylor"} {
		cfg := tinyConfig()
		cfg.Attention = attn
		m, err := New(cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		tp := autograd.NewTape(true)
		loss := autograd.CrossEntropy(tp, m.Forward(tp, randomImages(4, 3, cfg)), []int{0, 1, 2}, 0)
		tp.Backward(loss)
		for _, p := range m.Params.List() {
			nonzero := false
			for _, g := range p.Grad {
				if g != 0 {
					nonzero = true
					break
				}
			}
			if !nonzero {
				t.Errorf("%s: %s has an all-zero gradient", attn, p.Name)
			}
		}
	}
}

// Token pruning with keep 1.0 keeps every token and adds no fused one: the
// logits equal those of the same model without token pruning.
func TestTokenKeepOneEqualsNoPruning(t *testing.T) {
	for _, attn := range []string{"softmax", "taylor"} {
		cfg := Config{Image: 8, Channels: 1, Patch: 2, Dim: 16, Depth: 3, Heads: 2, MLPRatio: 2, Classes: 4, Attention: attn}
		plain, err := New(cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		cfg.TokenKeep, cfg.TokenLayers = 1, []int{0, 1, 2}
		keepAll, _ := New(cfg, 1)
		cfg.TokenKeep = 0.5
		pruned, _ := New(cfg, 1)
		x := make([]float32, 2*64)
		rng := autograd.NewRNG(2, 2)
		for i := range x {
			x[i] = float32(rng.Normal())
		}
		a, b, c := Predict(plain, x, 2, 2), Predict(keepAll, x, 2, 2), Predict(pruned, x, 2, 2)
		if !slices.Equal(a, b) {
			t.Errorf("%s: keep 1.0 logits %v, unpruned %v", attn, b, a)
		}
		if slices.Equal(a, c) {
			t.Errorf("%s: keep 0.5 gave the unpruned logits: token pruning did nothing", attn)
		}
	}
}

func TestMeanCLSSkipsDeadHeads(t *testing.T) {
	// B = 1, H = 3, N = 2: head h's row is (h+1, 10·(h+1)).
	res := autograd.AttentionResult{Out: &autograd.Tensor{Shape: []int{1, 2, 6}, Data: make([]float32, 12)}, Heads: 3,
		CLSAttention: []float32{1, 10, 2, 20, 3, 30}}
	if got := meanCLS(res, nil); got[0] != 2 || got[1] != 20 {
		t.Errorf("mean over all heads = %v, want [2 20]", got)
	}
	if got := meanCLS(res, []bool{true, false, true}); got[0] != 2 || got[1] != 20 {
		t.Errorf("mean over heads 0 and 2 = %v, want [2 20]", got)
	}
	if got := meanCLS(res, []bool{false, true, true}); got[0] != 2.5 || got[1] != 25 {
		t.Errorf("mean over heads 1 and 2 = %v, want [2.5 25]", got)
	}
}

func TestModelDeclaresNoWeightDecay(t *testing.T) {
	m, err := New(Config{Image: 8, Channels: 1, Patch: 4, Dim: 8, Depth: 1, Heads: 2, MLPRatio: 2, Classes: 3, Attention: "softmax"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params.List() {
		want := len(p.Shape) >= 2 && !slices.Contains(m.NoWeightDecay(), p.Name)
		if p.Decay != want {
			t.Errorf("%s %v: decay %v, want %v", p.Name, p.Shape, p.Decay, want)
		}
	}
	for _, name := range []string{"cls_token", "pos_embed"} {
		if p, _ := m.Params.Get(name); p.Decay {
			t.Errorf("%s is decayed; timm's no_weight_decay() leaves it out", name)
		}
	}
}
