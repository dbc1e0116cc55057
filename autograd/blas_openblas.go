//go:build openblas && cgo

package autograd

// #cgo LDFLAGS: -lopenblas
// void openblas_set_num_threads(int num_threads);
import "C"

import "gonum.org/v1/netlib/blas/netlib"

func init() {
	backend = netlib.Implementation{}
	backendName = "OpenBLAS (cgo)"
	// vitc parallelises around BLAS calls (see gemm), so each call runs on
	// the calling goroutine's thread.
	C.openblas_set_num_threads(1)
	backendSingleThreaded = true
}
