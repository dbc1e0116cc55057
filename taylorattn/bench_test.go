package taylorattn_test

import (
	"fmt"
	"testing"

	"vitc/autograd"
	"vitc/taylorattn"
)

// BenchmarkAttention times one attention layer's inference forward pass,
// softmax against Taylor, for one head of width 64 at ViT-B/16's token
// counts for 224, 448 and 896 pixel images (197, 785 and 3137 tokens).
// ns/token stays flat for linear-time attention.
func BenchmarkAttention(b *testing.B) {
	const hd = 64
	kinds := []struct {
		name string
		fn   func(*autograd.Tape, *autograd.Tensor, int, bool) autograd.AttentionResult
	}{{"softmax", autograd.SoftmaxAttention}, {"taylor", taylorattn.Attention}}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			for _, n := range []int{197, 785, 3137} {
				b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
					data := make([]float32, n*3*hd)
					rng := autograd.NewRNG(1, uint64(n))
					for i := range data {
						data[i] = float32(rng.Normal())
					}
					qkv := autograd.FromData(data, 1, n, 3*hd)
					tp := autograd.NewTape(false)
					k.fn(tp, qkv, 1, false) // fill the arena
					for b.Loop() {
						tp.Reset()
						k.fn(tp, qkv, 1, false)
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/token")
				})
			}
		})
	}
}

// BenchmarkTrainingAttention times one attention layer's forward and
// backward pass in training: softmax, Taylor, and Taylor with the sparse
// branch of each formulation (θ = 0.002, every entry kept on this random
// qkv), at the shapes of micro (B 64, N 50, 4 heads of 16) and DeiT-Tiny
// (B 4, N 197, 3 heads of 64). The branch's cost is the difference between
// "taylor+…" and "taylor". cpu-µs/image (the process's CPU time, all
// threads) varies less than µs/image on a shared machine.
func BenchmarkTrainingAttention(b *testing.B) {
	shapes := []struct {
		name            string
		batch, n, h, hd int
	}{{"micro", 64, 50, 4, 16}, {"deit-tiny", 4, 197, 3, 64}}
	type attnFn func(*autograd.Tape, *autograd.Tensor, int) *autograd.Tensor
	plain := func(f func(*autograd.Tape, *autograd.Tensor, int, bool) autograd.AttentionResult) attnFn {
		return func(tp *autograd.Tape, qkv *autograd.Tensor, heads int) *autograd.Tensor {
			return f(tp, qkv, heads, false).Out
		}
	}
	withBranch := func(form string) attnFn {
		return func(tp *autograd.Tape, qkv *autograd.Tensor, heads int) *autograd.Tensor {
			out := taylorattn.Attention(tp, qkv, heads, false).Out
			extra, absMean, _ := taylorattn.Correction(tp, qkv, heads, form, 0.3, 0.002)
			return autograd.WeightedSum(tp, []*autograd.Tensor{autograd.Project(tp, autograd.Add(tp, out, extra), 1), absMean}, []float32{1, 0.1})
		}
	}
	kinds := []struct {
		name string
		fn   attnFn
	}{
		{"softmax", plain(autograd.SoftmaxAttention)},
		{"taylor", plain(taylorattn.Attention)},
		{"taylor+vitc", withBranch(taylorattn.FormulationVitc)},
		{"taylor+vitality", withBranch(taylorattn.FormulationViTALiTy)},
	}
	for _, sh := range shapes {
		for _, k := range kinds {
			b.Run(sh.name+"/"+k.name, func(b *testing.B) {
				d3 := 3 * sh.h * sh.hd
				data := make([]float32, sh.batch*sh.n*d3)
				rng := autograd.NewRNG(1, uint64(sh.n))
				for i := range data {
					data[i] = float32(rng.Normal())
				}
				qkv := autograd.FromData(data, sh.batch, sh.n, d3)
				qkv.SetNeedsGrad()
				qkv.Grad = make([]float32, qkv.Len())
				tp := autograd.NewTape(true)
				step := func() {
					tp.Reset()
					y := k.fn(tp, qkv, sh.h)
					if y.Len() != 1 {
						y = autograd.Project(tp, y, 1)
					}
					tp.Backward(y)
				}
				step() // fill the pool
				cpu0 := taylorattn.ProcessCPU()
				for b.Loop() {
					step()
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(sh.batch), "µs/image")
				b.ReportMetric(1e6*(taylorattn.ProcessCPU()-cpu0)/float64(b.N)/float64(sh.batch), "cpu-µs/image")
			})
		}
	}
}
