package export

import (
	"testing"

	"vitc/export/hw"
	"vitc/export/sim"
	"vitc/vit"
)

// BenchmarkSimulate is one image of the micro preset (50 tokens) on the
// simulator, and on the integer reference for comparison.
func BenchmarkSimulate(b *testing.B) {
	cfg, _ := vit.Preset("micro")
	t := &testing.T{}
	m := testModel(t, cfg, false)
	qm, err := Quantize(m, randomImages(cfg, 4, 1), 4)
	if err != nil {
		b.Fatal(err)
	}
	cp, err := Compile(qm, hw.Default())
	if err != nil {
		b.Fatal(err)
	}
	r, err := sim.NewRunner(cp.SimProgram(hw.Default()))
	if err != nil {
		b.Fatal(err)
	}
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
