package blockprune

import (
	"math"
	"slices"
	"strings"
	"testing"

	"vitc/autograd"
	"vitc/vit"
)

func testConfig(attn string) vit.Config {
	// Head dim 8, blocks of 4: two block rows per head and part.
	return vit.Config{Image: 8, Channels: 1, Patch: 2, Dim: 32, Depth: 2, Heads: 4, MLPRatio: 2, Classes: 5, Attention: attn}
}

// randomModel has every parameter random, biases included, so that a
// wrongly dropped bias or a missing fold shows in the logits.
func randomModel(t *testing.T, cfg vit.Config) *vit.Model {
	t.Helper()
	m, err := vit.New(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	rng := autograd.NewRNG(7, 8)
	for _, p := range m.Params.List() {
		for i := range p.Data {
			p.Data[i] = float32(rng.Normal()) * 0.3
		}
	}
	return m
}

func logits(m *vit.Model, x []float32, n int) []float32 {
	return maskedLogits(m, nil, x, n)
}

// maskedLogits runs m with the pruner's extensions in the pass, as a
// training run installs them (nil: the model alone).
func maskedLogits(m *vit.Model, p *Pruner, x []float32, n int) []float32 {
	pass := &vit.Pass{Tape: autograd.NewTape(false)}
	if p != nil {
		pass.Weights, pass.Heads = []vit.WeightView{p}, []vit.HeadFilter{p}
	}
	out := m.ForwardPass(pass, autograd.FromData(x, n, m.Channels, m.Image, m.Image))
	return append([]float32(nil), out.Data...)
}

func TestDensityScheduleHitsTarget(t *testing.T) {
	o := Options{Block: 4, Density: 0.3, Warmup: 0.1, Ramp: 0.5}
	const total = 200
	prev := 2.0
	for s := 0; s < total; s++ {
		d := o.DensityAt(s, total)
		if d > prev+1e-12 {
			t.Fatalf("density rises at step %d: %v after %v", s, d, prev)
		}
		prev = d
	}
	if o.DensityAt(0, total) != 1 || o.DensityAt(total-1, total) != 0.3 || o.DensityAt(int(0.6*total)+1, total) != 0.3 {
		t.Errorf("schedule: start %v, after ramp %v, end %v", o.DensityAt(0, total), o.DensityAt(int(0.6*total)+1, total), o.DensityAt(total-1, total))
	}
	if mid := o.DensityAt(total*35/100, total); !(mid > 0.3 && mid < 1) {
		t.Errorf("mid-ramp density %v", mid)
	}
}

func TestPrunerReachesTargetDensity(t *testing.T) {
	m := randomModel(t, testConfig("softmax"))
	p, err := New(m, Options{Block: 4, Density: 0.5, Warmup: 0.1, Ramp: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	p.BeforeStep(99, 100)
	for name, d := range p.Stats().Density {
		if math.Abs(d-0.5) > 1e-9 {
			t.Errorf("%s density %v, want 0.5", name, d)
		}
	}
}

func TestBlockMustDivideHeadDim(t *testing.T) {
	m := randomModel(t, testConfig("softmax"))
	if _, err := New(m, Options{Block: 16, Density: 0.5}); err == nil || !strings.Contains(err.Error(), "head dimension 8") {
		t.Errorf("block 16 with head dim 8: %v", err)
	}
}

func TestMaskGradients(t *testing.T) {
	rng := autograd.NewRNG(1, 1)
	w := autograd.FromData(make([]float32, 6*4), 6, 4)
	for i := range w.Data {
		w.Data[i] = float32(rng.Normal())
	}
	scores := autograd.FromData(make([]float32, 6), 6)
	block := gridIndex(6, 4, 2, 2) // 3×2 blocks
	keep := []bool{true, false, true, true, false, true}
	target := make([]float32, w.Len())
	for i := range target {
		target[i] = float32(rng.Normal())
	}
	loss := func(tp *autograd.Tape) *autograd.Tensor {
		y := Mask(tp, w, scores, keep, block)
		return dot(tp, y, target)
	}
	// The weights' gradient is checked by finite differences (the mask is
	// fixed); the scores have no finite-difference gradient (a step
	// function), so their straight-through gradient is checked against its
	// definition Σ_block dY·W.
	if e := autograd.GradCheck(loss, []*autograd.Tensor{w}, 1e-3); e > 1e-2 {
		t.Errorf("weight gradient error %v", e)
	}
	tp := autograd.NewTape(true)
	w.SetNeedsGrad()
	scores.SetNeedsGrad()
	w.Grad, scores.Grad = make([]float32, w.Len()), make([]float32, 6)
	tp.Backward(loss(tp))
	want := make([]float32, 6)
	for e, bl := range block {
		want[bl] += target[e] * w.Data[e]
	}
	for i := range want {
		if math.Abs(float64(scores.Grad[i]-want[i])) > 1e-5 {
			t.Errorf("score %d gradient %v, want %v", i, scores.Grad[i], want[i])
		}
	}
	for e, bl := range block {
		if !keep[bl] && w.Grad[e] != 0 {
			t.Errorf("pruned element %d got gradient %v", e, w.Grad[e])
		}
	}
}

// TestCompactedEqualsMasked prunes to half density with one head whose qkv
// blocks are all gone (its value bias is folded) and one whose proj
// columns are (dropped), with token pruning at both layers, and checks
// the compacted model's logits against the masked model's, and that every
// pruned block is stored as exact zeros.
func TestCompactedEqualsMasked(t *testing.T) {
	for _, attn := range []string{"softmax", "taylor"} {
		cfg := testConfig(attn)
		cfg.TokenKeep, cfg.TokenLayers = 0.5, []int{0, 1}
		m := randomModel(t, cfg)
		p, err := New(m, Options{Block: 4, Density: 0.5, Warmup: 0, Ramp: 0})
		if err != nil {
			t.Fatal(err)
		}
		rng := autograd.NewRNG(5, 5)
		for _, g := range p.groups {
			for i := range g.scores.Data {
				g.scores.Data[i] = float32(rng.Float64())
			}
		}
		p.BeforeStep(9, 10)
		qkv, proj, _ := p.layerGroups(0)
		killQKVHead(qkv, 1, cfg.Dim, cfg.HeadDim(), 4)
		for r := 0; r < proj.rows; r++ {
			proj.keep[r*proj.cols+4], proj.keep[r*proj.cols+5] = false, false // head 2's columns
		}
		if live := p.LiveHeads(0); live[1] || live[2] || !live[0] && !live[3] {
			t.Fatalf("%s: live heads %v, want heads 1 and 2 dead", attn, live)
		}

		x := make([]float32, 3*cfg.Image*cfg.Image)
		for i := range x {
			x[i] = float32(rng.Normal())
		}
		want := maskedLogits(m, p, x, 3)
		c, ext, err := p.Compact()
		if err != nil {
			t.Fatal(err)
		}
		if c.LayerHeads[0] != 2 {
			t.Errorf("%s: layer 0 keeps %d heads, want 2", attn, c.LayerHeads[0])
		}
		got := logits(c, x, 3)
		for i := range want {
			if math.Abs(float64(got[i]-want[i])) > 1e-4*math.Max(1, math.Abs(float64(want[i]))) {
				t.Fatalf("%s: compacted logit %d = %v, masked %v", attn, i, got[i], want[i])
			}
		}
		checkZeroBlocks(t, c, ext)
		// Structure describes the compacted model without compacting.
		st := p.Structure()
		sc, dens := st.Config(m.Config, 4)
		if !slices.Equal(st.Heads, c.LayerHeads) || !slices.Equal(st.Hidden, c.LayerHidden) ||
			sc.SparseFLOPs(dens) != c.SparseFLOPs(ext.DensityOf) {
			t.Errorf("%s: structure %+v (%d FLOPs), compacted heads %v hidden %v (%d FLOPs)", attn, st, sc.SparseFLOPs(dens),
				c.LayerHeads, c.LayerHidden, c.SparseFLOPs(ext.DensityOf))
		}
	}
}

// Hold makes the density of the step it is called at the final one: the
// masks stop following the schedule, Target reports the held density, and
// a pruner restored from the saved state is held the same way.
func TestHoldFreezesDensity(t *testing.T) {
	m := randomModel(t, testConfig("softmax"))
	opts := Options{Block: 4, Density: 0.3, Warmup: 0.1, Ramp: 0.6}
	p, err := New(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	const total, at = 100, 40
	for s := 0; s <= at; s++ {
		p.BeforeStep(s, total)
	}
	want := opts.DensityAt(at, total)
	if !(want > 0.3 && want < 1) || p.Density() != want || p.Held() {
		t.Fatalf("mid-ramp density %v (scheduled %v), held %v", p.Density(), want, p.Held())
	}
	p.Hold()
	masks, err := p.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	// The scores move on (as training moves them); a held pruner ignores them.
	rng := autograd.NewRNG(9, 9)
	for _, g := range p.groups {
		for i := range g.scores.Data {
			g.scores.Data[i] = float32(rng.Float64())
		}
	}
	for s := at + 1; s < total; s++ {
		p.BeforeStep(s, total)
	}
	after, _ := p.MarshalState()
	if string(after) != string(masks) || p.Target() != want || p.Density() != want || !p.Held() {
		t.Fatalf("after Hold at %v: target %v, density %v, masks changed %v", want, p.Target(), p.Density(), string(after) != string(masks))
	}
	for name, d := range p.Stats().Density {
		if d < want-1e-9 {
			t.Errorf("%s kept %v, below the held density %v", name, d, want)
		}
	}

	q, err := New(randomModel(t, testConfig("softmax")), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.UnmarshalState(after); err != nil {
		t.Fatal(err)
	}
	q.BeforeStep(total-1, total) // the schedule's target step: a held pruner stays
	restored, _ := q.MarshalState()
	if !q.Held() || q.Target() != want || string(restored) != string(after) {
		t.Errorf("restored: held %v, target %v, masks equal %v", q.Held(), q.Target(), string(restored) == string(after))
	}
	// A state saved before Hold existed (no "held") restores unheld.
	r, _ := New(randomModel(t, testConfig("softmax")), opts)
	old := strings.Replace(string(masks), `"held":true,`, "", 1)
	if err := r.UnmarshalState([]byte(old)); err != nil || r.Held() || r.Target() != 0.3 {
		t.Errorf("old state %s: held %v, target %v, err %v", old, r.Held(), r.Target(), err)
	}
}

// killQKVHead prunes every qkv block of head h.
func killQKVHead(g *group, h, d, hd, b int) {
	for part := 0; part < 3; part++ {
		for r := (part*d + h*hd) / b; r < (part*d+h*hd+hd)/b; r++ {
			for c := 0; c < g.cols; c++ {
				g.keep[r*g.cols+c] = false
			}
		}
	}
}

func checkZeroBlocks(t *testing.T, m *vit.Model, ext *Extension) {
	t.Helper()
	b := ext.Block
	pruned := 0
	for name, mask := range ext.Masks {
		w, ok := m.Params.Get(name)
		if !ok {
			t.Fatalf("mask for missing tensor %s", name)
		}
		rows, cols := w.Shape[0], w.Shape[1]
		if mask.Rows*b != rows || mask.Cols*b != cols {
			t.Fatalf("%s: mask %d×%d blocks for a %d×%d matrix", name, mask.Rows, mask.Cols, rows, cols)
		}
		for r := 0; r < rows; r++ {
			for c := 0; c < cols; c++ {
				if !mask.Kept(r/b, c/b) {
					pruned++
					if w.Data[r*cols+c] != 0 {
						t.Fatalf("%s[%d,%d] = %v in a pruned block", name, r, c, w.Data[r*cols+c])
					}
				}
			}
		}
	}
	if pruned == 0 {
		t.Error("no pruned block to check")
	}
}

// dot is Σ y·c for a constant c: a scalar loss whose gradient in y is c.
func dot(tp *autograd.Tape, y *autograd.Tensor, c []float32) *autograd.Tensor {
	out := tp.Output([]*autograd.Tensor{y}, 1)
	var s float32
	for i, v := range y.Data {
		s += v * c[i]
	}
	out.Data[0] = s
	tp.Record(out, func() {
		dy := tp.GradOf(y)
		for i := range dy {
			dy[i] += out.Grad[0] * c[i]
		}
	})
	return out
}
