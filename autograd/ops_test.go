package autograd

import (
	"math"
	"slices"
	"testing"
)

func randTensor(seed int64, std float64, shape ...int) *Tensor {
	t := NewParamTensor(shape...)
	NewRNG(seed, 1).TruncNormal(t.Data, std)
	return t
}

const gradTol = 2e-2

func checkGrad(t *testing.T, name string, f func(tp *Tape) *Tensor, inputs ...*Tensor) {
	t.Helper()
	if err := GradCheck(f, inputs, 1e-2); err > gradTol {
		t.Errorf("%s: finite-difference gradient error %.4g > %g", name, err, gradTol)
	}
}

func TestLinearGradient(t *testing.T) {
	x, w, b := randTensor(1, 1, 3, 4, 5), randTensor(2, 0.5, 6, 5), randTensor(3, 0.5, 6)
	checkGrad(t, "Linear", func(tp *Tape) *Tensor { return Project(tp, Linear(tp, x, w, b), 7) }, x, w, b)
}

func TestLinearMatchesDefinition(t *testing.T) {
	x, w, b := randTensor(1, 1, 2, 3), randTensor(2, 1, 4, 3), randTensor(3, 1, 4)
	y := Linear(NewTape(false), x, w, b)
	for i := 0; i < 2; i++ {
		for o := 0; o < 4; o++ {
			want := b.Data[o]
			for k := 0; k < 3; k++ {
				want += x.Data[i*3+k] * w.Data[o*3+k]
			}
			if d := math.Abs(float64(y.Data[i*4+o] - want)); d > 1e-5 {
				t.Fatalf("y[%d,%d] = %v, want %v", i, o, y.Data[i*4+o], want)
			}
		}
	}
}

func TestLayerNormGradient(t *testing.T) {
	x := randTensor(4, 2, 5, 8)
	g, b := randTensor(5, 0.5, 8), randTensor(6, 0.5, 8)
	for i := range g.Data {
		g.Data[i] += 1
	}
	checkGrad(t, "LayerNorm", func(tp *Tape) *Tensor { return Project(tp, LayerNorm(tp, x, g, b, 1e-6), 8) }, x, g, b)
}

func TestLayerNormNormalises(t *testing.T) {
	x := randTensor(4, 3, 2, 16)
	for i := range x.Data {
		x.Data[i] += 1000 // a large offset must not cost precision
	}
	g, b := NewParamTensor(16), NewParamTensor(16)
	for i := range g.Data {
		g.Data[i] = 1
	}
	y := LayerNorm(NewTape(false), x, g, b, 1e-6)
	for r := 0; r < 2; r++ {
		var m, v float64
		for _, e := range y.Data[r*16 : r*16+16] {
			m += float64(e) / 16
		}
		for _, e := range y.Data[r*16 : r*16+16] {
			v += (float64(e) - m) * (float64(e) - m) / 16
		}
		if math.Abs(m) > 1e-3 || math.Abs(v-1) > 1e-2 {
			t.Errorf("row %d: mean %.3g var %.3g", r, m, v)
		}
	}
}

