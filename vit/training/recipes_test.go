package training

import (
	"testing"

	"vitc/vit"
)

// scratch-small keeps at least MinSteps steps an epoch by halving the batch
// (not below 16) and augments long runs only; finetune's batch is fixed and
// it always augments. Every recipe names a known
// init scheme and trains something.
func TestRecipeBatchFor(t *testing.T) {
	s := Recipes[DefaultRecipe]
	for _, tc := range []struct{ n, want int }{{1437, 32}, {5000, 64}, {8000, 64}, {100, 16}, {2560, 64}, {2559, 32}} {
		if got := s.BatchFor(tc.n); got != tc.want {
			t.Errorf("%s: batch for %d images %d, want %d", s.Name, tc.n, got, tc.want)
		}
	}
	if s.AugmentFor(10) || !s.AugmentFor(30) || !Recipes["finetune"].AugmentFor(1) {
		t.Errorf("augmentation: %s at 10 and 30 epochs %v %v, finetune at 1 %v, want false true true",
			s.Name, s.AugmentFor(10), s.AugmentFor(30), Recipes["finetune"].AugmentFor(1))
	}
	if got := Recipes["finetune"].BatchFor(100); got != Recipes["finetune"].Batch {
		t.Errorf("finetune: batch for 100 images %d, want its fixed %d", got, Recipes["finetune"].Batch)
	}
	for name, r := range Recipes {
		m, _ := vit.New(vit.Config{Image: 8, Channels: 1, Patch: 4, Dim: 8, Depth: 1, Heads: 2, MLPRatio: 2, Classes: 3, Attention: "softmax"}, 1)
		if r.Name != name || r.LR <= 0 || r.Batch <= 0 || m.Reinit(r.InitScheme, 1) != nil {
			t.Errorf("recipe %q: %+v", name, r)
		}
	}
	if _, err := LookupRecipe("nope"); err == nil {
		t.Error("unknown recipe accepted")
	}
}
