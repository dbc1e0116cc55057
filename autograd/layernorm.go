package autograd

// LayerNorm normalises each row of x (..., D) to zero mean and unit variance
// (biased variance, as torch) and applies the affine gain g and bias b.
func LayerNorm(tp *Tape, x, g, b *Tensor, eps float64) *Tensor {
	d := x.Dim(-1)
	m := x.Len() / d
	y := tp.Output([]*Tensor{x, g, b}, x.Shape...)
	// mean and reciprocal std per row, kept for the backward pass: (M), (M)
	stats := tp.New(false, 2*m)
	mean, rstd := stats.Data[:m], stats.Data[m:]
	ParallelFor(m, 64, func(lo, hi int) {
		layerNormRows(y.Data[lo*d:hi*d], x.Data[lo*d:hi*d], g.Data, b.Data, mean[lo:hi], rstd[lo:hi], hi-lo, d, eps)
	})
	tp.Record(y, func() {
		dy := y.Grad
		var dx []float32
		if x.needsGrad {
			dx = tp.GradOf(x)
		}
		// The affine gradients are reduced over rows; each chunk keeps
		// private sums so the reduction needs no locks, and the chunks are
		// added in order, so the sum does not depend on the core count.
		chunks := chunksFor(m, 64)
		scratch := tp.Temp(true, chunks*2*d)
		partial := scratch.Data
		parallelChunks(m, chunks, func(w, lo, hi int) {
			dg := partial[w*2*d : w*2*d+d]
			db := partial[w*2*d+d : w*2*d+2*d]
			for i := lo; i < hi; i++ {
				row := x.Data[i*d : i*d+d]
				dyr := dy[i*d : i*d+d]
				mu, r := mean[i], rstd[i]
				var sumDxh, sumDxhXh float32
				for j, v := range row {
					xh := (v - mu) * r
					dg[j] += dyr[j] * xh
					db[j] += dyr[j]
					dxh := dyr[j] * g.Data[j]
					sumDxh += dxh
					sumDxhXh += dxh * xh
				}
				if dx == nil {
					continue
				}
				inv := 1 / float32(d)
				dxr := dx[i*d : i*d+d]
				for j, v := range row {
					xh := (v - mu) * r
					dxh := dyr[j] * g.Data[j]
					dxr[j] += r * (dxh - inv*sumDxh - xh*inv*sumDxhXh)
				}
			}
		})
		if g.needsGrad {
			gg := tp.GradOf(g)
			for w := 0; w < chunks; w++ {
				for j, v := range partial[w*2*d : w*2*d+d] {
					gg[j] += v
				}
			}
		}
		if b.needsGrad {
			gb := tp.GradOf(b)
			for w := 0; w < chunks; w++ {
				for j, v := range partial[w*2*d+d : w*2*d+2*d] {
					gb[j] += v
				}
			}
		}
		tp.Release(scratch)
	}, x, stats, g)
	return y
}
