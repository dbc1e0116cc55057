package taylorattn

import (
	"fmt"
	"testing"

	"vitc/autograd"
)

// BenchmarkCorrectionKernels times the branch's forward and backward pass
// with S·V and its gradients dense (BLAS) and over the mask's rows (sparse),
// at mask densities from 1 % to 50 % (θ raised on peaked random attention):
// where the two cross is sparseRowsBelow.
func BenchmarkCorrectionKernels(b *testing.B) {
	shapes := []struct {
		name            string
		batch, n, h, hd int
	}{{"micro", 16, 50, 4, 16}, {"deit-tiny", 2, 197, 3, 64}}
	for _, sh := range shapes {
		d3 := 3 * sh.h * sh.hd
		data := make([]float32, sh.batch*sh.n*d3)
		autograd.NewRNG(2, 2).TruncNormal(data, 1.5)
		for _, theta := range []float32{0.1, 0.02, 0.01, 0.005, 0.002} {
			for _, form := range Formulations {
				for _, kn := range []struct {
					name string
					k    kernel
				}{{"dense", kernelDense}, {"sparse", kernelSparse}} {
					qkv := autograd.FromData(data, sh.batch, sh.n, d3)
					qkv.SetNeedsGrad()
					qkv.Grad = make([]float32, qkv.Len())
					tp := autograd.NewTape(true)
					var density float64
					step := func() {
						tp.Reset()
						extra, absMean, dens := correction(tp, qkv, sh.h, form, 0.3, theta, kn.k)
						density = dens
						tp.GradOf(absMean)[0] = 0.1
						tp.BackwardFrom(extra, data[:extra.Len()])
					}
					step()
					b.Run(fmt.Sprintf("%s/%s/density=%.3f/%s", sh.name, form, density, kn.name), func(b *testing.B) {
						cpu0 := ProcessCPU()
						for b.Loop() {
							step()
						}
						b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(sh.batch), "µs/image")
						b.ReportMetric(1e6*(ProcessCPU()-cpu0)/float64(b.N)/float64(sh.batch), "cpu-µs/image")
					})
				}
			}
		}
	}
}
