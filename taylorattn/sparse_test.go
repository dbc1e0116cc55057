package taylorattn

import (
	"math"
	"testing"

	"vitc/autograd"
)

func TestCorrectionGradient(t *testing.T) {
	const b, n, heads, hd = 2, 5, 2, 3
	qkv := randQKV(5, b, n, heads*hd, 0.5)
	// θ = 0 keeps every entry, so finite differences never flip the mask.
	err := autograd.GradCheck(func(tp *autograd.Tape) *autograd.Tensor {
		extra, absMean, _ := Correction(tp, qkv, heads, 0.7, 0)
		return autograd.WeightedSum(tp, []*autograd.Tensor{autograd.Project(tp, extra, 6), absMean}, []float32{1, 3})
	}, []*autograd.Tensor{qkv}, 1e-2)
	if err > 3e-2 {
		t.Errorf("finite-difference gradient error %.3g", err)
	}
}

func TestCorrectionRestoresSoftmax(t *testing.T) {
	// With every entry kept and α = 1, A·V + S·V = P·V: softmax attention.
	const b, n, heads, hd = 1, 9, 2, 4
	qkv := randQKV(7, b, n, heads*hd, 1)
	tp := autograd.NewTape(false)
	low := Attention(tp, qkv, heads, false).Out
	extra, _, density := Correction(tp, qkv, heads, 1, 0)
	soft := autograd.SoftmaxAttention(tp, qkv, heads, false).Out
	if density != 1 {
		t.Errorf("θ = 0 kept %.3f of the entries, want all", density)
	}
	for i := range soft.Data {
		if got := low.Data[i] + extra.Data[i]; math.Abs(float64(got-soft.Data[i])) > 1e-5 {
			t.Fatalf("out[%d]: A·V + S·V = %v, softmax %v", i, got, soft.Data[i])
		}
	}
}

func TestCorrectionMaskThreshold(t *testing.T) {
	const b, n, heads, hd = 2, 12, 2, 8
	qkv := randQKV(8, b, n, heads*hd, 0)
	for i := range qkv.Data {
		qkv.Data[i] *= 3 // peaked attention, so a threshold drops entries
	}
	prev := 2.0
	for _, theta := range []float32{0, 0.002, 0.05, 0.2} {
		_, absMean, density := Correction(autograd.NewTape(false), qkv, heads, 1, theta)
		if density > prev || density < 0 || density > 1 {
			t.Errorf("θ=%v: density %v after %v", theta, density, prev)
		}
		if absMean.Data[0] < 0 || math.IsNaN(float64(absMean.Data[0])) {
			t.Errorf("θ=%v: mean|S| = %v", theta, absMean.Data[0])
		}
		prev = density
	}
	if prev >= 1 {
		t.Errorf("θ=0.2 kept every entry of peaked attention")
	}
}

func TestFakeQuant4(t *testing.T) {
	x := []float32{-1.4, 0.05, 0.7, 0.3}
	dst := make([]float32, 4)
	fakeQuant4(dst, x, 2, 2, 2)
	scale := float32(1.4 / 7)
	for i, v := range dst {
		steps := v / scale
		if math.Abs(float64(steps-float32(math.Round(float64(steps))))) > 1e-5 || steps < -8 || steps > 7 {
			t.Errorf("dst[%d] = %v is not on the 4-bit grid of scale %v", i, v, scale)
		}
		if math.Abs(float64(v-x[i])) > float64(scale)/2+1e-6 {
			t.Errorf("dst[%d] = %v, more than half a step from %v", i, v, x[i])
		}
	}
}

func TestSparseSchedule(t *testing.T) {
	s := NewSparse(SparseOptions{Weight: 0.8, Threshold: 0.002, Reg: 0.1, Anneal: 0.25}, 2)
	s.BeforeStep(0, 100)
	if s.Alpha() != 0.8 {
		t.Errorf("α at start = %v", s.Alpha())
	}
	s.BeforeStep(74, 100)
	if s.Alpha() != 0.8 {
		t.Errorf("α before annealing = %v", s.Alpha())
	}
	s.BeforeStep(87, 100)
	if a := s.Alpha(); a <= 0 || a >= 0.8 {
		t.Errorf("α mid-anneal = %v", a)
	}
	s.BeforeStep(99, 100)
	if s.Alpha() != 0 || s.Active() {
		t.Errorf("α at the last step = %v, want 0 (branch off)", s.Alpha())
	}
	if (NewSparse(SparseOptions{Weight: 0}, 2)).Active() {
		t.Error("weight 0 leaves the branch on")
	}
}
