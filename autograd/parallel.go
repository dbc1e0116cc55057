package autograd

import (
	"runtime"
	"sync"
)

// ParallelFor splits [0, n) into contiguous chunks, one per available core,
// and runs body on each. Work smaller than grain runs inline so tiny ops do
// not pay for goroutines.
func ParallelFor(n, grain int, body func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	if workers > n {
		workers = n
	}
	if workers <= 1 || n < grain {
		body(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			body(lo, hi)
		}(lo, hi)
	}
	wg.Wait()
}

// workersFor is the number of chunks parallelChunks will use for n items.
func workersFor(n, grain int) int {
	w := runtime.GOMAXPROCS(0)
	if n < grain || w < 1 {
		return 1
	}
	return min(w, n)
}

// parallelChunks runs body over `workers` contiguous chunks of [0, n), passing
// the chunk index so callers can keep per-worker partial results.
func parallelChunks(n, workers int, body func(w, lo, hi int)) {
	if workers <= 1 {
		body(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for w := 0; w < workers; w++ {
		lo, hi := w*chunk, min((w+1)*chunk, n)
		if lo >= hi {
			continue
		}
		wg.Add(1)
		go func(w, lo, hi int) {
			defer wg.Done()
			body(w, lo, hi)
		}(w, lo, hi)
	}
	wg.Wait()
}
