package autograd

import "math"

// exp32 and erf32 are float32 versions of math.Exp and math.Erf for the
// element-wise hot loops (softmax rows, GELU). The float64 library
// functions were half of micro inference's CPU time; these are a few
// multiply-adds each and stay within a few float32 ulps (tested against
// the library functions over their whole useful range).

// exp32 is e^x in float32 (Cephes expf: x = n·ln2 + r, |r| ≤ ln2/2, a
// degree-6 polynomial for e^r, then 2^n through the exponent bits).
func exp32(x float32) float32 {
	const (
		maxArg = 88.72283 // e^x overflows float32 above this
		minArg = -87.33654
		log2e  = 1.44269504088896341
		ln2Hi  = 0.693359375
		ln2Lo  = -2.12194440e-4
	)
	// NaN fails both tests and propagates through the polynomial.
	if x > maxArg {
		return float32(math.Inf(1))
	}
	if x < minArg {
		return 0 // below the smallest normal float32; softmax treats it as zero
	}
	// Round x·log2e to the nearest integer by adding and removing 1.5·2^23,
	// which leaves no fraction bits in float32.
	const round = 12582912
	n := (x*log2e + round) - round
	r := x - n*ln2Hi - n*ln2Lo
	// The polynomial in Estrin's form: shorter dependency chains than
	// Horner's, so neighbouring elements overlap in the pipeline.
	r2 := r * r
	p01 := 5.0000001201e-1 + 1.6666665459e-1*r
	p23 := 4.1665795894e-2 + 8.3334519073e-3*r
	p45 := 1.3981999507e-3 + 1.9875691500e-4*r
	p := p01 + r2*(p23+r2*p45)
	y := p*r2 + r + 1
	k := int32(n)
	if k > 127 { // e^x for x just below maxArg: 2^128 is not a float32
		return y * 2 * math.Float32frombits(uint32(k-1+127)<<23)
	}
	return y * math.Float32frombits(uint32(k+127)<<23)
}

// erf32 is erf(x) in float32: the odd/even rational approximation on
// [−4, 4] that Eigen and XLA use (erf(±4) rounds to ±1 in float32), with
// no exponential at all.
func erf32(x float32) float32 {
	x = min(max(x, -4), 4) // NaN passes through min and max
	x2 := x * x
	x4 := x2 * x2
	x8 := x4 * x4
	// Estrin's form, as in exp32.
	p01 := -1.60960333262415e-02 + -2.95459980854025e-03*x2
	p23 := -7.34990630326855e-04 + -5.69250639462346e-05*x2
	p45 := -2.10102402082508e-06 + 2.77068142495902e-08*x2
	p := x * (p01 + x4*p23 + x8*(p45+x4*-2.72614225801306e-10))
	q01 := -1.42647390514189e-02 + -7.37332916720468e-03*x2
	q23 := -1.68282697438203e-03 + -2.13374055278905e-04*x2
	q := q01 + x4*q23 + x8*-1.45660718464996e-05
	return p / q
}
