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
