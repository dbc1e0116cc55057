package sim

import (
	"encoding/binary"
	"math/rand"
	"testing"

	"vitc/export/hw"
	"vitc/export/isa"
)

// exactGemm equals the integer product bit for bit at the extremes of int8
// (−128·−128 everywhere) and with inner dimensions past one float32 chunk.
func TestExactGemmMatchesIntegers(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, k := range []int{1, 17, exactChunk, exactChunk + 1, 3*exactChunk + 5} {
		for _, extreme := range []bool{false, true} {
			m, n := 3, 5
			a, b := make([]int8, m*k), make([]int8, n*k) // b as (n, k)
			for i := range a {
				a[i] = int8(rng.Intn(256) - 128)
				if extreme {
					a[i] = -128
				}
			}
			for i := range b {
				b[i] = int8(rng.Intn(256) - 128)
				if extreme {
					b[i] = -128
				}
			}
			want := make([]int32, m*n)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					var s int64
					for l := 0; l < k; l++ {
						s += int64(a[i*k+l]) * int64(b[j*k+l])
					}
					want[i*n+j] = int32(uint32(s))
				}
			}
			got := make([]int32, m*n)
			exactGemm(got, f32s(a), f32s(b), m, n, k, true, make([]float32, m*n))
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("k %d extreme %v: element %d is %d, want %d", k, extreme, i, got[i], want[i])
				}
			}
		}
	}
}

func f32s(xs []int8) []float32 {
	out := make([]float32, len(xs))
	for i, v := range xs {
		out[i] = float32(v)
	}
	return out
}

// spgemm over an index table that lists one position twice adds both
// tiles (their sum leaves int8 range), and a second run after the weights
// change in DRAM uses the new weights, not the cached matrix.
func TestSpgemmDuplicateTilesAndChangedWeights(t *testing.T) {
	for _, tiles := range []int{1, 2} {
		spgemmAtOrigin(t, tiles)
	}
}

// spgemmAtOrigin runs an spgemm whose tiles (1 or 2) all sit at (0, 0).
func spgemmAtOrigin(t *testing.T, tiles int) {
	h := hw.Default()
	b, e := h.Block, h.PERows*h.PECols
	const biasAt, indexAt, inputAt, wgtBytes = 512, 640, 1024, 1024
	dram := make([]byte, 2048)
	rng := rand.New(rand.NewSource(2))
	for i := 0; i < 2*b*b; i++ {
		dram[i] = byte(int8(rng.Intn(256) - 128))
	}
	for o := 0; o < 2*b; o++ { // n = 2b: room for two tiles, both in row 0
		binary.LittleEndian.PutUint32(dram[biasAt+4*o:], uint32(int32(o*1000-7000)))
	}
	words := append([]uint32{uint32(tiles), uint32(e), uint32(tiles)}, make([]uint32, e-1+tiles)...)
	for i, w := range words {
		binary.LittleEndian.PutUint32(dram[indexAt+4*i:], w)
	}
	for i := 0; i < b; i++ {
		dram[inputAt+i] = byte(int8(rng.Intn(256) - 128))
	}
	prog := []isa.Instr{
		isa.New(isa.OpLoad, 0, 1, 0, 0, wgtBytes),
		isa.New(isa.OpLoad, 0, 0, 0, inputAt, uint64(b)),
		isa.New(isa.OpSpgemm, 0, 64, 0, uint64(b), isa.DimImm(1), uint64(b), uint64(2*b), 0, biasAt, indexAt, 0),
		isa.New(isa.OpFinish, 0),
	}
	m, err := NewMachine(h, prog, dram, nil)
	if err != nil {
		t.Fatal(err)
	}
	for run := 0; run < 2; run++ {
		if err := m.Run(); err != nil {
			t.Fatal(err)
		}
		for o := 0; o < 2*b; o++ {
			s := int64(int32(binary.LittleEndian.Uint32(dram[biasAt+4*o:])))
			for j := 0; j < b && o < b; j++ {
				x := int64(int8(dram[inputAt+j]))
				for tl := 0; tl < tiles; tl++ {
					s += int64(int8(dram[tl*b*b+o*b+j])) * x
				}
			}
			if got := int32(binary.LittleEndian.Uint32(m.act[64+4*o:])); got != int32(s) {
				t.Fatalf("%d tiles, run %d: output %d is %d, want %d", tiles, run, o, got, s)
			}
		}
		for i := 0; i < 2*b*b; i++ {
			dram[i] = byte(int8(rng.Intn(256) - 128))
		}
	}
}

