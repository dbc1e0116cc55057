package tokenprune

import (
	"math"
	"slices"
	"strings"
	"testing"

	"vitc/autograd"
)

func TestKeepCount(t *testing.T) {
	cases := []struct {
		n    int
		keep float64
		want int
	}{
		{11, 0.7, 7},
		{101, 0.07, 7},  // 0.07·100 = 7.000000000000001 in float64
		{101, 0.14, 14}, // 14.000000000000002
		{101, 0.57, 57}, // 56.99999999999999
		{11, 0.71, 8},   // a real fraction still rounds up
		{197, 0.7, 138}, // ⌈137.2⌉
		{197, 0.5, 98},  // exact
		{11, 1, 10},     // keep everything
		{11, 1.5, 10},   // clamped to n−1
		{11, 0.01, 1},   // at least one patch token
		{11, 0, 1},      // even at keep 0
		{11, math.NaN(), 1},
		{2, 0.5, 1},
		{1, 0.5, 0}, // no patch tokens at all
	}
	for _, c := range cases {
		if got := KeepCount(c.n, c.keep); got != c.want {
			t.Errorf("KeepCount(%d, %v) = %d, want %d", c.n, c.keep, got, c.want)
		}
	}
}

func TestKeepFuseExample(t *testing.T) {
	// Two images of N = 5 tokens, D = 2. KeepCount(5, 0.5) = 2.
	x := autograd.FromData([]float32{
		1, 2, 10, 11, 20, 21, 30, 31, 40, 41, // image 0
		-1, -2, 1, 0, 2, 4, 3, 0, 6, 8, // image 1
	}, 2, 5, 2)
	score := []float32{
		// Image 0 ranks token 4 above token 2, yet the output keeps
		// index order.
		0, 0.1, 0.3, 0.2, 0.4,
		// Image 1: the cls score is the largest but is never ranked, and
		// tokens 1, 2, 4 tie, so the lowest index (1) wins the second place.
		5, 0.25, 0.25, 0.5, 0.25,
	}
	y, kept := KeepFuse(autograd.NewTape(false), x, score, 0.5)
	if !slices.Equal(y.Shape, []int{2, 4, 2}) {
		t.Fatalf("shape %v, want [2 4 2]", y.Shape)
	}
	want := []float32{
		1, 2, 20, 21, 40, 41, 0.1*10 + 0.2*30, 0.1*11 + 0.2*31,
		-1, -2, 1, 0, 3, 0, 0.25*2 + 0.25*6, 0.25*4 + 0.25*8,
	}
	for i, w := range want {
		if math.Abs(float64(y.Data[i]-w)) > 1e-5 {
			t.Errorf("out[%d] = %v, want %v (all: %v)", i, y.Data[i], w, y.Data)
			break
		}
	}
	if !slices.Equal(kept[0], []int{2, 4}) || !slices.Equal(kept[1], []int{1, 3}) || len(kept) != 2 {
		t.Errorf("kept %v, want [[2 4] [1 3]]", kept)
	}
}

func TestKeepFuseKeepAllIsIdentity(t *testing.T) {
	x := autograd.FromData(make([]float32, 2*4*3), 2, 4, 3)
	y, kept := KeepFuse(autograd.NewTape(true), x, make([]float32, 2*4), 1)
	if y != x {
		t.Error("keep 1 did not return x itself")
	}
	for b, k := range kept {
		if !slices.Equal(k, []int{1, 2, 3}) {
			t.Errorf("image %d kept %v, want [1 2 3]", b, k)
		}
	}
}

func TestKeepFuseNoGradInput(t *testing.T) {
	// Images (no gradient) on a training tape must not record a backward
	// pass, and their output must not claim to need one.
	x := autograd.FromData(make([]float32, 1*5*2), 1, 5, 2)
	y, _ := KeepFuse(autograd.NewTape(true), x, []float32{0, 1, 2, 3, 4}, 0.5)
	if y.NeedsGrad() {
		t.Error("output of a no-gradient input needs a gradient")
	}
}

