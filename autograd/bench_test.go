package autograd

import (
	"fmt"
	"testing"
	"time"
)

// benchSink reduces x to a scalar for Backward without doing x-sized work in
// the forward pass; its backward adds a gradient of ones to x, as the next
// op in a network would add its own.
func benchSink(tp *Tape, x *Tensor) *Tensor {
	y := tp.Output([]*Tensor{x}, 1)
	y.Data[0] = x.Data[0]
	tp.Record(y, func() {
		g := tp.GradOf(x)
		for i := range g {
			g[i] += y.Grad[0]
		}
	})
	return y
}

// benchFwdBwd times forward and backward of op on a training tape, reusing
// the tape's arena as a training loop does. Gradients accumulate across
// iterations, which costs the same as starting from zero.
func benchFwdBwd(b *testing.B, op func(tp *Tape) *Tensor) {
	tp := NewTape(true)
	tp.Backward(benchSink(tp, op(tp))) // fill the arena
	for b.Loop() {
		tp.Reset()
		tp.Backward(benchSink(tp, op(tp)))
	}
}

// ViT-ish activation sizes: DeiT-tiny (dim 192, MLP 768) on 197 tokens.
const benchB, benchN = 8, 197

// BenchmarkLinear is y = x·Wᵀ + b forward and backward (dx, dW, db) for a
// DeiT-tiny block's four projections; GFLOPS counts 3 GEMMs of 2·M·K·N.
func BenchmarkLinear(b *testing.B) {
	for _, s := range []struct {
		name    string
		in, out int
	}{{"qkv", 192, 576}, {"proj", 192, 192}, {"fc1", 192, 768}, {"fc2", 768, 192}} {
		b.Run(fmt.Sprintf("%s/%dx%d->%d", s.name, benchB*benchN, s.in, s.out), func(b *testing.B) {
			x := randTensor(1, 1, benchB, benchN, s.in)
			w, bias := randTensor(2, .02, s.out, s.in), randTensor(3, .02, s.out)
			benchFwdBwd(b, func(tp *Tape) *Tensor { return Linear(tp, x, w, bias) })
			flops := 3 * 2 * float64(benchB*benchN) * float64(s.in) * float64(s.out)
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
		})
	}
}

// BenchmarkLayerNorm is LayerNorm over the embedding width, forward and
// backward (dx, dγ, dβ).
func BenchmarkLayerNorm(b *testing.B) {
	for _, d := range []int{192, 384, 768} {
		b.Run(fmt.Sprintf("%dx%d", benchB*benchN, d), func(b *testing.B) {
			x := randTensor(1, 1, benchB, benchN, d)
			g, bias := randTensor(2, 1, d), randTensor(3, .1, d)
			b.SetBytes(int64(4 * x.Len()))
			benchFwdBwd(b, func(tp *Tape) *Tensor { return LayerNorm(tp, x, g, bias, 1e-6) })
		})
	}
}

// BenchmarkGELU is the MLP's GELU, forward and backward, at the hidden width.
func BenchmarkGELU(b *testing.B) {
	for _, h := range []int{768, 1536, 3072} {
		b.Run(fmt.Sprintf("%dx%d", benchB*benchN, h), func(b *testing.B) {
			x := randTensor(1, 1, benchB, benchN, h)
			b.SetBytes(int64(4 * x.Len()))
			benchFwdBwd(b, func(tp *Tape) *Tensor { return GELU(tp, x) })
		})
	}
}

func BenchmarkGemmPeak(b *testing.B) {
	for range b.N {
		b.ReportMetric(GemmPeakGFLOPS(200*time.Millisecond), "GFLOPS")
	}
}

// BenchmarkGemmDeiTTiny times the matrix products of one DeiT-Tiny block
// at batch 8 (197 tokens, dim 192, 3 heads of 64, MLP 768): what inference
// spends most of its time in.
func BenchmarkGemmDeiTTiny(b *testing.B) {
	const m = 8 * 197
	for _, s := range []struct {
		name    string
		m, n, k int
	}{{"qkv", m, 576, 192}, {"proj", m, 192, 192}, {"fc1", m, 768, 192}, {"fc2", m, 192, 768}, {"qk", 197, 197, 64}, {"pv", 197, 64, 197}} {
		b.Run(s.name, func(b *testing.B) {
			a, w, c := make([]float32, s.m*s.k), make([]float32, s.k*s.n), make([]float32, s.m*s.n)
			for b.Loop() {
				Gemm(false, false, s.m, s.n, s.k, 1, a, s.k, w, s.n, 0, c, s.n)
			}
			b.ReportMetric(2*float64(s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
		})
	}
}
