package export

import (
	"testing"

	"vitc/vit"
)

// BenchmarkSimulate is one image of the micro preset (50 tokens) on the
// simulator, and on the integer reference for comparison.
func BenchmarkSimulate(b *testing.B) {
	cfg, _ := vit.Preset("micro")
	qm, _, r := compileForTest(b, testModel(b, cfg, false), 4)
	in := qm.QuantizeInput(randomImages(cfg, 1, 2))
	b.Run("simulator", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := r.Run(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reference", func(b *testing.B) {
		for b.Loop() {
			qm.Reference(in)
		}
	})
}
