package autograd

import (
	"math"
	"testing"
)

// ulpDiff is the distance in float32 units in the last place.
func ulpDiff(a, b float32) int64 {
	ia, ib := int64(int32(math.Float32bits(a))), int64(int32(math.Float32bits(b)))
	if ia < 0 {
		ia = math.MinInt32 - ia
	}
	if ib < 0 {
		ib = math.MinInt32 - ib
	}
	d := ia - ib
	if d < 0 {
		d = -d
	}
	return d
}

func TestExp32MatchesMathExp(t *testing.T) {
	worst := int64(0)
	for x := float32(-87); x < 88.7; x += 0.00137 {
		want := float32(math.Exp(float64(x)))
		if d := ulpDiff(exp32(x), want); d > worst {
			worst = d
			if d > 3 {
				t.Fatalf("exp32(%v) = %v, math.Exp gives %v (%d ulp)", x, exp32(x), want, d)
			}
		}
	}
	t.Logf("worst error %d ulp", worst)
	if exp32(0) != 1 {
		t.Errorf("exp32(0) = %v", exp32(0))
	}
	if !math.IsInf(float64(exp32(89)), 1) || exp32(-88) != 0 || exp32(float32(math.Inf(-1))) != 0 {
		t.Errorf("exp32 out of range: %v %v", exp32(89), exp32(-88))
	}
	if nan := float32(math.NaN()); exp32(nan) == exp32(nan) {
		t.Errorf("exp32(NaN) is not NaN")
	}
}

func TestErf32MatchesMathErf(t *testing.T) {
	worst := 0.0
	for x := float32(-6); x < 6; x += 0.000731 {
		want := math.Erf(float64(x))
		d := math.Abs(float64(erf32(x)) - want)
		worst = max(worst, d)
		if d > 4e-7 {
			t.Fatalf("erf32(%v) = %v, math.Erf gives %v (error %.2g)", x, erf32(x), want, d)
		}
	}
	t.Logf("worst absolute error %.3g", worst)
	if nan := float32(math.NaN()); erf32(nan) == erf32(nan) {
		t.Errorf("erf32(NaN) is not NaN")
	}
	if erf32(0) != 0 || erf32(10) != 1 || erf32(-10) != -1 {
		t.Errorf("erf32(0, ±10) = %v %v %v", erf32(0), erf32(10), erf32(-10))
	}
}

// The benchmarks run over a slice, as the softmax and GELU loops do.
var benchIn, benchOut = func() ([]float32, []float32) {
	in := make([]float32, 4096)
	for i := range in {
		in[i] = float32(i)*-0.002 + 2
	}
	return in, make([]float32, len(in))
}()

func BenchmarkExp32(b *testing.B) {
	for i := 0; i < b.N; i++ {
		for j, v := range benchIn {
			benchOut[j] = exp32(v)
		}
	}
}

func BenchmarkErf32(b *testing.B) {
	for i := 0; i < b.N; i++ {
		for j, v := range benchIn {
			benchOut[j] = erf32(v)
		}
	}
}

func BenchmarkMathExp(b *testing.B) {
	for i := 0; i < b.N; i++ {
		for j, v := range benchIn {
			benchOut[j] = float32(math.Exp(float64(v)))
		}
	}
}

func BenchmarkMathErf(b *testing.B) {
	for i := 0; i < b.N; i++ {
		for j, v := range benchIn {
			benchOut[j] = float32(math.Erf(float64(v)))
		}
	}
}
