package autograd

import "time"

// GemmPeakGFLOPS measures what this machine's matrix products reach at
// their best: square float32 products large enough for every kernel's
// blocking, split over cores as Gemm splits a model's, repeated for about
// d. Benchmarks report a model's GFLOPS as a fraction of it, so a figure
// says how close to the machine it runs, not only how fast.
func GemmPeakGFLOPS(d time.Duration) float64 {
	const n = 1024
	a, b, c := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
	for i := range a {
		a[i] = float32(i%7) - 3
		b[i] = float32(i%5) - 2
	}
	Gemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n) // warm-up
	var products int
	t0 := time.Now()
	for products == 0 || time.Since(t0) < d {
		Gemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n)
		products++
	}
	return float64(products) * 2 * n * n * n / time.Since(t0).Seconds() / 1e9
}
