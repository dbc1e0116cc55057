package autograd

import "fmt"

// Linear computes y = x·Wᵀ + b over the last dimension, as torch.nn.Linear:
// x is (..., K), w is (N, K), b is (N) or nil, y is (..., N). w may have
// more dimensions when they flatten row-major to (N, K), as a conv weight
// [D, C, p, p] does for flattened patches.
func Linear(tp *Tape, x, w, b *Tensor) *Tensor {
	k := x.Dim(-1)
	n := w.Shape[0]
	if w.Len() != n*k {
		panic(fmt.Sprintf("autograd: Linear of %v by weight %v", x.Shape, w.Shape))
	}
	m := x.Len() / k
	shape := append(append([]int(nil), x.Shape[:len(x.Shape)-1]...), n)
	y := tp.Output([]*Tensor{x, w, b}, shape...)
	// (M, N) = (M, K)·(N, K)ᵀ
	Gemm(false, true, m, n, k, 1, x.Data, k, w.Data, k, 0, y.Data, n)
	if b != nil {
		addBiasRows(y.Data, b.Data, m, n)
	}
	tp.Record(y, func() {
		dy := y.Grad // (M, N)
		if x.needsGrad {
			// (M, K) += (M, N)·(N, K)
			Gemm(false, false, m, k, n, 1, dy, n, w.Data, k, 1, tp.GradOf(x), k)
		}
		if w.needsGrad {
			// (N, K) += (M, N)ᵀ·(M, K)
			Gemm(true, false, n, k, m, 1, dy, n, x.Data, k, 1, tp.GradOf(w), k)
		}
		if b != nil && b.needsGrad {
			sumRowsInto(tp.GradOf(b), dy, m, n)
		}
	}, x, w)
	return y
}

func addBiasRows(y, b []float32, m, n int) {
	ParallelFor(m, 256, func(lo, hi int) {
		addRows(y[lo*n:hi*n], b, hi-lo, n)
	})
}

// sumRowsInto adds the column sums of the (m, n) matrix a into dst.
func sumRowsInto(dst, a []float32, m, n int) {
	dst = dst[:n]
	for i := 0; i < m; i++ {
		row := a[i*n : i*n+n]
		for j, v := range row {
			dst[j] += v
		}
	}
}