func TestKeepFuseGradient(t *testing.T) {
	const b, n, d = 2, 7, 3
	x := autograd.NewParamTensor(b, n, d)
	autograd.NewRNG(1, 1).TruncNormal(x.Data, 1)
	// Distinct scores, so the ranking is unambiguous.
	rng := autograd.NewRNG(2, 1)
	score := make([]float32, b*n)
	for bi := 0; bi < b; bi++ {
		for j, p := range rngPerm(rng, n) {
			score[bi*n+j] = float32(p+1)/n + float32(rng.Float64())/(4*n)
		}
	}
	var shape []int
	err := autograd.GradCheck(func(tp *autograd.Tape) *autograd.Tensor {
		y, _ := KeepFuse(tp, x, score, 0.5)
		shape = y.Shape
		return autograd.Project(tp, y, 3)
	}, []*autograd.Tensor{x}, 1e-2)
	if !slices.Equal(shape, []int{b, 5, d}) {
		t.Fatalf("shape %v, want [%d 5 %d]", shape, b, d)
	}
	if err > 2e-2 {
		t.Errorf("finite-difference gradient error %.3g", err)
	}
}

// rngPerm returns a random permutation of 0..n−1 (Fisher–Yates).
func rngPerm(rng *autograd.RNG, n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := rng.IntN(i + 1)
		p[i], p[j] = p[j], p[i]
	}
	return p
}

func TestLayers(t *testing.T) {
	cases := map[int][]int{
		12: {2, 6, 9},
		24: {4, 12, 18},
		6:  {1, 3, 5},
		4:  {1, 2, 3},
		3:  {1, 2},
		2:  {0, 1},
		1:  {0},
		0:  nil,
	}
	for depth, want := range cases {
		if got := Layers(depth); !slices.Equal(got, want) {
			t.Errorf("Layers(%d) = %v, want %v", depth, got, want)
		}
	}
}

func TestScheduleShape(t *testing.T) {
	for _, s := range []Schedule{
		DefaultSchedule(0.7),
		{Target: 0.5, Warmup: 0.3, Ramp: 0.7}, // ramp ends at the last step
		{Target: 0.5, Warmup: 0, Ramp: 0},     // prune from the second step
		{Target: 0.6, Warmup: 0.2, Ramp: 0.1},
	} {
		if err := s.Validate(); err != nil {
			t.Fatalf("%+v: %v", s, err)
		}
		const total = 1000
		if got := s.At(0, total); got != 1 {
			t.Errorf("%+v: At(0) = %v, want 1", s, got)
		}
		if got := s.At(total-1, total); got != s.Target {
			t.Errorf("%+v: At(last) = %v, want %v", s, got, s.Target)
		}
		prev := math.Inf(1)
		for step := 0; step < total; step++ {
			v := s.At(step, total)
			if v > prev {
				t.Errorf("%+v: rises from %v to %v at step %d", s, prev, v, step)
				break
			}
			if v < s.Target || v > 1 {
				t.Errorf("%+v: At(%d) = %v outside [target, 1]", s, step, v)
				break
			}
			prev = v
		}
	}
}

func TestScheduleValues(t *testing.T) {
	s := DefaultSchedule(0.7)
	// Warm-up covers the first 10% of progress step/(total−1).
	if got := s.At(100, 1001); got != 1 {
		t.Errorf("end of warm-up: %v, want 1", got)
	}
	// Ramp ends at 60% of progress: exactly Target from there.
	if got := s.At(600, 1001); got != 0.7 {
		t.Errorf("end of ramp: %v, want 0.7", got)
	}
	// Half way along the ramp the cubic has 1/8 of its drop left.
	if got, want := s.At(350, 1001), 0.7+0.3/8; math.Abs(got-want) > 1e-12 {
		t.Errorf("mid ramp: %v, want %v", got, want)
	}
	if got := s.At(0, 1); got != 0.7 {
		t.Errorf("one-step run: %v, want the target", got)
	}
}

