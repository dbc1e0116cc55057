package taylorattn

import (
	"math"
	"testing"

	"vitc/autograd"
)

func randQKV(seed int64, b, n, d int, offset float32) *autograd.Tensor {
	t := autograd.NewParamTensor(b, n, 3*d)
	autograd.NewRNG(seed, 1).TruncNormal(t.Data, 1)
	// Shift the keys so centring has work to do.
	for i := 0; i < b*n; i++ {
		for c := d; c < 2*d; c++ {
			t.Data[i*3*d+c] += offset
		}
	}
	return t
}

func TestTaylorAttentionGradient(t *testing.T) {
	const b, n, heads, hd = 2, 5, 2, 3
	qkv := randQKV(1, b, n, heads*hd, 0.7)
	err := autograd.GradCheck(func(tp *autograd.Tape) *autograd.Tensor {
		return autograd.Project(tp, Attention(tp, qkv, heads, false).Out, 2)
	}, []*autograd.Tensor{qkv}, 1e-2)
	if err > 2e-2 {
		t.Errorf("finite-difference gradient error %.3g", err)
	}
}

// explicit computes the N×N form a_ij = (1 + s·q_i·k̂_j) / Σ_l (1 + s·q_i·k̂_l)
// in float64 and applies it to V.
func explicit(qkv *autograd.Tensor, heads int) (out []float64, cls []float64) {
	b, n, d3 := qkv.Shape[0], qkv.Shape[1], qkv.Shape[2]
	d := d3 / 3
	hd := d / heads
	s := 1 / math.Sqrt(float64(hd))
	at := func(bi, i, part, h, c int) float64 { return float64(qkv.Data[(bi*n+i)*d3+part*d+h*hd+c]) }
	out = make([]float64, b*n*d)
	cls = make([]float64, b*n)
	for bi := 0; bi < b; bi++ {
		for h := 0; h < heads; h++ {
			mean := make([]float64, hd)
			for j := 0; j < n; j++ {
				for c := 0; c < hd; c++ {
					mean[c] += at(bi, j, 1, h, c) / float64(n)
				}
			}
			for i := 0; i < n; i++ {
				a := make([]float64, n)
				var z float64
				for j := 0; j < n; j++ {
					var dot float64
					for c := 0; c < hd; c++ {
						dot += at(bi, i, 0, h, c) * (at(bi, j, 1, h, c) - mean[c])
					}
					a[j] = 1 + s*dot
					z += a[j]
				}
				for j := range a {
					a[j] /= z
					if i == 0 {
						cls[bi*n+j] += a[j] / float64(heads)
					}
					for c := 0; c < hd; c++ {
						out[(bi*n+i)*d+h*hd+c] += a[j] * at(bi, j, 2, h, c)
					}
				}
			}
		}
	}
	return out, cls
}

func TestTaylorAttentionEqualsExplicitForm(t *testing.T) {
	const b, n, heads, hd = 2, 7, 3, 4
	qkv := randQKV(3, b, n, heads*hd, 2.5)
	res := Attention(autograd.NewTape(false), qkv, heads, true)
	want, wantCLS := explicit(qkv, heads)
	for i, w := range want {
		if math.Abs(float64(res.Out.Data[i])-w) > 1e-5*math.Max(1, math.Abs(w)) {
			t.Fatalf("out[%d] = %v, explicit form %v", i, res.Out.Data[i], w)
		}
	}
	mean := meanCLS(res)
	for i, w := range wantCLS {
		if math.Abs(float64(mean[i])-w) > 1e-6 {
			t.Fatalf("cls attention[%d] = %v, explicit form %v", i, mean[i], w)
		}
	}
}

func TestTaylorApproximatesSoftmaxForSmallScores(t *testing.T) {
	// With small scores exp(x) ≈ 1 + x, so Taylor attention ≈ softmax.
	const b, n, heads, hd = 1, 16, 2, 8
	qkv := randQKV(4, b, n, heads*hd, 0)
	for i := range qkv.Data {
		if (i%(3*heads*hd))/(heads*hd) < 2 { // q and k only
			qkv.Data[i] *= 0.05
		}
	}
	tay := Attention(autograd.NewTape(false), qkv, heads, false).Out
	soft := autograd.SoftmaxAttention(autograd.NewTape(false), qkv, heads, false).Out
	for i := range tay.Data {
		if math.Abs(float64(tay.Data[i]-soft.Data[i])) > 1e-3 {
			t.Fatalf("out[%d]: taylor %v, softmax %v", i, tay.Data[i], soft.Data[i])
		}
	}
}

// meanCLS averages the cls query's attention over the heads: (B, N).
func meanCLS(r autograd.AttentionResult) []float32 {
	b, n := r.Out.Shape[0], r.Out.Shape[1]
	out := make([]float32, b*n)
	for bi := 0; bi < b; bi++ {
		for h := 0; h < r.Heads; h++ {
			for j, v := range r.CLSAttention[(bi*r.Heads+h)*n : (bi*r.Heads+h+1)*n] {
				out[bi*n+j] += v / float32(r.Heads)
			}
		}
	}
	return out
}
