package intmath

import (
	"math"
	"math/rand"
	"testing"
)

func TestSatAndMatmulShift(t *testing.T) {
	if Sat[int8](300) != 127 || Sat[int8](-300) != -128 || Sat[int16](1<<20) != 1<<15-1 || Sat[int16](-1<<20) != -1<<15 || Sat[int16](-5) != -5 {
		t.Fatal("Sat does not saturate to the type's range")
	}
	if Wide[int8]() || !Wide[int16]() {
		t.Fatal("Wide")
	}
	for _, c := range []struct {
		s     int64
		shift uint
		want  int32
	}{{5, 1, 3}, {-5, 1, -2}, {255, 8, 1}, {127, 8, 0}, {128, 8, 1}, {1<<32 + 7, 0, 7}, {-1 << 40, 8, 0}} {
		if got := MatmulShift(c.s, c.shift); got != c.want {
			t.Errorf("MatmulShift(%d, %d) = %d, want %d", c.s, c.shift, got, c.want)
		}
	}
	if RequantTo(Multiplier{M: 1 << 30, Shift: 30}, 40000, OutI16) != 32767 || RequantTo(Multiplier{M: 1 << 30, Shift: 30}, -200, OutI8) != -128 {
		t.Fatal("RequantTo does not saturate to the output type")
	}
}

// With int16 activations the LayerNorm is within one int16 output step of
// float (rounding plus the 16 fraction bits of the normalised value): the
// int8 kernel's reciprocal, 2^32/σ', would keep only about 13 bits here.
func TestLayerNorm16TracksFloat(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	const d = 64
	gamma, beta := make([]float32, d), make([]float32, d)
	for i := range gamma {
		gamma[i] = float32(0.5 + rng.Float64())
		beta[i] = float32(rng.NormFloat64() * 0.3)
	}
	sIn, sOut := 6.0/32767, 4.0/32767
	p, err := NewLayerNormBits(gamma, beta, 1e-6, sIn, sOut, 16)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LayerNormFromWords(p.Words(), d); err == nil {
		t.Fatal("the int8 reader accepts an int16 table's γ")
	}
	q, err := LayerNormFromWordsBits(p.Words(), d, 16)
	if err != nil {
		t.Fatal(err)
	}
	x, y := make([]int16, d), make([]int16, d)
	worst := 0.0
	for trial := 0; trial < 200; trial++ {
		spread := 1 + rng.Intn(32767)
		for i := range x {
			x[i] = int16(rng.Intn(2*spread+1) - spread)
		}
		LayerNormRow(q, y, x)
		worst = math.Max(worst, layerNormSteps(x, y, gamma, beta, sIn, sOut, 32767))
	}
	if worst > 1.01 {
		t.Fatalf("int16 LayerNorm is %.2f steps from float", worst)
	}
}

// The table GELU into int16 at the scales a 16-bit export uses (fc1 at
// 2^23) is within about one output step of float: half a step of rounding
// plus the table's interpolation error, which int16 steps resolve.
func TestTableGELU16TracksFloat(t *testing.T) {
	sIn, sOut := 8.0/(1<<23), 6.0/32767
	p, err := NewGELUTable(sIn, sOut)
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for q := int32(-1 << 23); q < 1<<23; q += 97 {
		x := float64(q) * sIn
		want := x * 0.5 * (1 + math.Erf(x/math.Sqrt2)) / sOut
		want = math.Max(-32768, math.Min(32767, want))
		worst = math.Max(worst, math.Abs(float64(GELUApply[int16](p, q))-want))
	}
	if worst > 1.2 {
		t.Fatalf("int16 table GELU is %.3f output steps from float", worst)
	}
	t.Logf("int16 table GELU: worst %.3f output steps from float", worst)
}

// Taylor's normaliser over int16 queries (q·k̄ shifted right by 8, the
// multiplier carrying 2^8) is within rounding of float.
func TestTaylorRow16TracksFloat(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	const n, hd = 65, 16
	attn := 1 / math.Sqrt(hd)
	sQ, sK, sV, sG, sOut := 0.03/256, 0.02/256, 0.04/256, 0.5/256, 0.01/256
	p, err := NewTaylor(attn, sQ, sK*(1<<TaylorDotShift), sV, sG, sOut)
	if err != nil {
		t.Fatal(err)
	}
	q, qg := make([]int16, hd), make([]int32, hd)
	vbar, kbar := make([]int32, hd), make([]int32, hd)
	out := make([]int16, hd)
	worst := 0.0
	for trial := 0; trial < 500; trial++ {
		for c := 0; c < hd; c++ {
			q[c] = int16(rng.Intn(65535) - 32767)
			qg[c] = int32(rng.NormFloat64() * 3000 * 256)
			vbar[c] = int32(rng.NormFloat64() * 300 * 256)
			kbar[c] = int32(rng.Intn(9*256) - 4*256)
		}
		TaylorRow(p, out, qg, q, vbar, kbar, n)
		var qk float64
		for c := range q {
			qk += float64(q[c]) * sQ * float64(kbar[c]) * sK
		}
		den := n + attn*qk
		for c := range out {
			want := (float64(vbar[c])*sV + attn*float64(qg[c])*sQ*sG) / den / sOut
			want = math.Max(-32768, math.Min(32767, want))
			worst = math.Max(worst, math.Abs(float64(out[c])-want))
		}
	}
	if worst > 0.6 {
		t.Fatalf("int16 Taylor row is %.3f steps from float", worst)
	}
}

func TestCenterAndFuse16(t *testing.T) {
	col := []int16{30000, -30000, 10001, 3}
	out := make([]int16, len(col))
	CenterColumn(out, col, Multiplier{M: 1 << 30, Shift: 29}) // ×2
	// mean 2501 (RoundDiv(10004, 4)); (30000−2501)·2 saturates.
	if want := []int16{32767, -32768, 15000, -4996}; out[0] != want[0] || out[1] != want[1] || out[2] != want[2] || out[3] != want[3] {
		t.Fatalf("CenterColumn = %v, want %v", out, want)
	}
	if got := Fuse([]int16{20000, -4000}, []int64{3 << 16, 1 << 16}, 4<<16); got != 14000 {
		t.Fatalf("Fuse = %d, want 14000", got)
	}
}
