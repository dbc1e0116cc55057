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

// BenchmarkSimulateDim128 is the speed target: a dim-128, depth-6,
// 4-head softmax model on 28×28 images, patch 4 (50 tokens, about 805k
// parameters), one image per iteration on one machine.
func BenchmarkSimulateDim128(b *testing.B) { benchDim128(b, 8) }

// BenchmarkSimulateDim128A16 is the same model exported with 16-bit
// activations: every GEMM and matmul splits its int16 operands into bytes.
func BenchmarkSimulateDim128A16(b *testing.B) { benchDim128(b, 16) }

func benchDim128(b *testing.B, bits int) {
	cfg := dim128Config()
	qm, _, r := compileForTestBits(b, testModel(b, cfg, false), 4, bits)
	in := qm.QuantizeInput(randomImages(cfg, 1, 2))
	b.ReportAllocs()
	cpu := processCPU()
	for b.Loop() {
		if _, _, err := r.Run(in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "img/s")
	b.ReportMetric(1e3*(processCPU()-cpu)/float64(b.N), "cpu-ms/img")
}

// BenchmarkSimulateDim128Parallel is the same model on every core, one
// runner per goroutine, as vitc sim runs a test split: images/s of the
// whole machine.
func BenchmarkSimulateDim128Parallel(b *testing.B) {
	cfg := dim128Config()
	qm, cp, _ := compileForTest(b, testModel(b, cfg, false), 4)
	in := qm.QuantizeInput(randomImages(cfg, 1, 2))
	b.ReportAllocs()
	cpu := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		r, err := sim.NewRunner(cp.SimProgram(hw.Default()))
		if err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			if _, _, err := r.Run(in); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "img/s")
	b.ReportMetric(1e3*(processCPU()-cpu)/float64(b.N), "cpu-ms/img")
}

func dim128Config() vit.Config {
	return vit.Config{Image: 28, Channels: 1, Patch: 4, Dim: 128, Depth: 6, Heads: 4, MLPRatio: 2, Classes: 10, Attention: "softmax"}
}
