package export

import (
	"math"
	"testing"

	"vitc/vit"
)

// A model's LayerNorm eps (a timm file's --ln-eps) reaches the float graph
// that calibrates the export and the integer LayerNorm constants.
func TestLayerNormEpsReachesExport(t *testing.T) {
	cfg := vit.Config{Image: 8, Channels: 1, Patch: 2, Dim: 64, Depth: 2, Heads: 4, MLPRatio: 2, Classes: 10, Attention: "softmax"}
	big := cfg
	big.LNEps = 0.5 // large enough to move every logit
	imgs := randomImages(cfg, 2, 5)
	chw := cfg.Channels * cfg.Image * cfg.Image
	var logits [2][]float32
	var words [2]int32
	for k, c := range []vit.Config{cfg, big} {
		m := testModel(t, c, false)
		want := vit.Predict(m, imgs, 2, 2)
		got := newFloatModel(m).forward(imgs[:chw])
		for i, v := range got {
			if d := math.Abs(float64(v - want[i])); d > 1e-3*(1+math.Abs(float64(v))) {
				t.Fatalf("eps %g logit %d: float graph %g, model %g", c.Eps(), i, v, want[i])
			}
		}
		logits[k] = got
		qm, err := Quantize(m, imgs, 2)
		if err != nil {
			t.Fatal(err)
		}
		words[k] = qm.Blocks[0].Norm1.Eps
	}
	same := true
	for i := range logits[0] {
		same = same && math.Abs(float64(logits[0][i]-logits[1][i])) < 1e-4
	}
	if same {
		t.Error("eps 0.5 gives the logits of eps 1e-6: the float graph ignores it")
	}
	if !(words[1] > words[0]) {
		t.Errorf("integer LayerNorm eps word %d for eps 0.5, %d for 1e-6", words[1], words[0])
	}
}
