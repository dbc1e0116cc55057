package gorgoniavit

import (
	"math"
	"slices"
	"strings"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"vitc/autograd"
	"vitc/blockprune"
	"vitc/taylorattn"
	"vitc/vit"
)

// microModel is the micro preset with token pruning at two blocks,
// perturbed so that no gradient is zero by symmetry.
func microModel(t testing.TB, attn string) *vit.Model {
	t.Helper()
	cfg, err := vit.Preset("micro")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Attention = attn
	cfg.TokenKeep, cfg.TokenLayers = 0.5, []int{1, 2}
	m, err := vit.New(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	perturb(m, 0.05)
	return m
}

// perturb adds truncated-normal noise of std to every parameter, so that no
// weight sits at an initial value that hides a wrong gradient (zeros, ones).
func perturb(m *vit.Model, std float64) {
	rng := autograd.NewRNG(2, 9)
	for _, p := range m.Params.List() {
		noise := make([]float32, p.Len())
		rng.TruncNormal(noise, std)
		for i := range p.Data {
			p.Data[i] += noise[i]
		}
	}
}

func images(seed int64, n int, m *vit.Model) *autograd.Tensor {
	x := make([]float32, n*m.Channels*m.Image*m.Image)
	autograd.NewRNG(seed, 5).TruncNormal(x, 1)
	return autograd.FromData(x, n, m.Channels, m.Image, m.Image)
}

// keptLog records the kept tokens of every pruning layer.
type keptLog struct{ kept [][][]int }

func (k *keptLog) KeptTokens(_ int, kept [][]int) { k.kept = append(k.kept, kept) }

// extensions are a pass with block masks at density 0.5 and, for Taylor
// attention, the sparse branch and its loss term.
type extensions struct {
	pruner *blockprune.Pruner
	sparse *taylorattn.Sparse
}

func newExtensions(t testing.TB, m *vit.Model) *extensions {
	t.Helper()
	pr, err := blockprune.New(m, blockprune.Options{Block: 16, Density: 0.5, Warmup: 0, Ramp: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	pr.BeforeStep(100, 100) // final masks
	e := &extensions{pruner: pr}
	if m.Attention == "taylor" {
		e.sparse = taylorattn.NewSparse(taylorattn.DefaultSparse, m.Depth)
	}
	return e
}

func (e *extensions) pass(tp *autograd.Tape, kept *keptLog) *vit.Pass {
	p := &vit.Pass{Tape: tp, Weights: []vit.WeightView{e.pruner}, Kept: []vit.KeptObserver{kept}}
	if e.sparse != nil {
		e.sparse.BeforeStep(0, 100)
		p.Attention = []vit.AttentionHook{e.sparse}
	}
	return p
}

func (e *extensions) lossOf(tp *autograd.Tape, labels []int) func(*autograd.Tensor) *autograd.Tensor {
	return func(logits *autograd.Tensor) *autograd.Tensor {
		loss := autograd.CrossEntropy(tp, logits, labels, 0.1)
		if e.sparse != nil {
			if l := e.sparse.Loss(tp); l != nil {
				loss = autograd.WeightedSum(tp, []*autograd.Tensor{loss, l}, []float32{1, 1})
			}
		}
		return loss
	}
}

// relErr is ‖a−b‖/‖b‖ (‖a−b‖ when b is 0).
func relErr(a, b []float32) float64 {
	var num, den float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

// TestEngineParity trains one step of the micro model, softmax and Taylor,
// with block masks and token pruning on, through both engines: the logits,
// the loss, the kept tokens and every parameter's gradient (block scores
// included) must match.
func TestEngineParity(t *testing.T) {
	for _, attn := range []string{"softmax", "taylor"} {
		t.Run(attn, func(t *testing.T) {
			m := microModel(t, attn)
			ext := newExtensions(t, m)
			x := images(3, 5, m)
			labels := []int{0, 3, 9, 1, 7}

			tp := autograd.NewTape(true)
			var nativeKept keptLog
			m.Params.ZeroGrad()
			logits := m.ForwardPass(ext.pass(tp, &nativeKept), x)
			loss := ext.lossOf(tp, labels)(logits)
			wantLogits := slices.Clone(logits.Data) // the backward pass releases them
			wantLoss := loss.Data[0]
			tp.Backward(loss)
			want := map[string][]float32{}
			for _, p := range m.Params.List() {
				want[p.Name] = slices.Clone(p.Grad)
			}

			e := NewEngine()
			for run := 0; run < 2; run++ { // the second run reuses the graph
				tp2 := autograd.NewTape(true)
				var kept keptLog
				m.Params.ZeroGrad()
				gl, gloss, err := e.Step(m, ext.pass(tp2, &kept), x, ext.lossOf(tp2, labels))
				if err != nil {
					t.Fatal(err)
				}
				if r := relErr(gl.Data, wantLogits); !(r < 1e-5) {
					t.Errorf("run %d: logits rel err %.3g", run, r)
				}
				if r := relErr(gloss.Data, []float32{wantLoss}); !(r < 1e-5) {
					t.Errorf("run %d: loss %g, native %g", run, gloss.Data[0], wantLoss)
				}
				if len(kept.kept) != 2 || !slices.EqualFunc(kept.kept, nativeKept.kept, func(a, b [][]int) bool {
					return slices.EqualFunc(a, b, slices.Equal[[]int])
				}) {
					t.Errorf("run %d: kept tokens differ from the native engine's", run)
				}
				worst, worstName := 0.0, ""
				for _, p := range m.Params.List() {
					r := relErr(p.Grad, want[p.Name])
					if !(r < 1e-4) {
						t.Errorf("run %d: gradient of %s: rel err %.3g", run, p.Name, r)
					}
					if r > worst {
						worst, worstName = r, p.Name
					}
				}
				t.Logf("run %d: logits %.2g, worst gradient rel err %.2g (%s)", run, relErr(gl.Data, wantLogits), worst, worstName)
			}
			if len(e.graphs) != 1 {
				t.Errorf("%d graphs for one batch shape", len(e.graphs))
			}
		})
	}
}

// TestBuildForward runs the public Build on a TapeMachine, forward only.
func TestBuildForward(t *testing.T) {
	m := microModel(t, "taylor")
	x := images(4, 3, m)
	want := m.Forward(autograd.NewTape(false), x).Data
	g, got := buildAndRun(t, m, x)
	if r := relErr(got, want); !(r < 1e-5) {
		t.Errorf("logits rel err %.3g", r)
	}
	if n := len(ParamNodes(g, m)); n != len(m.Params.List()) {
		t.Errorf("%d parameter nodes, the model has %d parameters", n, len(m.Params.List()))
	}
}

func TestBuildRefusesBadImages(t *testing.T) {
	m := microModel(t, "softmax")
	g := gorgonia.NewGraph()
	for _, x := range []*gorgonia.Node{
		gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(2, 3, m.Image, m.Image), gorgonia.WithName("rgb")),
		gorgonia.NewMatrix(g, tensor.Float32, gorgonia.WithShape(2, m.Image*m.Image), gorgonia.WithName("flat")),
		gorgonia.NewTensor(g, tensor.Float64, 4, gorgonia.WithShape(2, 1, m.Image, m.Image), gorgonia.WithName("f64")),
	} {
		if _, err := Build(g, m, x); err == nil || !strings.Contains(err.Error(), "images node") {
			t.Errorf("%v %v: err %v, want one about the images node", x.Dtype(), x.Shape(), err)
		}
	}
}

// TestEngineFiniteDifferences checks the Gorgonia graph's gradients (the
// segment ops' backward passes as Gorgonia schedules and sums them) against
// central finite differences of its own loss, on a tiny model, softmax and
// Taylor. Without token pruning: its fusion weights are cls attention scores
// that are constants by design (EViT detaches them), so finite differences
// through them measure a derivative the model deliberately drops; the
// parity test covers the pruned graph against the native engine. A
// distilled DeiT's distillation token and second head are checked too.
func TestEngineFiniteDifferences(t *testing.T) {
	for _, attn := range []string{"softmax", "taylor", "deit"} {
		t.Run(attn, func(t *testing.T) {
			cfg := vit.Config{Image: 8, Channels: 2, Patch: 4, Dim: 8, Depth: 2, Heads: 2, MLPRatio: 2, Classes: 3,
				Attention: attn}
			if attn == "deit" { // a distilled DeiT: distillation token, two heads averaged
				cfg.Attention, cfg.DistToken, cfg.DistHead = "softmax", true, true
			}
			m, err := vit.New(cfg, 1)
			if err != nil {
				t.Fatal(err)
			}
			perturb(m, 0.3)
			x := images(3, 2, m)
			labels := []int{0, 2}
			e := NewEngine()
			loss := func() float64 {
				tp := autograd.NewTape(true)
				_, l, err := e.Step(m, &vit.Pass{Tape: tp}, x, func(logits *autograd.Tensor) *autograd.Tensor {
					return autograd.CrossEntropy(tp, logits, labels, 0.1)
				})
				if err != nil {
					t.Fatal(err)
				}
				return float64(l.Data[0])
			}
			m.Params.ZeroGrad()
			loss()
			grads := map[string][]float32{} // each later run adds to Grad again
			for _, p := range m.Params.List() {
				grads[p.Name] = slices.Clone(p.Grad)
			}
			const h = 1e-2
			for _, p := range m.Params.List() {
				analytic := grads[p.Name]
				scale := 1e-3
				for _, g := range analytic {
					scale = math.Max(scale, math.Abs(float64(g)))
				}
				worst := 0.0
				// Up to 16 elements per parameter, spread over it: the
				// graph runs twice per element, and that is the test's time.
				for j := 0; j < p.Len(); j += max(1, p.Len()/16) {
					orig := p.Data[j]
					p.Data[j] = orig + h
					up := loss()
					p.Data[j] = orig - h
					down := loss()
					p.Data[j] = orig
					worst = math.Max(worst, math.Abs((up-down)/(2*h)-float64(analytic[j]))/scale)
				}
				if worst > 3e-2 {
					t.Errorf("%s: gradient off finite differences by %.3g (relative to its largest element)", p.Name, worst)
				}
			}
		})
	}
}
