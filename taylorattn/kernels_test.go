package taylorattn

import (
	"math"
	"testing"

	"vitc/autograd"
)

// TestKernelsMatchGo runs the kernels in use (the vectorised C of the
// openblas build, else the Go ones) and the Go versions on the same random
// heads: the same masks and counts, values within float32 rounding of
// another order of summation.
func TestKernelsMatchGo(t *testing.T) {
	t.Logf("kernels: %s", kernelsName)
	for _, n := range []int{1, 31, 50, 64, 197} {
		const hd, ld = 12, 40
		rng := autograd.NewRNG(int64(n), 3)
		x := make([]float32, n*ld)
		rng.TruncNormal(x, 2)
		same := func(what string, got, want []float32, tol float64) {
			t.Helper()
			if e := relErr(got, want); e > tol || math.IsNaN(e) && !allZero(got, want) {
				t.Errorf("n=%d %s: relative difference %.3g", n, what, e)
			}
		}
		a, b := make([]float32, n*hd), make([]float32, n*hd)
		centre(a, hd, x[2:], ld, n, hd)
		centreGo(b, hd, x[2:], ld, n, hd)
		same("centre", a, b, 0)
		ga, gb := make([]float32, n*ld), make([]float32, n*ld)
		uncentreInto(ga, ld, a, hd, n, hd)
		uncentreIntoGo(gb, ld, b, hd, n, hd)
		same("uncentreInto", ga, gb, 0)
		fakeQuant4(a, x, ld, n, hd)
		fakeQuant4Go(b, x, ld, n, hd)
		same("fakeQuant4", a, b, 0)
		lo, hi := minMax(x[3:], n, ld, hd)
		glo, ghi := minMaxGo(x[3:], n, ld, hd)
		if lo != glo || hi != ghi {
			t.Errorf("n=%d: range [%v, %v], Go [%v, %v]", n, lo, hi, glo, ghi)
		}
		r := tensorRange(x, n, ld, 0, hd)
		quantAsym4(a, x, ld, n, hd, r.lo, r.scale)
		quantAsym4Go(b, x, ld, n, hd, r.lo, r.scale)
		same("quantAsym4", a, b, 0)

		words := (n + 31) / 32
		z := make([]float32, n*n)
		rng.TruncNormal(z, 1.5)
		pt := append([]float32(nil), z...)
		autograd.SoftmaxRows(pt, n, n)
		theta := float32(0.5) / float32(n)
		type state struct{ pt, sm, mask, den, ds []float32 }
		run := func(native bool) (st state, nnz, nnz2 int, abs, sum float64) {
			st = state{append([]float32(nil), pt...), make([]float32, n*n), make([]float32, n*words), make([]float32, n), make([]float32, n*n)}
			mt, mk, sub, sg := maskTaylor, maskKeep, subMasked, scoreGrad
			if !native {
				mt, mk, sub, sg = maskTaylorGo, maskKeepGo, subMaskedGo, scoreGradGo
			}
			nnz = mt(z, st.pt, st.mask, st.den, n, words, theta)
			// st.pt now holds A on the mask; P is z's softmax
			copy(st.sm, st.pt)
			abs = sub(pt, st.sm, st.mask, n, words)
			rng := autograd.NewRNG(7, 7)
			rng.TruncNormal(st.ds, 1)
			sg(pt, st.sm, st.mask, st.ds, st.den, n, words, 0.3)
			vit := make([]float32, n*n)
			nnz2, sum = mk(pt, vit, st.mask, n, words, theta)
			dv := make([]float32, n*n)
			rng.TruncNormal(dv, 1)
			sg(pt, vit, st.mask, dv, nil, n, words, 0.3)
			st.ds = append(st.ds, dv...)
			return st, nnz, nnz2, abs, sum
		}
		c, cn, cn2, cabs, csum := run(true)
		g, gn, gn2, gabs, gsum := run(false)
		if cn != gn || cn2 != gn2 || cn != cn2 {
			t.Errorf("n=%d: kept %d/%d (kernels), %d/%d (Go)", n, cn, cn2, gn, gn2)
		}
		for i := range c.mask {
			if math.Float32bits(c.mask[i]) != math.Float32bits(g.mask[i]) {
				t.Fatalf("n=%d: mask word %d differs", n, i)
			}
		}
		same("den", c.den, g.den, 1e-6)
		same("S", c.sm, g.sm, 1e-6)
		same("score gradient", c.ds, g.ds, 1e-5)
		// S·V and its gradients over the mask's rows, hd 12 in rows of 40
		v, do := make([]float32, n*ld), make([]float32, n*ld)
		rng.TruncNormal(v, 1)
		rng.TruncNormal(do, 1)
		sv := func(native bool) (out, ds, dv []float32) {
			out, ds, dv = make([]float32, n*ld), make([]float32, n*n), make([]float32, n*ld)
			f, g := sparseSV, sparseGradSV
			if !native {
				f, g = sparseSVGo, sparseGradSVGo
			}
			f(c.sm, c.mask, v, ld, out, ld, n, words, hd, 0.7)
			g(do, ld, v, dv, ld, c.sm, c.mask, ds, n, words, hd, 0.7)
			return out, ds, dv
		}
		co, cds, cdv := sv(true)
		gno, gds, gdv := sv(false)
		same("S·V", co, gno, 1e-6)
		same("dS", cds, gds, 1e-6)
		same("dV", cdv, gdv, 1e-6)
		if math.Abs(cabs-gabs) > 1e-5*gabs || math.Abs(csum-gsum) > 1e-5*gsum {
			t.Errorf("n=%d: Σ|S| %v vs %v, Σ S %v vs %v", n, cabs, gabs, csum, gsum)
		}
	}
}

func allZero(xs ...[]float32) bool {
	for _, x := range xs {
		for _, v := range x {
			if v != 0 {
				return false
			}
		}
	}
	return true
}