// Hold makes the rate of the step it is called at the final one: later
// steps keep it and Final reports it. HoldAt holds a given rate, which is
// how a resumed run's closed loop holds the schedule again; unheld, Final
// is the target.
func TestKeepScheduleHold(t *testing.T) {
	k := NewKeepSchedule(DefaultSchedule(0.5))
	const total, at = 1001, 300
	for s := 0; s <= at; s++ {
		k.BeforeStep(s, total)
	}
	want := k.At(at, total)
	if !(want > 0.5 && want < 1) || k.KeepRate() != want || k.Held() || k.Final() != 0.5 {
		t.Fatalf("mid-ramp rate %v (scheduled %v), held %v, final %v", k.KeepRate(), want, k.Held(), k.Final())
	}
	k.Hold()
	for s := at + 1; s < total; s++ {
		k.BeforeStep(s, total)
	}
	if k.KeepRate() != want || k.Final() != want || !k.Held() {
		t.Fatalf("after Hold at %v: rate %v, final %v, held %v", want, k.KeepRate(), k.Final(), k.Held())
	}
	// A fresh schedule (a resumed run's) held at the saved rate.
	r := NewKeepSchedule(DefaultSchedule(0.5))
	if err := r.HoldAt(k.KeepRate()); err != nil {
		t.Fatal(err)
	}
	r.BeforeStep(total-1, total)
	if !r.Held() || r.KeepRate() != want || r.Final() != want {
		t.Errorf("held again: held %v, rate %v, final %v", r.Held(), r.KeepRate(), r.Final())
	}
	u := NewKeepSchedule(DefaultSchedule(0.5))
	for _, bad := range []float64{0, -0.1, 1.5, math.NaN()} {
		if err := u.HoldAt(bad); err == nil || u.Held() {
			t.Errorf("HoldAt(%v) accepted", bad)
		}
	}
	if u.BeforeStep(total-1, total); u.KeepRate() != 0.5 || u.Final() != 0.5 {
		t.Errorf("unheld schedule at its last step: %v, final %v", u.KeepRate(), u.Final())
	}
}

func TestScheduleValidate(t *testing.T) {
	bad := []Schedule{
		{Target: 0, Warmup: 0.1, Ramp: 0.5},
		{Target: 1.5, Warmup: 0.1, Ramp: 0.5},
		{Target: math.NaN(), Warmup: 0.1, Ramp: 0.5},
		{Target: 0.7, Warmup: -0.1, Ramp: 0.5},
		{Target: 0.7, Warmup: 0.1, Ramp: 1.1},
		{Target: 0.7, Warmup: 0.6, Ramp: 0.5},
	}
	for _, s := range bad {
		err := s.Validate()
		if err == nil {
			t.Errorf("%+v: no error", s)
		} else if !strings.Contains(err.Error(), "token keep") {
			t.Errorf("%+v: error %q does not name the token keep option", s, err)
		}
	}
	for _, s := range []Schedule{{Target: 1, Warmup: 0, Ramp: 1}, {Target: 0.7, Warmup: 0.3, Ramp: 0.7}} {
		if err := s.Validate(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
}

func TestOriginalPatches(t *testing.T) {
	// A 3×3 patch grid pruned over four stages.
	kept := [][]int{
		{1, 3, 5, 8}, // patches 0, 2, 4, 7; then a fused token (token 5)
		{2, 4, 5},    // tokens p2, p7 and the old fused token; new fused
		{1, 2, 3, 4}, // nothing dropped: no new fused token
		{4},          // only the newest fused token survives
	}
	want := [][]int{{0, 2, 4, 7}, {2, 7}, {2, 7}, {}}
	got := OriginalPatches(9, kept)
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for l := range want {
		if !slices.Equal(got[l], want[l]) {
			t.Errorf("stage %d: %v, want %v", l, got[l], want[l])
		}
	}
	for _, bad := range [][][]int{{{0}}, {{10}}, {{3, 2}}, {{1, 2}, {4}}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("OriginalPatches(9, %v) did not panic", bad)
				}
			}()
			OriginalPatches(9, bad)
		}()
	}
}
