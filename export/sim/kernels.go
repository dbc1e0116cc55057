package sim

import (
	"bytes"

	"vitc/autograd"
)

// The PE array's products run through float32 BLAS, which is exact here:
// every operand is an int8 (|v| ≤ 2^7), so each product is an integer of
// magnitude ≤ 2^14 and every partial sum of at most exactChunk products is
// an integer of magnitude ≤ 2^24, which float32 represents exactly. So no
// rounding happens whatever order or fused multiply-adds the BLAS uses, and
// the result equals the integer sum bit for bit. Longer inner dimensions
// are summed in chunks of exactChunk, each converted to int32 and added
// with wrap-around, which is wrap32 of the full sum.
const exactChunk = 1 << 10

// exactChunkU8 is the chunk for an unsigned byte operand (≤ 255) times an
// int8 one: products below 2^15, so 2^9 of them stay below 2^24.
const exactChunkU8 = 1 << 9

// exactGemm adds into c (m×n int32, row stride n, wrapping) the product of
// a (m×k float32, row stride k) and b: (k×n, row stride n) or, transposed,
// (n×k, row stride k). f is scratch for one m×n float32 result.
func exactGemm(c []int32, a, b []float32, m, n, k int, transB bool, f []float32) {
	exactGemmChunk(c, a, b, m, n, k, transB, f, exactChunk)
}

// exactGemmChunk is exactGemm summing chunk products at a time.
func exactGemmChunk(c []int32, a, b []float32, m, n, k int, transB bool, f []float32, chunk int) {
	for k0 := 0; k0 < k; k0 += chunk {
		kc := min(chunk, k-k0)
		bOff := k0 * n // rows k0.. of b
		ldb := n
		if transB {
			bOff, ldb = k0, k // columns k0.. of bᵀ's storage
		}
		autograd.Gemm(false, transB, m, n, kc, 1, a[k0:], k, b[bOff:], ldb, 0, f[:m*n], n)
		for i, v := range f[:m*n] {
			c[i] += int32(v)
		}
	}
}

// grow returns buf resized to n, reallocating only when it is too small.
func grow[T any](buf []T, n int) []T {
	if cap(buf) < n {
		return make([]T, n)
	}
	return buf[:n]
}

// denseWeights is a gemm's weight matrix, transposed (k×n, row-major,
// float32: BLAS runs the untransposed product faster), built
// from its tiles, cached per instruction: the weight buffer is reloaded for
// every image, usually with the same bytes, so the tiles (and, for spgemm,
// the index table) are compared with the cached copy and the matrix is
// rebuilt only when they differ.
type denseWeights struct {
	tiles, index []byte
	k, n         int
	w            []float32
	// pos is the index table parsed: each stored tile's (row, col), and the
	// tiles per PE (the cycle model's busiest PE).
	tr, tc, perPE []int
	// dup: some position holds two tiles, whose sum may leave int8 range,
	// so the exact float path does not apply.
	dup bool
}

// sparseIndex returns the index table at addr parsed, from the
// instruction's cache when the table's bytes are unchanged.
func (m *Machine) sparseIndex(pc, addr, k, n int) *denseWeights {
	c := m.weightCache(pc)
	if c.index != nil && c.k == k && c.n == n && addr >= 0 && addr <= len(m.wgt)-len(c.index) && bytes.Equal(c.index, m.wgt[addr:addr+len(c.index)]) {
		return c // the same bytes were checked for the same matrix shape
	}
	tr, tc, perPE := m.tileIndex(addr, k, n)
	c.index = append(c.index[:0], m.wgt[addr:addr+4*(2+len(perPE)+len(tr))]...)
	c.tr, c.tc, c.perPE, c.k, c.n = tr, tc, perPE, k, n
	c.tiles = c.tiles[:0] // the matrix depends on the table too
	b := m.hw.Block
	seen := make([]bool, ceil(n, b)*ceil(k, b))
	c.dup = false
	for t := range tr {
		p := tr[t]*ceil(k, b) + tc[t]
		c.dup = c.dup || seen[p]
		seen[p] = true
	}
	return c
}

func (m *Machine) weightCache(pc int) *denseWeights {
	if m.dense == nil {
		m.dense = make(map[int]*denseWeights)
	}
	c := m.dense[pc]
	if c == nil {
		c = &denseWeights{}
		m.dense[pc] = c
	}
	return c
}

// matrix returns c's dense float32 weights for the tiles w (in storage
// order at positions c.tr, c.tc), rebuilding them when w changed.
func (c *denseWeights) matrix(w []byte, b int) []float32 {
	if len(c.tiles) > 0 && bytes.Equal(c.tiles, w) {
		return c.w
	}
	k, n := c.k, c.n
	c.w = grow(c.w, n*k)
	clear(c.w)
	for t := range c.tr {
		tile := w[t*b*b : (t+1)*b*b]
		for i := 0; i < b; i++ {
			o := c.tr[t]*b + i
			if o >= n {
				break
			}
			for j := 0; j < b; j++ {
				kk := c.tc[t]*b + j
				if kk >= k {
					break
				}
				c.w[kk*n+o] = float32(int8(tile[i*b+j]))
			}
		}
	}
	c.tiles = append(c.tiles[:0], w...)
	return c.w
}

// exactGemm64 adds into c (m×n int64) the product of a (m×k) and b (k×n),
// each chunk of chunk products exact in float32, shifted left by shift.
func exactGemm64(c []int64, a, b []float32, m, n, k int, f []float32, chunk int, shift uint) {
	for k0 := 0; k0 < k; k0 += chunk {
		kc := min(chunk, k-k0)
		autograd.Gemm(false, false, m, n, kc, 1, a[k0:], k, b[k0*n:], n, 0, f[:m*n], n)
		for i, v := range f[:m*n] {
			c[i] += int64(v) << shift
		}
	}
}
