package pipeline

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"vitc/autograd"
	"vitc/datasets"
	"vitc/vit"
	"vitc/vit/training"
)

// tinySpec is a seconds-long training run on a quarter of the synthetic set.
func tinySpec(t *testing.T, epochs int) (Spec, *datasets.Dataset) {
	t.Helper()
	ds := datasets.Synthetic(3)
	// A quarter of the set keeps the test fast; the loop does not care.
	ds.Train.X, ds.Train.Y = ds.Train.X[:1000*28*28], ds.Train.Y[:1000]
	ds.Test.X, ds.Test.Y = ds.Test.X[:200*28*28], ds.Test.Y[:200]
	cfg, err := vit.ConfigFor("micro", ds, vit.Overrides{Dim: 16, Depth: 1, Heads: 2, Patch: 7})
	if err != nil {
		t.Fatal(err)
	}
	return Spec{Train: training.Options{Data: "synthetic", Config: cfg, Epochs: epochs, Batch: 50, LR: 2e-3,
		MinLR: 1e-5, WeightDecay: 0.05, WarmupEpochs: 0.5, LabelSmoothing: 0.1, ClipNorm: 1, Augment: true, Seed: 5},
		Plan: Plan{Kind: KindTrain}}, ds
}

func tinyJob(t *testing.T, epochs int) *Job {
	t.Helper()
	spec, ds := tinySpec(t, epochs)
	j, err := New(spec, ds)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// tinyRun is tinyJob's training run, for tests that drive the loop itself.
func tinyRun(t *testing.T, epochs int) *training.Run { return tinyJob(t, epochs).Run }

// cancelAfter cancels training after n optimizer steps.
type cancelAfter struct {
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) EpochStart(int, int, int, int)  {}
func (c *cancelAfter) EpochEnd(training.EpochMetrics) {}
func (c *cancelAfter) Step(int, float64, float64, float64) {
	if c.n--; c.n == 0 {
		c.cancel()
	}
}

func modelBytes(t *testing.T, m *vit.Model) []byte {
	var b bytes.Buffer
	for _, p := range m.Params.List() {
		for _, v := range p.Data {
			u := math.Float32bits(v)
			b.Write([]byte{byte(u), byte(u >> 8), byte(u >> 16), byte(u >> 24)})
		}
	}
	return b.Bytes()
}

func TestInterruptAndResumeEqualsUninterrupted(t *testing.T) {
	full := tinyRun(t, 2)
	want, err := full.Train(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// 20 steps per epoch: stop inside epoch 1, at its end, inside epoch 2;
	// resume from the directory and finish.
	for _, stopAt := range []int{7, 20, 33} {
		dir := t.TempDir()
		j := tinyJob(t, 2)
		ctx, cancel := context.WithCancel(context.Background())
		if _, err := j.Train(ctx, dir, &cancelAfter{n: stopAt, cancel: cancel}); !errors.Is(err, training.ErrInterrupted) {
			t.Fatalf("stop at %d: got %v, want ErrInterrupted", stopAt, err)
		}
		saved, err := training.ReadSaved(dir)
		if err != nil {
			t.Fatal(err)
		}
		spec, _ := SavedSpec(saved)
		// Open would reload the data spec; use the same trimmed set.
		resumed, err := Build(spec, j.Run.Data, saved)
		if err != nil {
			t.Fatal(err)
		}
		got, err := resumed.Train(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got.Test.Accuracy != want.Test.Accuracy || !bytes.Equal(modelBytes(t, resumed.Model), modelBytes(t, full.Model)) {
			t.Errorf("stop at step %d: resumed run differs (accuracy %v vs %v)", stopAt, got.Test.Accuracy, want.Test.Accuracy)
		}
		if len(got.History) != 2 {
			t.Errorf("resumed history has %d epochs, want 2", len(got.History))
		}
	}
}

func TestNonFiniteLossStopsAndKeepsCheckpoint(t *testing.T) {
	dir := t.TempDir()
	j := tinyJob(t, 2)
	j.Run.Components = []training.Component{&poisonAt{step: 25, m: j.Run.Model}}
	_, err := j.Train(context.Background(), dir, nil)
	var nf *training.NonFiniteError
	if !errors.As(err, &nf) || nf.Step != 25 {
		t.Fatalf("got %v, want a non-finite error at step 25", err)
	}
	// Epoch 1 (20 steps) finished and was saved; it must still load cleanly.
	m, _, err := vit.Load(filepath.Join(dir, training.ModelFile), vit.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params.List() {
		for _, v := range p.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("saved checkpoint holds a non-finite %s", p.Name)
			}
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("run dir has %d entries, want model, state and metrics", len(entries))
	}
}

// poisonAt writes NaN into the head at a given step, as a diverging run would.
type poisonAt struct {
	step int
	m    *vit.Model
}

func (p *poisonAt) Name() string { return "poison" }

func (p *poisonAt) BeforeStep(step, _ int) {
	if step == p.step {
		h, _ := p.m.Params.Get("head.weight")
		h.Data[0] = float32(math.NaN())
	}
}

// nanLossAt adds a NaN to the loss at the given steps only: a transient bad
// batch, unlike poisonAt's diverged weights. It records the head weights
// before every step so the test can see whether a step changed them.
type nanLossAt struct {
	steps map[int]bool
	cur   int
	m     *vit.Model
	head  map[int][]float32
}

func (n *nanLossAt) BeforeStep(step, _ int) {
	n.cur = step
	h, _ := n.m.Params.Get("head.weight")
	n.head[step] = append([]float32(nil), h.Data...)
}
func (n *nanLossAt) Name() string { return "nan" }
func (n *nanLossAt) Loss(tp *autograd.Tape) *autograd.Tensor {
	if !n.steps[n.cur] {
		return nil
	}
	t := tp.New(false, 1)
	t.Data[0] = float32(math.NaN())
	return t
}

func TestSkipNonFinite(t *testing.T) {
	bad := map[int]bool{5: true, 25: true} // one in each 20-step epoch
	newRun := func(skip int) (*training.Run, *nanLossAt) {
		r := tinyRun(t, 2)
		r.Opts.SkipNonFinite = skip
		n := &nanLossAt{steps: bad, m: r.Model, head: map[int][]float32{}}
		r.Components = []training.Component{n}
		return r, n
	}

	r, n := newRun(2)
	res, err := r.Train(context.Background())
	if err != nil {
		t.Fatalf("two bad batches with --skip-nonfinite 2: %v", err)
	}
	if len(res.History) != 2 || res.History[0].Skipped != 1 || res.History[1].Skipped != 1 {
		t.Fatalf("history %+v, want 2 epochs with 1 skipped batch each", res.History)
	}
	if !slices.Equal(n.head[5], n.head[6]) {
		t.Error("the skipped step changed the weights")
	}
	if slices.Equal(n.head[6], n.head[7]) {
		t.Error("the step after a skipped one did not train")
	}
	for _, p := range r.Model.Params.List() {
		for _, v := range p.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("%s holds %v after skipping", p.Name, v)
			}
		}
	}

	r, _ = newRun(1)
	_, err = r.Train(context.Background())
	var nf *training.NonFiniteError
	if !errors.As(err, &nf) || nf.Step != 25 || nf.Skipped != 1 {
		t.Fatalf("second bad batch over a budget of 1: got %v, want a non-finite error at step 25", err)
	}
}

// A run with InitScheme torch starts from torch's init (seeded by the run's
// seed), and its metrics carry the pre-clipping gradient norm.
func TestRunInitSchemeAndGradNorm(t *testing.T) {
	spec, ds := tinySpec(t, 1)
	spec.Train.InitScheme = vit.InitTorch
	j, err := New(spec, ds)
	if err != nil {
		t.Fatal(err)
	}
	r2 := j.Run
	want, _ := vit.New(spec.Train.Config, spec.Train.Seed)
	want.Reinit(vit.InitTorch, spec.Train.Seed)
	if string(modelBytes(t, r2.Model)) != string(modelBytes(t, want)) {
		t.Error("run with InitScheme torch does not start from torch's init")
	}
	spec.Train.InitScheme = "lecun"
	if _, err := New(spec, ds); err == nil {
		t.Error("unknown InitScheme accepted")
	}
	res, err := r2.Train(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if g := res.History[0].GradNorm; !(g > 0) || math.IsInf(g, 0) {
		t.Errorf("epoch grad_norm %v, want a positive mean", g)
	}
}
