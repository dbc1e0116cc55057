package autograd

// The element-wise kernels of the hot loops. These pure-Go versions are
// always built; the native build (the openblas tag, which needs cgo anyway)
// replaces them in init with C loops the compiler vectorises
// (vecmath_native.go), the same formulas eight lanes at a time.
var (
	// softmaxRows replaces each of rows rows of p (rows·cols values) by its
	// softmax, stable for any logits.
	softmaxRows = softmaxRowsGo
	// geluForward writes y = x·Φ(x).
	geluForward = geluForwardGo
	// geluBackward adds dy·(Φ(x) + x·φ(x)) to dx, Φ computed as the
	// forward pass computes it.
	geluBackward = geluBackwardGo
	// vecmathName names the kernels in use, for `vitc bench`.
	vecmathName = "Go"
)

func softmaxRowsGo(p []float32, rows, cols int) {
	for i := 0; i < rows; i++ {
		SoftmaxRow(p[i*cols:(i+1)*cols], p[i*cols:(i+1)*cols])
	}
}

func geluForwardGo(y, x []float32) {
	for i, v := range x {
		y[i] = v * geluCDF(v)
	}
}

func geluCDF(v float32) float32 { return 0.5 * (1 + erf32(v*invSqrt2)) }

func geluBackwardGo(dx, dy, x []float32) {
	for i, v := range x {
		pdf := invSqrt2Pi * exp32(-0.5*v*v)
		dx[i] += dy[i] * (geluCDF(v) + v*pdf)
	}
}
