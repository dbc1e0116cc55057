//go:build openblas && cgo

package autograd

// #cgo LDFLAGS: -lopenblas
// void openblas_set_num_threads(int num_threads);
// char* openblas_get_corename(void);
import "C"

import "gonum.org/v1/netlib/blas/netlib"

func init() {
	backend = netlib.Implementation{}
	// OpenBLAS picks its kernels per CPU model (OPENBLAS_CORETYPE can force
	// older ones): benchmarks must say which ran.
	backendName = "OpenBLAS (cgo, " + C.GoString(C.openblas_get_corename()) + " kernels)"
	// vitc parallelises around BLAS calls (see gemm), so each call runs on
	// the calling goroutine's thread.
	C.openblas_set_num_threads(1)
	backendSingleThreaded = true
}
