package export

import (
	"runtime"
	"sync"

	"vitc/export/sim"
	"vitc/vit"
)

// AutoAgreement is --act-bits auto's threshold: int8 activations are kept
// when the integer model's top-1 class agrees with the float model's on at
// least this share of the calibration images (issue 16's target), else the
// export uses int16.
const AutoAgreement = 0.995

// AutoChoice records how --act-bits auto chose (manifest quant.act_bits_auto).
type AutoChoice struct {
	// Int8Agreement is the int8 model's top-1 agreement with float on the
	// calibration images; Images how many.
	Int8Agreement float64 `json:"int8_calib_agreement"`
	Images        int     `json:"images"`
	Threshold     float64 `json:"threshold"`
}

// Agreement is the share of the n images (normalised, n·C·H·W values) on
// which the integer reference's top-1 class equals the float logits'
// (n·classes, first maximum wins in both), run on every core.
func (qm *QModel) Agreement(imgs, floatLogits []float32, n int) float64 {
	if n < 1 {
		return 0
	}
	c := qm.Config
	chw := c.Channels * c.Image * c.Image
	agree := make([]bool, n)
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), n)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				tr := qm.Reference(qm.QuantizeInput(imgs[i*chw : (i+1)*chw]))
				agree[i] = sim.Argmax(tr.Logits) == vit.Argmax(floatLogits[i*c.Classes:(i+1)*c.Classes])
			}
		}()
	}
	wg.Wait()
	k := 0
	for _, a := range agree {
		if a {
			k++
		}
	}
	return float64(k) / float64(n)
}