// matmul with int16 operands (A, B or both) equals the integer product,
// shifted and wrapped, bit for bit in every layout, at the extremes of int16
// (whose high byte is negative and low byte 255) and past one chunk of the
// unsigned low-byte products.
func TestMatmulInt16MatchesIntegers(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	const aAt, bAt, dstAt = 0, 1 << 14, 1 << 15
	types := []struct {
		a, b  int // element bytes
		shift uint
	}{{2, 1, 0}, {1, 2, 0}, {2, 2, 0}, {2, 2, 8}, {1, 1, 3}}
	for _, ty := range types {
		for _, layout := range []int{0, 1, 2} { // nn, tn, nt
			for _, k := range []int{1, 7, exactChunk>>2 + 3} {
				for _, extreme := range []bool{false, true} {
					m, n := 3, 4
					val := func(bytes, i int) int64 {
						if bytes == 1 {
							if extreme {
								return -128
							}
							return int64(rng.Intn(256) - 128)
						}
						if extreme {
							return [2]int64{-1 << 15, 1<<15 - 1}[i%2]
						}
						return int64(rng.Intn(1<<16) - 1<<15)
					}
					put := func(dram []byte, at, bytes int, v int64) {
						if bytes == 1 {
							dram[at] = byte(v)
							return
						}
						binary.LittleEndian.PutUint16(dram[2*at:], uint16(v))
					}
					a, b := make([]int64, m*k), make([]int64, k*n) // A(i,l), B(l,j) row-major
					for i := range a {
						a[i] = val(ty.a, i)
					}
					for i := range b {
						b[i] = val(ty.b, i)
					}
					dram := make([]byte, 1<<16)
					aStride, bStride := k, n // nn
					if layout == 1 {
						aStride = m
					}
					if layout == 2 {
						bStride = k
					}
					for i := 0; i < m; i++ {
						for l := 0; l < k; l++ {
							at := i*aStride + l
							if layout == 1 {
								at = l*aStride + i
							}
							put(dram[aAt:], at, ty.a, a[i*k+l])
						}
					}
					for l := 0; l < k; l++ {
						for j := 0; j < n; j++ {
							at := l*bStride + j
							if layout == 2 {
								at = j*bStride + l
							}
							put(dram[bAt:], at, ty.b, b[l*n+j])
						}
					}
					prog := []isa.Instr{
						isa.New(isa.OpLoad, 0, 0, 0, 0, dstAt),
						isa.New(isa.OpMatmul, 0, dstAt, uint64(n), aAt, uint64(aStride), bAt, uint64(bStride), isa.DimImm(m), isa.DimImm(k), isa.DimImm(n), uint64(layout), uint64(ty.a-1), uint64(ty.b-1), uint64(ty.shift)),
						isa.New(isa.OpFinish, 0),
					}
					mach, err := NewMachine(hw.Default(), prog, dram, nil)
					if err != nil {
						t.Fatal(err)
					}
					if err := mach.Run(); err != nil {
						t.Fatal(err)
					}
					for i := 0; i < m; i++ {
						for j := 0; j < n; j++ {
							var s int64
							for l := 0; l < k; l++ {
								s += a[i*k+l] * b[l*n+j]
							}
							if ty.shift > 0 {
								s = (s + 1<<(ty.shift-1)) >> ty.shift
							}
							if got := int32(binary.LittleEndian.Uint32(mach.act[dstAt+4*(i*n+j):])); got != int32(s) {
								t.Fatalf("types %v layout %d k %d extreme %v: C[%d][%d] = %d, want %d", ty, layout, k, extreme, i, j, got, int32(s))
							}
						}
					}
				}
			}
		}
	}
}