func TestGELUGradientAndValues(t *testing.T) {
	x := randTensor(9, 2, 40)
	checkGrad(t, "GELU", func(tp *Tape) *Tensor { return Project(tp, GELU(tp, x), 10) }, x)
	// Reference values of x·Φ(x) (torch.nn.functional.gelu, approximate='none').
	cases := map[float32]float64{-3: -0.0040496, -1: -0.1586553, 0: 0, 0.5: 0.3457312, 2: 1.9544997}
	for in, want := range cases {
		got := GELU(NewTape(false), FromData([]float32{in}, 1)).Data[0]
		if math.Abs(float64(got)-want) > 1e-6 {
			t.Errorf("GELU(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestSoftmaxGradient(t *testing.T) {
	x := randTensor(11, 2, 3, 7)
	checkGrad(t, "Softmax", func(tp *Tape) *Tensor { return Project(tp, Softmax(tp, x), 12) }, x)
}

func TestSoftmaxExtremeLogits(t *testing.T) {
	// Rows far apart in magnitude: a max taken from another row would
	// overflow or underflow every exponential of this one.
	x := FromData([]float32{-1e4, 0, 1e4, 1e4, 1e4 + 1, -3e4, 80, 90, 100}, 3, 3)
	y := Softmax(NewTape(false), x)
	for r := 0; r < 3; r++ {
		var s float32
		for _, v := range y.Data[r*3 : r*3+3] {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("row %d: non-finite %v", r, y.Data[r*3:r*3+3])
			}
			s += v
		}
		if math.Abs(float64(s)-1) > 1e-6 {
			t.Errorf("row %d sums to %v", r, s)
		}
	}
	if math.Abs(float64(y.Data[4])-1/(1+math.Exp(-1))) > 1e-6 {
		t.Errorf("softmax(1e4, 1e4+1)[1] = %v", y.Data[4])
	}
}

func TestCrossEntropyGradient(t *testing.T) {
	x := randTensor(13, 2, 4, 6)
	labels := []int{0, 5, 2, 2}
	for _, eps := range []float32{0, 0.1} {
		checkGrad(t, "CrossEntropy", func(tp *Tape) *Tensor { return CrossEntropy(tp, x, labels, eps) }, x)
	}
}

func TestCrossEntropyValuesAndExtremes(t *testing.T) {
	// torch.nn.CrossEntropyLoss(label_smoothing=0.1)(tensor([[1.,2.,3.]]), tensor([0])) = 2.3076059
	got := CrossEntropy(NewTape(false), FromData([]float32{1, 2, 3}, 1, 3), []int{0}, 0.1).Data[0]
	if math.Abs(float64(got)-2.3076059) > 1e-5 {
		t.Errorf("CE = %v, want 2.3076059", got)
	}
	x := NewParamTensor(2, 3)
	copy(x.Data, []float32{1e4, -1e4, 0, -5e4, 5e4, 5e4})
	tp := NewTape(true)
	loss := CrossEntropy(tp, x, []int{1, 2}, 0)
	tp.Backward(loss)
	// Row 0 puts all mass on a wrong class by a margin of 2e4: loss 2e4/2.
	if math.Abs(float64(loss.Data[0])-(2e4+math.Log(2))/2) > 1 {
		t.Errorf("extreme CE = %v", loss.Data[0])
	}
	for _, g := range x.Grad {
		if math.IsNaN(float64(g)) || math.IsInf(float64(g), 0) {
			t.Fatalf("non-finite gradient %v", x.Grad)
		}
	}
}

func TestSoftCrossEntropyGradient(t *testing.T) {
	x := randTensor(14, 2, 3, 5)
	target := make([]float32, 15)
	for r := 0; r < 3; r++ {
		SoftmaxRow(target[r*5:r*5+5], randTensor(int64(20+r), 1, 5).Data)
	}
	checkGrad(t, "SoftCrossEntropy", func(tp *Tape) *Tensor { return SoftCrossEntropy(tp, x, target, 2) }, x)
}

func TestSoftmaxAttentionGradient(t *testing.T) {
	const b, n, heads, hd = 2, 5, 2, 3
	qkv := randTensor(15, 1, b, n, 3*heads*hd)
	checkGrad(t, "SoftmaxAttention", func(tp *Tape) *Tensor {
		return Project(tp, SoftmaxAttention(tp, qkv, heads, false).Out, 16)
	}, qkv)
}

func TestSoftmaxAttentionMatchesNaive(t *testing.T) {
	const b, n, heads, hd = 2, 4, 2, 3
	d := heads * hd
	qkv := randTensor(17, 1, b, n, 3*d)
	res := SoftmaxAttention(NewTape(false), qkv, heads, true)
	at := func(bi, i, part, h, j int) float64 { return float64(qkv.Data[(bi*n+i)*3*d+part*d+h*hd+j]) }
	for bi := 0; bi < b; bi++ {
		clsWant := make([]float64, n)
		for h := 0; h < heads; h++ {
			for i := 0; i < n; i++ {
				scores := make([]float64, n)
				var mx float64 = math.Inf(-1)
				for j := 0; j < n; j++ {
					for c := 0; c < hd; c++ {
						scores[j] += at(bi, i, 0, h, c) * at(bi, j, 1, h, c) / math.Sqrt(hd)
					}
					mx = math.Max(mx, scores[j])
				}
				var z float64
				for j := range scores {
					scores[j] = math.Exp(scores[j] - mx)
					z += scores[j]
				}
				for c := 0; c < hd; c++ {
					var want float64
					for j := 0; j < n; j++ {
						want += scores[j] / z * at(bi, j, 2, h, c)
					}
					got := float64(res.Out.Data[(bi*n+i)*d+h*hd+c])
					if math.Abs(got-want) > 1e-5 {
						t.Fatalf("out[%d,%d,%d] = %v, want %v", bi, i, h*hd+c, got, want)
					}
				}
				if i == 0 {
					for j := range scores {
						clsWant[j] += scores[j] / z / heads
					}
				}
			}
		}
		mean := meanCLS(res)
		for j, w := range clsWant {
			if math.Abs(float64(mean[bi*n+j])-w) > 1e-5 {
				t.Fatalf("cls attention [%d,%d] = %v, want %v", bi, j, mean[bi*n+j], w)
			}
		}
	}
}

func TestTokenOpsGradient(t *testing.T) {
	patches, cls, pos := randTensor(18, 1, 2, 3, 4), randTensor(19, 1, 1, 1, 4), randTensor(20, 1, 1, 4, 4)
	checkGrad(t, "PrependCLSAddPos", func(tp *Tape) *Tensor {
		return Project(tp, PrependCLSAddPos(tp, patches, cls, pos), 21)
	}, patches, cls, pos)
	tok := randTensor(29, 1, 1, 1, 4)
	checkGrad(t, "PrependToken", func(tp *Tape) *Tensor {
		return Project(tp, PrependToken(tp, patches, tok), 30)
	}, patches, tok)
	x := randTensor(22, 1, 2, 3, 4)
	checkGrad(t, "SelectToken", func(tp *Tape) *Tensor { return Project(tp, SelectToken(tp, x, 0), 23) }, x)
	a, c := randTensor(24, 1, 6), randTensor(25, 1, 6)
	checkGrad(t, "Add", func(tp *Tape) *Tensor { return Project(tp, Add(tp, a, c), 26) }, a, c)
	checkGrad(t, "Scale", func(tp *Tape) *Tensor { return Project(tp, Scale(tp, a, -1.5), 27) }, a)
	mask := []float32{1, 0, 1, 1, 0, 1}
	checkGrad(t, "Mask", func(tp *Tape) *Tensor { return Project(tp, Mask(tp, a, mask), 28) }, a)
}

func TestIm2Patches(t *testing.T) {
	// One 2-channel 4×4 image with pixel value = c*100 + y*10 + x.
	x := make([]float32, 32)
	for c := 0; c < 2; c++ {
		for y := 0; y < 4; y++ {
			for xx := 0; xx < 4; xx++ {
				x[c*16+y*4+xx] = float32(c*100 + y*10 + xx)
			}
		}
	}
	p := Im2Patches(NewTape(false), FromData(x, 1, 2, 4, 4), 2)
	// Patch 3 is the bottom-right one; (c, ky, kx) order.
	want := []float32{22, 23, 32, 33, 122, 123, 132, 133}
	for i, w := range want {
		if got := p.Data[3*8+i]; got != w {
			t.Fatalf("patch 3 = %v, want %v", p.Data[24:32], want)
		}
	}
}

func TestTapeReuseAllocatesOnce(t *testing.T) {
	x, w := randTensor(1, 1, 8, 4), randTensor(2, 1, 4, 4)
	tp := NewTape(true)
	step := func() {
		tp.Reset()
		w.Grad = make([]float32, w.Len())
		loss := Project(tp, GELU(tp, Linear(tp, x, w, nil)), 3)
		tp.Backward(loss)
	}
	step()
	first := tp.pool.allocs
	step()
	if tp.pool.allocs != first {
		t.Errorf("the pool allocated %d more buffers on an identical step", tp.pool.allocs-first)
	}
	tp.Reset()
	if tp.pool.live != 0 {
		t.Errorf("%d floats still live after Reset", tp.pool.live)
	}
}

func TestAdamWMatchesTorch(t *testing.T) {
	// Two steps of torch.optim.AdamW(lr=0.1, weight_decay=0.5), compared
	// with a float64 transcription of torch's update.
	ps := NewParams()
	p := ps.Add("w", 1, 2)
	copy(p.Data, []float32{1, -2})
	opt := NewAdamW(0.5)
	copy(p.Grad, []float32{0.5, -1})
	opt.Update(ps, 0.1)
	copy(p.Grad, []float32{0.1, 0.2})
	opt.Update(ps, 0.1)
	want := adamwReference([]float64{1, -2}, [][]float64{{0.5, -1}, {0.1, 0.2}}, 0.1, 0.5)
	for i := range want {
		if math.Abs(float64(p.Data[i])-want[i]) > 1e-5 {
			t.Errorf("p[%d] = %v, want %v", i, p.Data[i], want[i])
		}
	}
}

// adamwReference is a direct float64 transcription of torch's AdamW.
func adamwReference(p []float64, grads [][]float64, lr, wd float64) []float64 {
	m := make([]float64, len(p))
	v := make([]float64, len(p))
	for step, g := range grads {
		t := float64(step + 1)
		for i := range p {
			p[i] *= 1 - lr*wd
			m[i] = 0.9*m[i] + 0.1*g[i]
			v[i] = 0.999*v[i] + 0.001*g[i]*g[i]
			mh := m[i] / (1 - math.Pow(0.9, t))
			vh := v[i] / (1 - math.Pow(0.999, t))
			p[i] -= lr * mh / (math.Sqrt(vh) + 1e-8)
		}
	}
	return p
}

func TestDecayGroups(t *testing.T) {
	// The rank rule: matrices decay, vectors (biases, norm gains) do not.
	// Names are the model's business (vit's NoWeightDecay).
	ps := NewParams()
	for name, shape := range map[string][]int{"blocks.0.attn.qkv.weight": {12, 4}, "patch_embed.proj.weight": {4, 1, 2, 2},
		"blocks.0.attn.qkv.bias": {12}, "norm.weight": {4}} {
		if got, want := ps.Add(name, shape...).Decay, len(shape) >= 2; got != want {
			t.Errorf("%s %v: decay %v, want %v", name, shape, got, want)
		}
	}
}

func TestCosineSchedule(t *testing.T) {
	s := CosineSchedule{Base: 1, Min: 0.1, Warmup: 4, Total: 14}
	if got := s.At(0); math.Abs(got-0.25) > 1e-12 {
		t.Errorf("warm-up step 0: %v", got)
	}
	if got := s.At(3); got != 1 {
		t.Errorf("end of warm-up: %v", got)
	}
	if got := s.At(9); math.Abs(got-0.55) > 1e-12 {
		t.Errorf("midpoint: %v, want 0.55", got)
	}
	if got := s.At(14); math.Abs(got-0.1) > 1e-12 {
		t.Errorf("end: %v, want 0.1", got)
	}
}

func TestClipGradNorm(t *testing.T) {
	ps := NewParams()
	p := ps.Add("w", 2, 2)
	copy(p.Grad, []float32{3, 0, 0, 4})
	if n := ps.ClipGradNorm(1); math.Abs(n-5) > 1e-9 {
		t.Errorf("norm %v, want 5", n)
	}
	if n := ps.GradNorm(); math.Abs(n-1) > 1e-5 {
		t.Errorf("clipped norm %v, want 1", n)
	}
}

// meanCLS averages the cls query's attention over the heads: (B, N).
func meanCLS(r AttentionResult) []float32 {
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

// LRScale s makes a parameter step exactly as with learning rate s·lr, and a
// frozen parameter does not move, weight decay included.
func TestAdamWLRScale(t *testing.T) {
	mk := func() (*Params, *Param, *Param) {
		ps := NewParams()
		a, b := ps.Add("a", 2, 2), ps.Add("b", 2, 2)
		for i := range a.Data {
			a.Data[i], b.Data[i] = float32(i+1), float32(i+1)
			a.Grad[i], b.Grad[i] = 0.5-float32(i), 0.5-float32(i)
		}
		return ps, a, b
	}
	ps, a, b := mk()
	a.LRScale = 0.25
	b.Freeze()
	NewAdamW(0.1).Update(ps, 0.2)
	ref, ra, _ := mk()
	ra.LRScale = 1
	NewAdamW(0.1).Update(ref, 0.05)
	if !slices.Equal(a.Data, ra.Data) {
		t.Errorf("scale 0.25 at lr 0.2: %v, want lr 0.05's %v", a.Data, ra.Data)
	}
	if !slices.Equal(b.Data, []float32{1, 2, 3, 4}) || b.NeedsGrad() {
		t.Errorf("frozen parameter moved to %v (needs grad %v)", b.Data, b.NeedsGrad())
	}
}
