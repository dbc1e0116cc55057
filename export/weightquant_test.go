package export

import (
	"math"
	"testing"

	"vitc/vit"
	"vitc/vit/weightquant"
)

// A checkpoint snapped by weightquant (vitc prune --int8-weights) is what
// the exporter stores: every int8 weight times its channel's step gives the
// checkpoint's value back, up to float32 rounding, so the float model and
// its export share their weights.
func TestSnappedWeightsExportExactly(t *testing.T) {
	cfg := pruned(withAttention(vit.Config{Image: 8, Channels: 1, Patch: 2, Dim: 64, Depth: 3, Heads: 4, MLPRatio: 2, Classes: 10}, "taylor"))
	m := testModel(t, cfg, true)
	weightquant.Snap(m.Params.List())
	qm, err := Quantize(m, randomImages(cfg, 4, 1), 4)
	if err != nil {
		t.Fatal(err)
	}
	layers := []QLinear{qm.Patch, qm.Head}
	for _, b := range qm.Blocks {
		layers = append(layers, b.QKV, b.Proj, b.FC1, b.FC2)
	}
	for _, l := range layers {
		p, ok := m.Params.Get(l.Name + ".weight")
		if !ok {
			t.Fatalf("no parameter %s.weight", l.Name)
		}
		for o := 0; o < l.Out; o++ {
			for i := 0; i < l.In; i++ {
				want := float64(p.Data[o*l.In+i])
				got := float64(l.W[o*l.In+i]) * l.WScale[o]
				if math.Abs(got-want) > 1e-6*math.Max(math.Abs(want), l.WScale[o]) {
					t.Fatalf("%s[%d,%d]: exported %g (code %d), checkpoint %g", l.Name, o, i, got, l.W[o*l.In+i], want)
				}
			}
		}
	}
}
