package pipeline

import (
	"testing"

	"vitc/vit"
)

// kept_tokens.png captions each pruning stage with its block and the
// tokens the report counts there (mean_kept_tokens: what the block's MLP
// sees), not the patches left.
func TestKeptTokensFigureCountsAsTheReport(t *testing.T) {
	r := tinyRun(t, 1)
	cfg := r.Model.Config
	cfg.Depth, cfg.TokenKeep, cfg.TokenLayers = 3, 0.5, []int{0, 2}
	m, err := vit.New(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	images := keptImages(m, r)
	if len(images) == 0 {
		t.Fatal("no images")
	}
	for i, im := range images {
		tokens := im.Tokens()
		if len(im.Blocks) != len(cfg.TokenLayers) || len(tokens) != len(cfg.TokenLayers) {
			t.Fatalf("image %d: blocks %v, tokens %v for pruning blocks %v", i, im.Blocks, tokens, cfg.TokenLayers)
		}
		for s, l := range cfg.TokenLayers {
			if _, want := m.TokensAt(l); im.Blocks[s] != l || tokens[s] != want {
				t.Errorf("image %d stage %d: block %d, %d tokens; the report's block %d has %d", i, s, im.Blocks[s], tokens[s], l, want)
			}
		}
	}
}
