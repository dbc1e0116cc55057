package intmath

import (
	"math"
	"math/rand"
	"testing"
)

func TestMultiplierMatchesItsReal(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 2000; i++ {
		r := math.Exp(rng.Float64()*40 - 30) // 1e-13 .. 2e4
		m, err := NewMultiplier(r)
		if err != nil {
			t.Fatal(err)
		}
		if rel := math.Abs(m.Real()-r) / r; rel > 1e-9 && r > 1e-9 {
			t.Fatalf("multiplier for %g stands for %g", r, m.Real())
		}
		x := int64(rng.Int31()) - 1<<30
		want := math.Floor(float64(x)*m.Real() + 0.5)
		if got := m.Apply(x); math.Abs(float64(got)-want) > 0 {
			t.Fatalf("Apply(%d) with %g = %d, want %g", x, r, got, want)
		}
	}
	for _, bad := range []float64{-1, math.NaN(), math.Inf(1), 1 << 31} {
		if _, err := NewMultiplier(bad); err == nil {
			t.Errorf("NewMultiplier(%g) accepted", bad)
		}
	}
}

func TestISqrtIsFloorSqrt(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	for i := 0; i < 100000; i++ {
		x := rng.Uint64() >> uint(rng.Intn(64))
		r := ISqrt(x)
		if r*r > x || (r+1)*(r+1) <= x && r+1 < 1<<32 {
			t.Fatalf("ISqrt(%d) = %d", x, r)
		}
	}
	for x := uint64(0); x < 5000; x++ {
		if r := ISqrt(x); r != uint64(math.Sqrt(float64(x))) {
			t.Fatalf("ISqrt(%d) = %d", x, r)
		}
	}
}

func TestRoundDiv(t *testing.T) {
	for _, c := range [][3]int64{{7, 2, 4}, {-7, 2, -4}, {5, 3, 2}, {-5, 3, -2}, {0, 5, 0}, {9, 3, 3}} {
		if got := RoundDiv(c[0], c[1]); got != c[2] {
			t.Errorf("RoundDiv(%d, %d) = %d, want %d", c[0], c[1], got, c[2])
		}
	}
}

func TestLayerNormTracksFloat(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	const d = 64
	gamma, beta := make([]float32, d), make([]float32, d)
	for i := range gamma {
		gamma[i] = float32(0.5 + rng.Float64())
		beta[i] = float32(rng.NormFloat64() * 0.3)
	}
	sIn, sOut := 0.05, 4.0/127
	p, err := NewLayerNorm(gamma, beta, 1e-6, sIn, sOut)
	if err != nil {
		t.Fatal(err)
	}
	q, err := LayerNormFromWords(p.Words(), d)
	if err != nil {
		t.Fatal(err)
	}
	x, y := make([]int8, d), make([]int8, d)
	worst := 0.0
	for trial := 0; trial < 200; trial++ {
		for i := range x {
			x[i] = int8(rng.Intn(255) - 127)
		}
		q.Row(y, x)
		worst = math.Max(worst, layerNormSteps(x, y, gamma, beta, sIn, sOut, 127))
	}
	if worst > 1.01 { // within one output step: rounding only
		t.Fatalf("integer LayerNorm is %.2f steps from float", worst)
	}
}

// layerNormSteps is how many output steps the integer LayerNorm's row y is
// from float LayerNorm (ε 1e-6) of x, both at their scales, the float
// result clamped to ±top.
func layerNormSteps[T Act](x, y []T, gamma, beta []float32, sIn, sOut, top float64) float64 {
	d := float64(len(x))
	var mu, v, worst float64
	for _, e := range x {
		mu += float64(e) * sIn
	}
	mu /= d
	for _, e := range x {
		v += (float64(e)*sIn - mu) * (float64(e)*sIn - mu)
	}
	v /= d
	for i := range x {
		want := (float64(x[i])*sIn-mu)/math.Sqrt(v+1e-6)*float64(gamma[i]) + float64(beta[i])
		want = math.Max(-top-1, math.Min(top, want/sOut))
		worst = math.Max(worst, math.Abs(float64(y[i])-want))
	}
	return worst
}

func TestGELUTracksFloat(t *testing.T) {
	sIn, sOut := 8.0/(1<<15), 4.0/127
	p, err := NewGELU(sIn, sOut)
	if err != nil {
		t.Fatal(err)
	}
	p, err = GELUFromWords(p.Words())
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for q := int32(-1 << 15); q < 1<<15; q += 7 {
		x := float64(q) * sIn
		want := x * 0.5 * (1 + math.Erf(x/math.Sqrt2)) / sOut
		want = math.Max(-128, math.Min(127, want))
		worst = math.Max(worst, math.Abs(float64(p.Apply(q))-want))
	}
	// I-BERT's erf polynomial is within about 0.02 of erf: at most a
	// couple of output steps at this scale.
	if worst > 2.5 {
		t.Fatalf("integer GELU is %.2f output steps from float", worst)
	}
}

func TestExpTracksFloat(t *testing.T) {
	for z := int64(0); z > -16<<expFrac; z -= 3 {
		want := math.Exp(float64(z)/(1<<expFrac)) * (1 << 16)
		got := float64(Exp(z))
		if math.Abs(got-want) > 0.005*(1<<16) {
			t.Fatalf("Exp(%d) = %g, want %g", z, got, want)
		}
	}
	if Exp(-1<<40) != 0 {
		t.Fatal("Exp of a huge negative argument is not 0")
	}
}

