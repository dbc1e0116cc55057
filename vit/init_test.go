package vit

import (
	"bytes"
	"math"
	"slices"
	"strings"
	"testing"
)

// PyTorch's default init: every Linear (and the patch Conv2d) weight and
// bias uniform within ±1/√fan_in and filling most of that range, unit
// LayerNorm gains and zero shifts, a zero cls_token, pos_embed ~ N(0, .02²);
// the same seed gives the same weights, another seed others.
func TestTorchInitBoundsAndSeed(t *testing.T) {
	cfg := Config{Image: 8, Channels: 3, Patch: 4, Dim: 32, Depth: 2, Heads: 2, MLPRatio: 2, Classes: 5, Attention: "softmax"}
	m, err := New(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Reinit(InitTorch, 7); err != nil {
		t.Fatal(err)
	}
	fanIn := map[string]int{
		"patch_embed.proj": 3 * 4 * 4, "blocks.0.attn.qkv": 32, "blocks.0.attn.proj": 32,
		"blocks.1.mlp.fc1": 32, "blocks.1.mlp.fc2": 64, "head": 32,
	}
	for name, in := range fanIn {
		bound := 1 / math.Sqrt(float64(in))
		for _, suffix := range []string{".weight", ".bias"} {
			p, _ := m.Params.Get(name + suffix)
			lo, hi := slices.Min(p.Data), slices.Max(p.Data)
			if float64(-lo) > bound || float64(hi) > bound {
				t.Errorf("%s%s spans [%g, %g], want within ±%g", name, suffix, lo, hi, bound)
			}
			if p.Len() >= 32 && (float64(hi) < 0.8*bound || float64(-lo) < 0.8*bound) {
				t.Errorf("%s%s spans [%g, %g], want most of ±%g", name, suffix, lo, hi, bound)
			}
		}
	}
	for _, p := range m.Params.List() {
		switch {
		case isNormWeight(p.Name) && slices.ContainsFunc(p.Data, func(v float32) bool { return v != 1 }),
			(isNormBias(p.Name) || p.Name == "cls_token") && slices.ContainsFunc(p.Data, func(v float32) bool { return v != 0 }):
			t.Errorf("%s = %v", p.Name, p.Data[:4])
		case p.Name == "pos_embed":
			var ss float64
			for _, v := range p.Data {
				ss += float64(v) * float64(v)
			}
			if std := math.Sqrt(ss / float64(p.Len())); std < .015 || std > .025 {
				t.Errorf("pos_embed std %g, want about .02", std)
			}
		}
	}
	again, _ := New(cfg, 3)
	again.Reinit(InitTorch, 7)
	other, _ := New(cfg, 1)
	other.Reinit(InitTorch, 8)
	if string(modelBytes(t, again)) != string(modelBytes(t, m)) {
		t.Error("the same seed gave other weights")
	}
	if string(modelBytes(t, other)) == string(modelBytes(t, m)) {
		t.Error("another seed gave the same weights")
	}
	// Back to timm's: exactly what New gives.
	timm, _ := New(cfg, 7)
	if err := m.Reinit(InitTimm, 7); err != nil || string(modelBytes(t, m)) != string(modelBytes(t, timm)) {
		t.Errorf("Reinit(timm) differs from New (err %v)", err)
	}
	if err := m.Reinit("xavier", 1); err == nil || !strings.Contains(err.Error(), "torch") {
		t.Errorf("unknown scheme: got %v", err)
	}
}

func modelBytes(t *testing.T, m *Model) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := m.Encode(&b, Meta{}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
