package autograd

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// maxChunks bounds how many pieces one parallel loop is cut into. Where the
// cuts fall depends only on the size of the work, never on GOMAXPROCS: a
// reduction over per-chunk partial sums (LayerNorm's affine gradients) and a
// kernel whose blocking depends on its operand's shape (a BLAS call per
// chunk) then see the same pieces on 1 core or 64, so results are
// bit-identical whatever the core count. Sixteen pieces keep 16 cores busy
// and cost a 2-core machine nothing measurable (docs/engine.md).
const maxChunks = 16

// chunksFor is the number of pieces for n items when each piece should hold
// at least grain items: a function of n and grain alone.
func chunksFor(n, grain int) int {
	if n <= 0 {
		return 0
	}
	return min(maxChunks, max(1, n/max(1, grain)))
}

// ParallelFor splits [0, n) into chunksFor(n, grain) contiguous chunks and
// runs body on each, spread over the available cores. Work smaller than
// grain runs inline so tiny ops do not pay for goroutines.
func ParallelFor(n, grain int, body func(lo, hi int)) {
	parallelChunks(n, chunksFor(n, grain), func(_, lo, hi int) { body(lo, hi) })
}

// parallelChunks runs body over `chunks` contiguous, near-equal chunks of
// [0, n), passing the chunk index so callers can keep per-chunk partial
// results and combine them in chunk order. At most GOMAXPROCS chunks run at
// once; which goroutine runs which chunk does not matter.
func parallelChunks(n, chunks int, body func(c, lo, hi int)) {
	if n <= 0 {
		return
	}
	chunks = min(max(chunks, 1), n)
	if chunks == 1 {
		body(0, 0, n)
		return
	}
	size := (n + chunks - 1) / chunks
	workers := min(runtime.GOMAXPROCS(0), chunks)
	if workers <= 1 {
		for c := 0; c < chunks; c++ {
			if lo := c * size; lo < n {
				body(c, lo, min(lo+size, n))
			}
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				c := int(next.Add(1) - 1)
				if c >= chunks {
					return
				}
				if lo := c * size; lo < n {
					body(c, lo, min(lo+size, n))
				}
			}
		})
	}
	wg.Wait()
}
