package export

import (
	"fmt"
	"testing"

	"vitc/export/hw"
	"vitc/export/sim"
	"vitc/vit"
)

// No layer runs faster than its roofline bound (its work at the array's
// peak or at the full DRAM bandwidth): not for softmax, Taylor, block- or
// token-pruned models, not on any of the shipped hardware configurations,
// not one image at a time nor per image over a batch in lockstep.
func TestCyclesNeverBelowRoofline(t *testing.T) {
	hws := []hw.Config{hw.Default()}
	for _, f := range []string{"../docs/hw-edge.json", "../docs/hw-vec512.json"} {
		h, err := hw.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		hws = append(hws, h)
	}
	tokens := digitsMicro("softmax")
	tokens.TokenKeep, tokens.TokenLayers = 0.7, []int{1, 2, 3}
	models := []struct {
		name   string
		cfg    vit.Config
		sparse bool
		bits   int
	}{
		{"softmax", digitsMicro("softmax"), false, 8},
		{"taylor", digitsMicro("taylor"), false, 8},
		{"block-pruned softmax", digitsMicro("softmax"), true, 8},
		{"token-pruned softmax", tokens, false, 8},
		{"pruned taylor", prunedTaylor(), true, 8},
		{"pruned taylor/a16", prunedTaylor(), true, 16},
	}
	for _, mc := range models {
		m := testModel(t, mc.cfg, mc.sparse)
		qm, err := QuantizeWith(m, randomImages(mc.cfg, 4, 1), 4, CalibOptions{ActBits: mc.bits})
		if err != nil {
			t.Fatal(err)
		}
		in := qm.QuantizeInput(randomImages(mc.cfg, 1, 5))
		for _, h := range hws {
			for _, batch := range []int{1, 8, 64} {
				t.Run(fmt.Sprintf("%s/%s/batch %d", mc.name, h.Name, batch), func(t *testing.T) {
					cp, err := CompileWith(qm, h, CompileOptions{Batch: batch})
					if err != nil {
						t.Fatal(err)
					}
					r, err := sim.NewRunner(cp.SimProgram(h))
					if err != nil {
						t.Fatal(err)
					}
					_, st, err := r.Run(in)
					if err != nil {
						t.Fatal(err)
					}
					if batch > 1 {
						_, steady, err := r.Run(in)
						if err != nil {
							t.Fatal(err)
						}
						st = sim.Amortise(h, st, steady, batch)
					}
					if st.Roofline <= 0 {
						t.Fatalf("roofline %d for %d MACs and %d bytes", st.Roofline, st.MACs, st.BytesMoved)
					}
					for _, l := range append(st.Layers, sim.LayerStats{Name: "total", Cycles: st.Cycles, Roofline: st.Roofline}) {
						if l.Cycles < l.Roofline {
							t.Errorf("%s: %d cycles, roofline %d (%.2f×)", l.Name, l.Cycles, l.Roofline, float64(l.Cycles)/float64(l.Roofline))
						}
					}
				})
			}
		}
	}
}
