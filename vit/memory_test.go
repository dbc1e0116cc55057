package vit

import (
	"runtime"
	"testing"

	"vitc/autograd"
)

// A steady-state training step reuses the tape's arena and the optimizer's
// moments: the live heap after 200 steps is what it was after the first
// few (issue: no memory growth over 200 steps).
func TestTrainingStepDoesNotGrowHeap(t *testing.T) {
	cfg, err := Preset("micro")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Depth = 2
	m, err := New(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	const batch = 4
	rng := autograd.NewRNG(1, 2)
	x := make([]float32, batch*cfg.Channels*cfg.Image*cfg.Image)
	for i := range x {
		x[i] = float32(rng.Normal())
	}
	images := autograd.FromData(x, batch, cfg.Channels, cfg.Image, cfg.Image)
	labels := []int{0, 3, 5, 9}
	tp := autograd.NewTape(true)
	opt := autograd.NewAdamW(0.05)
	step := func() {
		tp.Reset()
		m.Params.ZeroGrad()
		loss := autograd.CrossEntropy(tp, m.Forward(tp, images), labels, 0.1)
		tp.Backward(loss)
		m.Params.ClipGradNorm(1)
		opt.Update(m.Params, 1e-3)
	}
	liveHeap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	for range 10 {
		step()
	}
	before := liveHeap()
	for range 200 {
		step()
	}
	after := liveHeap()
	// Keep the model, tape and optimizer alive through the measurement.
	runtime.KeepAlive(m)
	runtime.KeepAlive(tp)
	runtime.KeepAlive(opt)
	t.Logf("live heap %d bytes after 10 steps, %d after 210", before, after)
	if after > before+256<<10 {
		t.Errorf("live heap grew by %d bytes over 200 steps", after-before)
	}
}
