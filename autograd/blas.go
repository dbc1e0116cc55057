package autograd

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// backend is the BLAS behind every matrix product. The pure-Go gonum kernels
// are the default; the `openblas` build tag swaps in OpenBLAS at init.
var (
	backend     blas.Float32Level3 = gonum.Implementation{}
	backendName                    = "gonum (pure Go)"
	// backendSingleThreaded says gemm must spread work over cores itself;
	// gonum's kernels already do.
	backendSingleThreaded = false
)

// BLASName names the BLAS implementation this binary uses.
func BLASName() string { return backendName }

// KernelsName names the element-wise kernels (softmax rows, GELU) in use:
// the Go loops, or the native vectorised C of the openblas build.
func KernelsName() string { return vecmathName }

// Gemm computes C = alpha·op(A)·op(B) + beta·C on row-major matrices, where
// op(A) is m×k and op(B) is k×n.
func Gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	ta, tb := blas.NoTrans, blas.NoTrans
	if transA {
		ta = blas.Trans
	}
	if transB {
		tb = blas.Trans
	}
	// Large products are split by output rows across cores here rather than
	// inside BLAS: OpenBLAS's own threads spin against the goroutines that
	// run attention and element-wise ops, which cost more than they gave.
	// The split depends on the shape alone (see maxChunks): OpenBLAS may pick
	// another kernel for another number of rows, so a split by core count
	// would change the last bits with the core count. gonum's kernels split
	// C into fixed blocks themselves and need no help.
	const minFlopsPerChunk = 1 << 21
	chunks := min(maxChunks, max(1, m*n*k/minFlopsPerChunk))
	if chunks <= 1 || !backendSingleThreaded {
		backend.Sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	// Pieces of at least minRowsPerChunk rows. A forward product with fewer
	// rows (one image's tokens) is cut into column blocks instead, so that
	// each call still gets every row and enough columns to run at speed:
	// batch-1 inference runs 1.5× faster on two cores. OpenBLAS's edge
	// kernels may round a column block's last bits differently from a whole
	// call's; the cut still depends on the shape alone. Weight gradients
	// (transA) keep the row cut they always had, so training runs give the
	// bits they gave before.
	const minRowsPerChunk, minColsPerChunk = 48, 32
	if transA || m >= chunks*minRowsPerChunk || n < 2*minColsPerChunk {
		parallelChunks(m, min(chunks, m), func(_, lo, hi int) {
			aOff := lo * lda // row lo of A
			if transA {
				aOff = lo // column lo of Aᵀ's storage
			}
			backend.Sgemm(ta, tb, hi-lo, n, k, alpha, a[aOff:], lda, b, ldb, beta, c[lo*ldc:], ldc)
		})
		return
	}
	parallelChunks(n, min(chunks, n/minColsPerChunk), func(_, lo, hi int) {
		bOff := lo // column lo of B
		if transB {
			bOff = lo * ldb // row lo of Bᵀ's storage
		}
		backend.Sgemm(ta, tb, m, hi-lo, k, alpha, a, lda, b[bOff:], ldb, beta, c[lo:], ldc)
	})
}
