package autograd

import "math"

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
	// layerNormRows normalises rows rows of width d of x into y (y =
	// (x − μ)·r·g + b), storing each row's μ and r = 1/√(σ² + eps); the
	// statistics are summed in float64.
	layerNormRows = layerNormRowsGo
	// addRows adds the length-n vector b to each of the m rows of y.
	addRows = addRowsGo
	// addInto adds x to y element by element.
	addInto = addIntoGo
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

func layerNormRowsGo(y, x, g, b, mean, rstd []float32, rows, d int, eps float64) {
	for i := 0; i < rows; i++ {
		row := x[i*d : i*d+d]
		var s float64
		for _, v := range row {
			s += float64(v)
		}
		mu := s / float64(d)
		var ss float64
		for _, v := range row {
			dv := float64(v) - mu
			ss += dv * dv
		}
		r := 1 / math.Sqrt(ss/float64(d)+eps)
		mean[i], rstd[i] = float32(mu), float32(r)
		out := y[i*d : i*d+d]
		mu32, r32 := float32(mu), float32(r)
		for j, v := range row {
			out[j] = (v-mu32)*r32*g[j] + b[j]
		}
	}
}

func addRowsGo(y, b []float32, m, n int) {
	for i := 0; i < m; i++ {
		row := y[i*n : i*n+n]
		for j, bj := range b[:n] {
			row[j] += bj
		}
	}
}

func addIntoGo(y, x []float32) {
	for i, v := range x {
		y[i] = v + y[i]
	}
}
