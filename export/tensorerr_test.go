package export

import (
	"slices"
	"testing"

	"vitc/vit"
)

// Where int8 keeps other tokens than float would, the per-tensor errors
// after the pruning step still compare like with like (the float graph
// follows the integer model's choice): they stay near the logits' error,
// and near the same tensor's error on the images where the choice agreed,
// instead of collapsing to a few dB. The kept agreement still reports
// that the choice differed.
func TestLayerErrorsFollowTheIntegerModelsKeptTokens(t *testing.T) {
	for _, att := range []string{"softmax", "taylor"} {
		t.Run(att, func(t *testing.T) {
			cfg := pruned(withAttention(vit.Config{Image: 8, Channels: 1, Patch: 2, Dim: 64, Depth: 3, Heads: 4, MLPRatio: 2, Classes: 10}, att))
			m := testModel(t, cfg, true)
			qm, err := QuantizeWith(m, randomImages(cfg, 16, 1), 16, CalibOptions{})
			if err != nil {
				t.Fatal(err)
			}
			p := &LayerProbe{m: m, qm: qm}
			const n = 64
			imgs := randomImages(cfg, n, 3)
			chw := cfg.Channels * cfg.Image * cfg.Image
			var differ, agree LayerSums
			for i := 0; i < n; i++ {
				img := imgs[i*chw : (i+1)*chw]
				in := qm.QuantizeInput(img)
				s, err := p.Image(img, in, qm.Reference(in))
				if err != nil {
					t.Fatal(err)
				}
				if len(s.Kept) != len(cfg.TokenLayers) {
					t.Fatalf("image %d: %d kept counts for %d pruning blocks", i, len(s.Kept), len(cfg.TokenLayers))
				}
				if s.Kept[0].Same < s.Kept[0].Kept {
					differ, err = differ.Add(s)
				} else {
					agree, err = agree.Add(s)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if differ.Tensors == nil {
				t.Fatal("int8 keeps the float model's tokens on every image: the test shows nothing")
			}
			if a := differ.KeptAgreements()[0]; a.Agreement >= 1 || a.Block != cfg.TokenLayers[0] {
				t.Fatalf("images whose kept tokens differ report kept agreement %+v", a)
			}
			errs, base := differ.Errors(qm.Scales, 3), agree.Errors(qm.Scales, 3)
			logits := errs[len(errs)-1]
			if logits.Name != "logits" {
				t.Fatalf("last tensor %s", logits.Name)
			}
			after := slices.IndexFunc(errs, func(e TensorError) bool { return e.Name == blockName(cfg.TokenLayers[0])+".norm2" })
			if after < 0 {
				t.Fatal("no norm2 after the first pruning step")
			}
			// 6 dB is a factor of 4 in error power: the rounding error of
			// a tensor varies that much between groups of images, and a
			// whole token of difference costs it some 20 dB. Taylor's G
			// sums over the tokens and sits below the logits on every
			// image, hence 10 dB against the logits.
			for i, e := range errs[after:] {
				if b := base[after+i]; e.SQNR < b.SQNR-6 || e.SQNR < logits.SQNR-10 {
					t.Errorf("%s at %.1f dB where the kept tokens differ, %.1f dB where they agree; logits at %.1f dB", e.Name, e.SQNR, b.SQNR, logits.SQNR)
				}
			}
		})
	}
}