func TestSoftmaxTracksFloat(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	sIn := 1e-3
	p, _ := NewSoftmax(sIn)
	const n = 50
	scores, probs, probs16 := make([]int32, n), make([]int8, n), make([]int16, n)
	cls, scratch := make([]int64, n), make([]int64, n)
	// int16 probabilities are limited by the exp polynomial (I-BERT's is
	// within about 0.5 % of e^r), not by their step, 1/32767.
	var err8, err16 float64
	for trial := 0; trial < 100; trial++ {
		for j := range scores {
			scores[j] = int32(rng.NormFloat64() * 2000)
		}
		p.Row(probs, scores, scratch)
		p.Row16(probs16, scores, scratch)
		p.ClsRow(cls, scores, scratch)
		var sum float64
		f := make([]float64, n)
		for j, s := range scores {
			f[j] = math.Exp(float64(s) * sIn)
			sum += f[j]
		}
		var total int64
		for j := range f {
			want := f[j] / sum
			if d := math.Abs(float64(probs[j])/ProbOne - want); d > 0.01 {
				t.Fatalf("p_%d = %d/127, want %.4f", j, probs[j], want)
			}
			if d := math.Abs(float64(probs16[j])/ProbOne16 - want); d > 0.01*want+1.0/ProbOne16 {
				t.Fatalf("p_%d = %d/32767, want %.6f", j, probs16[j], want)
			}
			err8 += math.Abs(float64(probs[j])/ProbOne - want)
			err16 += math.Abs(float64(probs16[j])/ProbOne16 - want)
			if d := math.Abs(float64(cls[j])/ScoreOne - want); d > 0.005 {
				t.Fatalf("cls score %d = %g, want %.4f", j, float64(cls[j])/ScoreOne, want)
			}
			total += cls[j]
		}
		if total > ScoreOne || total < ScoreOne-n {
			t.Fatalf("cls scores sum to %d, want just under %d", total, ScoreOne)
		}
	}
	t.Logf("mean error int8 %g int16 %g", err8/(100*n), err16/(100*n))
	if err16 > err8/20 {
		t.Fatalf("mean |error| of int16 probabilities %g is not far below int8's %g", err16/(100*n), err8/(100*n))
	}
}

func TestTaylorRowTracksFloat(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	const n, hd = 17, 16
	attn := 1 / math.Sqrt(hd)
	sQ, sK, sV, sG, sOut := 0.03, 0.02, 0.04, 0.5, 0.01
	p, err := NewTaylor(attn, sQ, sK, sV, sG, sOut)
	if err != nil {
		t.Fatal(err)
	}
	p, _ = TaylorFromWords(p.Words())
	q, qg := make([]int8, hd), make([]int32, hd)
	vbar, kbar := make([]int32, hd), make([]int32, hd)
	out := make([]int8, hd)
	for trial := 0; trial < 500; trial++ {
		for c := 0; c < hd; c++ {
			q[c] = int8(rng.Intn(255) - 127)
			qg[c] = int32(rng.NormFloat64() * 3000)
			vbar[c] = int32(rng.NormFloat64() * 300)
			kbar[c] = int32(rng.Intn(9) - 4)
		}
		p.Row(out, qg, q, vbar, kbar, n)
		var qk float64
		for c := range q {
			qk += float64(q[c]) * sQ * float64(kbar[c]) * sK
		}
		den := n + attn*qk
		for c := range out {
			want := (float64(vbar[c])*sV + attn*float64(qg[c])*sQ*sG) / den / sOut
			want = math.Max(-128, math.Min(127, want))
			if math.Abs(float64(out[c])-want) > 0.51 {
				t.Fatalf("out_%d = %d, want %.3f", c, out[c], want)
			}
		}
	}
}

func TestTopKAndKeepCount(t *testing.T) {
	if k := KeepCount(17, 7, 10); k != 12 { // ⌈0.7·16⌉ = ⌈11.2⌉
		t.Fatalf("KeepCount(17, 0.7) = %d", k)
	}
	if k := KeepCount(11, 7, 10); k != 7 { // 0.7·10 is exactly 7
		t.Fatalf("KeepCount(11, 0.7) = %d", k)
	}
	got := TopK([]int64{99, 5, 9, 9, 1, 7}, 3)
	want := []int{2, 3, 5, 1, 4} // 9, 9 (lower index first), 7 kept
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("TopK = %v, want %v", got, want)
		}
	}
}

// The table GELU is within rounding of float GELU (half an output step,
// plus the table's 1e-5), at the extremes of int32 too, and survives its
// words; the polynomial reader's checks refuse nothing it wrote.
func TestTableGELUTracksFloat(t *testing.T) {
	for _, sc := range [][2]float64{{8.0 / (1 << 15), 4.0 / 127}, {1e-4, 0.05}, {3e-7, 1e-3}} {
		sIn, sOut := sc[0], sc[1]
		p, err := NewGELUTable(sIn, sOut)
		if err != nil {
			t.Fatal(err)
		}
		if p, err = GELUFromWords(p.Words()); err != nil || !p.Table {
			t.Fatalf("table GELU does not round-trip its words: %v", err)
		}
		worst := 0.0
		check := func(q int32) {
			x := float64(q) * sIn
			want := x * 0.5 * (1 + math.Erf(x/math.Sqrt2)) / sOut
			want = math.Max(-128, math.Min(127, want))
			worst = math.Max(worst, math.Abs(float64(p.Apply(q))-want))
		}
		for q := int32(-1 << 16); q < 1<<16; q += 3 {
			check(q)
		}
		for _, q := range []int32{math.MinInt32, math.MinInt32 + 1, math.MaxInt32} {
			check(q)
		}
		if worst > 0.51 {
			t.Fatalf("scales %g/%g: table GELU is %.3f output steps from float", sIn, sOut, worst)
		}
	}
}
