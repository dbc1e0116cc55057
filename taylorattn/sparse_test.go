package taylorattn

import (
	"math"
	"testing"

	"vitc/autograd"
)

// kernels are the ways S·V can be computed, each checked on its own.
var kernels = []struct {
	name           string
	quant, noQuant kernel
}{{"dense", kernelDense, kernelDenseNoQuant}, {"sparse", kernelSparse, kernelSparseNoQuant}}

func TestCorrectionGradient(t *testing.T) {
	const b, n, heads, hd = 2, 5, 2, 3
	qkv := randQKV(5, b, n, heads*hd, 0.5)
	for _, form := range Formulations {
		for _, kn := range kernels {
			// θ = 0 keeps every entry, so finite differences never flip the
			// mask. ViTALiTy's S is a function of the quantised Q̃, K̃, whose
			// straight-through gradient finite differences cannot see: its
			// check runs without the quantiser (TestTorchOracle checks the
			// straight-through gradient against PyTorch).
			k := kn.quant
			if form == FormulationViTALiTy {
				k = kn.noQuant
			}
			err := autograd.GradCheck(func(tp *autograd.Tape) *autograd.Tensor {
				extra, absMean, _ := correction(tp, qkv, heads, form, 0.7, 0, k)
				return autograd.WeightedSum(tp, []*autograd.Tensor{autograd.Project(tp, extra, 6), absMean}, []float32{1, 3})
			}, []*autograd.Tensor{qkv}, 1e-2)
			if err > 3e-2 {
				t.Errorf("%s, %s: finite-difference gradient error %.3g", form, kn.name, err)
			}
		}
	}
}

func TestCorrectionRestoresSoftmax(t *testing.T) {
	// With every entry kept and α = 1, A·V + S·V = P·V: softmax attention.
	const b, n, heads, hd = 1, 9, 2, 4
	qkv := randQKV(7, b, n, heads*hd, 1)
	for _, kn := range kernels {
		tp := autograd.NewTape(false)
		low := Attention(tp, qkv, heads, false).Out
		extra, _, density := correction(tp, qkv, heads, FormulationVitc, 1, 0, kn.quant)
		soft := autograd.SoftmaxAttention(tp, qkv, heads, false).Out
		if density != 1 {
			t.Errorf("θ = 0 kept %.3f of the entries, want all", density)
		}
		for i := range soft.Data {
			if got := low.Data[i] + extra.Data[i]; math.Abs(float64(got-soft.Data[i])) > 1e-5 {
				t.Fatalf("%s: out[%d]: A·V + S·V = %v, softmax %v", kn.name, i, got, soft.Data[i])
			}
		}
	}
}

func TestCorrectionMaskThreshold(t *testing.T) {
	const b, n, heads, hd = 2, 12, 2, 8
	qkv := randQKV(8, b, n, heads*hd, 0)
	for i := range qkv.Data {
		qkv.Data[i] *= 3 // peaked attention, so a threshold drops entries
	}
	for _, form := range Formulations {
		prev := 2.0
		for _, theta := range []float32{0, 0.002, 0.05, 0.2} {
			_, absMean, density := Correction(autograd.NewTape(false), qkv, heads, form, 1, theta)
			if density > prev || density < 0 || density > 1 {
				t.Errorf("%s, θ=%v: density %v after %v", form, theta, density, prev)
			}
			if absMean.Data[0] < 0 || math.IsNaN(float64(absMean.Data[0])) {
				t.Errorf("%s, θ=%v: mean|S| = %v", form, theta, absMean.Data[0])
			}
			prev = density
		}
		if prev >= 1 {
			t.Errorf("%s: θ=0.2 kept every entry of peaked attention", form)
		}
	}
}

// TestCorrectionKernelsAgree runs a partial mask through the dense and the
// sparse computation of S·V: the same output and gradients.
func TestCorrectionKernelsAgree(t *testing.T) {
	const b, n, heads, hd = 2, 40, 2, 8
	qkv := randQKV(9, b, n, heads*hd, 0.3)
	for i := range qkv.Data {
		qkv.Data[i] *= 2.5
	}
	for _, form := range Formulations {
		run := func(k kernel) (out, grad []float32, density float64) {
			tp := autograd.NewTape(true)
			x := autograd.FromData(append([]float32(nil), qkv.Data...), qkv.Shape...)
			x.Grad = make([]float32, x.Len())
			x.SetNeedsGrad()
			extra, absMean, dens := correction(tp, x, heads, form, 0.6, 0.03, k)
			out = append([]float32(nil), extra.Data...)
			tp.Backward(autograd.WeightedSum(tp, []*autograd.Tensor{autograd.Project(tp, extra, 4), absMean}, []float32{1, 5}))
			return out, x.Grad, dens
		}
		do, dg, dd := run(kernelDense)
		so, sg, sd := run(kernelSparse)
		if dd != sd || dd <= 0.05 || dd >= 0.95 {
			t.Fatalf("%s: densities %v and %v, want one partial mask", form, dd, sd)
		}
		if e := relErr(so, do); e > 1e-6 {
			t.Errorf("%s: sparse output differs from dense by %.3g", form, e)
		}
		if e := relErr(sg, dg); e > 1e-6 {
			t.Errorf("%s: sparse gradient differs from dense by %.3g", form, e)
		}
	}
}

// relErr is max|got − want| / max|want|.
func relErr(got, want []float32) float64 {
	var num, den float64
	for i, w := range want {
		num = math.Max(num, math.Abs(float64(got[i])-float64(w)))
		den = math.Max(den, math.Abs(float64(w)))
	}
	return num / den
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

func TestQuantRange(t *testing.T) {
	// two rows of width 2 inside rows of stride 3: the third column is not
	// part of the tensor
	x := []float32{-1, 0.5, 99, 2.5, 14, -99}
	r := tensorRange(x, 2, 3, 0, 2)
	if r.lo != -1 || r.scale != 1 {
		t.Fatalf("range lo %v scale %v, want -1 and 1", r.lo, r.scale)
	}
	dst := make([]float32, 4)
	r.fakeQuant(dst, x, 3, 2, 2)
	// 1.5 and 3.5 steps above lo round half to even: 2 and 4
	want := []float32{-1, 1, 3, 14}
	for i := range want {
		if dst[i] != want[i] {
			t.Errorf("dst[%d] = %v, want %v", i, dst[i], want[i])
		}
	}
	if c := tensorRange([]float32{3, 3}, 1, 2, 0, 2); c.scale != 1e-8 {
		t.Errorf("a constant tensor's scale is %v, want the 1e-8 floor", c.scale)
	}
}

func TestSparseOptionsFormulation(t *testing.T) {
	for _, f := range []string{"", FormulationVitc, FormulationViTALiTy} {
		o := DefaultSparse
		o.Formulation = f
		if err := o.Validate(); err != nil {
			t.Errorf("%q: %v", f, err)
		}
	}
	o := DefaultSparse
	o.Formulation = "sanger"
	if o.Validate() == nil {
		t.Error("an unknown formulation validates")
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
