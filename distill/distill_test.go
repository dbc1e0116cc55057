package distill

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"vitc/autograd"
	"vitc/datasets"
	"vitc/vit"
	"vitc/vit/training"
)

func tinyConfig() vit.Config {
	return vit.Config{Image: 8, Channels: 2, Patch: 4, Dim: 8, Depth: 2, Heads: 2, MLPRatio: 2, Classes: 3, Attention: "softmax"}
}

func randomValues(seed int64, std float64, n int) []float32 {
	x := make([]float32, n)
	autograd.NewRNG(seed, 3).TruncNormal(x, std)
	return x
}

// refKD is the loss written directly from its definition in float64, as
// torch computes kl_div(log_softmax(zs/T), softmax(zt/T), 'batchmean')·T²
// plus cross_entropy(zs, y, label_smoothing).
func refKD(zs, zt []float32, labels []int, b, c int, alpha, temp, smoothing float64) (kl, ce, total float64) {
	logSoftmax := func(row []float32, t float64) []float64 {
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, float64(v)/t)
		}
		var s float64
		for _, v := range row {
			s += math.Exp(float64(v)/t - mx)
		}
		out := make([]float64, len(row))
		for j, v := range row {
			out[j] = float64(v)/t - mx - math.Log(s)
		}
		return out
	}
	for i := 0; i < b; i++ {
		ls := logSoftmax(zs[i*c:(i+1)*c], temp)
		lt := logSoftmax(zt[i*c:(i+1)*c], temp)
		for j := range ls {
			if p := math.Exp(lt[j]); p > 0 {
				kl += p * (lt[j] - ls[j])
			}
		}
		l1 := logSoftmax(zs[i*c:(i+1)*c], 1)
		for j := range l1 {
			t := smoothing / float64(c)
			if j == labels[i] {
				t += 1 - smoothing
			}
			ce -= t * l1[j]
		}
	}
	kl /= float64(b)
	ce /= float64(b)
	return kl, ce, alpha*temp*temp*kl + (1-alpha)*ce
}

func kdValue(zs, zt []float32, labels []int, b, c int, alpha, temp, smoothing float64) float64 {
	tp := autograd.NewTape(false)
	return float64(KDLoss(tp, autograd.FromData(zs, b, c), zt, labels, alpha, temp, smoothing).Data[0])
}

func TestKDLossGradient(t *testing.T) {
	const b, c = 4, 5
	zt := randomValues(2, 2, b*c)
	labels := []int{0, 4, 2, 2}
	for _, tc := range []struct{ alpha, temp, smoothing float64 }{
		{0.9, 2, 0}, {0.5, 1, 0.1}, {1, 4, 0}, {0.3, 0.5, 0.2}, {0, 2, 0.1},
	} {
		zs := autograd.NewParamTensor(b, c)
		copy(zs.Data, randomValues(1, 2, b*c))
		err := autograd.GradCheck(func(tp *autograd.Tape) *autograd.Tensor {
			return KDLoss(tp, zs, zt, labels, tc.alpha, tc.temp, tc.smoothing)
		}, []*autograd.Tensor{zs}, 1e-2)
		t.Logf("α=%v T=%v ε=%v: gradient error %.3g", tc.alpha, tc.temp, tc.smoothing, err)
		if err > 2e-2 {
			t.Errorf("α=%v T=%v ε=%v: finite-difference gradient error %.4g", tc.alpha, tc.temp, tc.smoothing, err)
		}
	}
}

// The analytic gradient is torch's: α·T·(softmax(z_s/T) − softmax(z_t/T))/B
// + (1−α)·(softmax(z_s) − y_smooth)/B.
func TestKDLossGradientMatchesClosedForm(t *testing.T) {
	const b, c = 3, 4
	const alpha, temp, smoothing = 0.7, 3.0, 0.1
	zs := autograd.NewParamTensor(b, c)
	copy(zs.Data, randomValues(5, 3, b*c))
	zt := randomValues(6, 3, b*c)
	labels := []int{1, 3, 0}
	tp := autograd.NewTape(true)
	tp.Backward(KDLoss(tp, zs, zt, labels, alpha, temp, smoothing))
	softmax := func(row []float32, t float64) []float64 {
		out := make([]float64, len(row))
		var s float64
		for j, v := range row {
			out[j] = math.Exp(float64(v) / t)
			s += out[j]
		}
		for j := range out {
			out[j] /= s
		}
		return out
	}
	worst := 0.0
	for i := 0; i < b; i++ {
		qs, pt, q1 := softmax(zs.Data[i*c:(i+1)*c], temp), softmax(zt[i*c:(i+1)*c], temp), softmax(zs.Data[i*c:(i+1)*c], 1)
		for j := 0; j < c; j++ {
			y := smoothing / c
			if j == labels[i] {
				y += 1 - smoothing
			}
			want := (alpha*temp*(qs[j]-pt[j]) + (1-alpha)*(q1[j]-y)) / b
			worst = math.Max(worst, math.Abs(float64(zs.Grad[i*c+j])-want))
		}
	}
	t.Logf("max |grad − closed form| = %.3g", worst)
	if worst > 1e-6 {
		t.Errorf("gradient differs from the closed form by %.3g", worst)
	}
}

func TestKDLossMatchesReference(t *testing.T) {
	const b, c = 5, 7
	labels := []int{0, 6, 3, 3, 1}
	for k, tc := range []struct {
		scale                  float64
		alpha, temp, smoothing float64
	}{
		{1, 0.9, 2, 0}, {3, 0.5, 1, 0.1}, {5, 1, 4, 0}, {0.3, 0.1, 0.5, 0.3}, {10, 0.9, 2, 0.1},
	} {
		zs := randomValues(int64(10+k), tc.scale, b*c)
		zt := randomValues(int64(20+k), tc.scale, b*c)
		got := kdValue(zs, zt, labels, b, c, tc.alpha, tc.temp, tc.smoothing)
		kl, ce, want := refKD(zs, zt, labels, b, c, tc.alpha, tc.temp, tc.smoothing)
		t.Logf("case %d: KL %.6f CE %.6f loss %.7f, reference %.7f", k, kl, ce, got, want)
		if d := math.Abs(got - want); d > 1e-5*math.Max(1, math.Abs(want)) {
			t.Errorf("case %d: loss %.8g, reference %.8g (|Δ| %.3g)", k, got, want, d)
		}
	}
}

// A hand-checked case: two classes, one row, T = 1, α = 1. The teacher says
// (3/4, 1/4) via logits (ln 3, 0); the student says (1/2, 1/2).
// KL = 3/4·ln(3/2) + 1/4·ln(1/2) = 0.130812...
func TestKDLossHandCase(t *testing.T) {
	got := kdValue([]float32{0, 0}, []float32{float32(math.Log(3)), 0}, nil, 1, 2, 1, 1, 0)
	want := 0.75*math.Log(1.5) + 0.25*math.Log(0.5)
	t.Logf("KL = %.7f, want %.7f", got, want)
	if math.Abs(got-want) > 1e-6 {
		t.Errorf("KL = %.8g, want %.8g", got, want)
	}
	// With T = 2 the soft targets are softmax(ln3/2, 0) = (√3, 1)/(√3+1) and
	// the loss is scaled by T² = 4.
	got = kdValue([]float32{0, 0}, []float32{float32(math.Log(3)), 0}, nil, 1, 2, 1, 2, 0)
	p := math.Sqrt(3) / (math.Sqrt(3) + 1)
	want = 4 * (p*math.Log(2*p) + (1-p)*math.Log(2*(1-p)))
	t.Logf("T=2: loss = %.7f, want %.7f", got, want)
	if math.Abs(got-want) > 1e-6 {
		t.Errorf("T=2: loss = %.8g, want %.8g", got, want)
	}
}

func TestKDLossZeroWhenStudentEqualsTeacher(t *testing.T) {
	const b, c = 6, 10
	for _, temp := range []float64{0.5, 1, 2, 7} {
		for _, scale := range []float64{0.1, 3, 1e4} {
			z := randomValues(int64(scale*10+temp), scale, b*c)
			if got := kdValue(z, z, nil, b, c, 1, temp, 0); math.Abs(got) > selfKLTol*temp*temp {
				t.Errorf("T=%v scale=%v: KL(p‖p) = %g, want 0 (within %g·T²)", temp, scale, got, selfKLTol)
			}
		}
	}
	// Near, not equal: the difference of two float32 cross-entropies
	// resolves a KL down to about 1e-7 and is never meaningfully negative.
	z := randomValues(1, 2, b*c)
	for _, d := range []float32{1e-3, 3e-2, 0.3} {
		z2 := append([]float32(nil), z...)
		z2[3] += d
		got := kdValue(z2, z, nil, b, c, 1, 2, 0) / 4
		kl, _, _ := refKD(z2, z, make([]int, b), b, c, 1, 2, 0)
		t.Logf("logit shifted by %g: KL %.4g, reference %.4g", d, got, kl)
		if got < -1e-7 || math.Abs(got-kl) > 2e-7 {
			t.Errorf("logit shifted by %g: KL %.4g, reference %.4g", d, got, kl)
		}
	}
}

func TestKDLossAlphaZeroIsCrossEntropy(t *testing.T) {
	const b, c = 4, 6
	zs := randomValues(3, 2, b*c)
	labels := []int{5, 0, 2, 2}
	for _, s := range []float64{0, 0.1} {
		want := autograd.CrossEntropy(autograd.NewTape(false), autograd.FromData(zs, b, c), labels, float32(s)).Data[0]
		// nil teacher logits: α = 0 must not read them.
		if got := kdValue(zs, nil, labels, b, c, 0, 2, s); got != float64(want) {
			t.Errorf("smoothing %v: α=0 loss %v, CE %v", s, got, want)
		}
		// A tiny α is continuous with it.
		zt := randomValues(4, 2, b*c)
		if got := kdValue(zs, zt, labels, b, c, 1e-7, 2, s); math.Abs(got-float64(want)) > 1e-5 {
			t.Errorf("smoothing %v: α=1e-7 loss %v, CE %v", s, got, want)
		}
	}
}

func TestKDLossExtremeLogitsFinite(t *testing.T) {
	const b, c = 3, 4
	zs := []float32{1e4, -1e4, 0, 1e4, -1e4, 1e4, -1e4, -1e4, 0, 0, 1e4, -1e4}
	zt := []float32{-1e4, 1e4, 1e4, 0, 1e4, -1e4, 0, 0, 1e4, -1e4, -1e4, 1e4}
	labels := []int{1, 0, 3}
	for _, tc := range []struct{ alpha, temp, smoothing float64 }{{0.9, 2, 0.1}, {1, 1, 0}, {0.5, 0.5, 0}, {0, 1, 0.1}} {
		x := autograd.NewParamTensor(b, c)
		copy(x.Data, zs)
		tp := autograd.NewTape(true)
		loss := KDLoss(tp, x, zt, labels, tc.alpha, tc.temp, tc.smoothing)
		tp.Backward(loss)
		v := float64(loss.Data[0])
		_, _, want := refKD(zs, zt, labels, b, c, tc.alpha, tc.temp, tc.smoothing)
		t.Logf("α=%v T=%v: loss %.6g, reference %.6g", tc.alpha, tc.temp, v, want)
		if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v-want) > 1e-5*math.Abs(want) {
			t.Errorf("α=%v T=%v: loss %v, reference %v", tc.alpha, tc.temp, v, want)
		}
		for i, g := range x.Grad {
			if math.IsNaN(float64(g)) || math.IsInf(float64(g), 0) {
				t.Fatalf("α=%v T=%v: gradient[%d] = %v", tc.alpha, tc.temp, i, g)
			}
		}
	}
	// Extreme but equal: still zero.
	if got := kdValue(zt, zt, nil, b, c, 1, 2, 0); math.Abs(got) > selfKLTol*4 {
		t.Errorf("KL(p‖p) with ±1e4 logits = %g", got)
	}
}

func TestKDLossPanicsOnMismatch(t *testing.T) {
	expectPanic := func(name, want string, f func()) {
		t.Helper()
		defer func() {
			r := recover()
			if s, _ := r.(string); !strings.Contains(s, want) {
				t.Errorf("%s: panic %v, want one mentioning %q", name, r, want)
			}
		}()
		f()
	}
	zs := randomValues(1, 1, 6)
	expectPanic("teacher size", "teacher logits", func() { kdValue(zs, zs[:4], []int{0, 1}, 2, 3, 0.5, 2, 0) })
	expectPanic("labels", "labels", func() { kdValue(zs, zs, []int{0}, 2, 3, 0.5, 2, 0) })
	teacher := newModel(t, tinyConfig(), 1)
	expectPanic("images", "teacher expects images", func() {
		NewTeacher(teacher).Logits(autograd.FromData(make([]float32, 2*3*8*8), 2, 3, 8, 8))
	})
}

func newModel(t *testing.T, cfg vit.Config, seed int64) *vit.Model {
	t.Helper()
	m, err := vit.New(cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestNewObjectiveErrors(t *testing.T) {
	teacher := NewTeacher(newModel(t, tinyConfig(), 1))
	nan, inf := math.NaN(), math.Inf(1)
	for _, tc := range []struct {
		name                   string
		t                      *Teacher
		alpha, temp, smoothing float64
		classes                int
		want                   string
	}{
		{"nil teacher", nil, 0.9, 2, 0, 3, "needs a teacher"},
		{"nil model", &Teacher{}, 0.9, 2, 0, 3, "needs a teacher"},
		{"classes", teacher, 0.9, 2, 0, 10, "teacher has 3 classes, student has 10"},
		{"alpha < 0", teacher, -0.1, 2, 0, 3, "alpha"},
		{"alpha > 1", teacher, 1.5, 2, 0, 3, "alpha"},
		{"alpha NaN", teacher, nan, 2, 0, 3, "alpha"},
		{"T = 0", teacher, 0.9, 0, 0, 3, "temperature"},
		{"T < 0", teacher, 0.9, -2, 0, 3, "temperature"},
		{"T NaN", teacher, 0.9, nan, 0, 3, "temperature"},
		{"T Inf", teacher, 0.9, inf, 0, 3, "temperature"},
		{"smoothing < 0", teacher, 0.9, 2, -0.1, 3, "smoothing"},
		{"smoothing > 1", teacher, 0.9, 2, 1.1, 3, "smoothing"},
	} {
		o, err := NewObjective(tc.t, tc.alpha, tc.temp, tc.smoothing, tc.classes)
		if err == nil || o != nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got (%v, %v), want an error mentioning %q", tc.name, o, err, tc.want)
		}
	}
	// Every problem is reported at once.
	if _, err := NewObjective(teacher, 2, -1, 0, 4); err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("three problems: got %v", err)
	}
	for _, a := range []float64{0, 0.9, 1} {
		if _, err := NewObjective(teacher, a, 2, 0.1, 3); err != nil {
			t.Errorf("α=%v: %v", a, err)
		}
	}
}

// selfKLTol bounds KL(p‖p) per unit of T². The KL is the difference of two
// float32 cross-entropies (of size up to log C ≈ 2.3 here) computed along the
// same arithmetic, so on most platforms it is exactly 0; where the compiler
// fuses multiply-adds in one of them (arm64) the two may differ by a few ulps
// of 2.3, about 2.4e-7 each.
const selfKLTol = 1e-6

// logitTol bounds the difference between the logits of two code paths (other
// batch sizes, hence other BLAS blockings), relative to the largest logit of
// the row: float32 rounding through a few layers moves logits by about 1e-7
// of their scale, so 1e-5 leaves a wide margin yet catches any real error.
const logitTol = 1e-5

// maxLogitErr returns the index and size of the largest |got−want|, each
// measured against the largest |want| of its row of c logits (at least 1e-3,
// so that a row of near-zero logits is not judged by its rounding alone).
func maxLogitErr(got, want []float32, c int) (int, float64) {
	worst, at := 0.0, -1
	for r := 0; r+c <= len(want); r += c {
		scale := 1e-3
		for _, v := range want[r : r+c] {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		for i := r; i < r+c; i++ {
			if e := math.Abs(float64(got[i])-float64(want[i])) / scale; e > worst || at < 0 {
				worst, at = e, i
			}
		}
	}
	return at, worst
}

func TestTeacherLogitsMatchPredict(t *testing.T) {
	cfg := tinyConfig()
	m := newModel(t, cfg, 4)
	teacher := NewTeacher(m)
	chw := cfg.Channels * cfg.Image * cfg.Image
	x := randomValues(7, 1, 5*chw)
	want := vit.Predict(m, x, 5, 5)
	// Different batch sizes in turn: the reused tape must not leak state.
	for _, n := range []int{5, 2, 5} {
		got := teacher.Logits(autograd.FromData(x[:n*chw], n, cfg.Channels, cfg.Image, cfg.Image))
		if len(got) != n*cfg.Classes {
			t.Fatalf("batch %d: %d logits", n, len(got))
		}
		// Another batch size is another code path: BLAS may block the
		// products differently, so the last bits may move (see logitTol).
		if i, err := maxLogitErr(got, want[:n*cfg.Classes], cfg.Classes); err > logitTol {
			t.Fatalf("batch %d: logit %d = %v, Predict gives %v (error %.3g of the row's largest logit, want ≤ %g)", n, i, got[i], want[i], err, logitTol)
		}
	}
}

func TestLoadTeacher(t *testing.T) {
	cfg := tinyConfig()
	m := newModel(t, cfg, 9)
	path := filepath.Join(t.TempDir(), "teacher.safetensors")
	meta := vit.Meta{Dataset: "unit", NormMean: []float32{0.1, 0.2}, NormStd: []float32{1, 2}}
	if err := m.Save(path, meta); err != nil {
		t.Fatal(err)
	}
	teacher, got, err := LoadTeacher(path, vit.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Dataset != "unit" || len(got.NormMean) != 2 || teacher.Model().Classes != 3 {
		t.Errorf("meta %+v, classes %d", got, teacher.Model().Classes)
	}
	x := autograd.FromData(randomValues(3, 1, 2*cfg.Channels*cfg.Image*cfg.Image), 2, cfg.Channels, cfg.Image, cfg.Image)
	want := append([]float32(nil), NewTeacher(m).Logits(x)...)
	for i, v := range teacher.Logits(x) {
		if v != want[i] {
			t.Fatalf("logit %d: loaded %v, original %v", i, v, want[i])
		}
	}
	if _, _, err := LoadTeacher(filepath.Join(t.TempDir(), "missing.safetensors"), vit.LoadOptions{}); err == nil || !strings.Contains(err.Error(), "teacher") {
		t.Errorf("missing file: %v", err)
	}
}

// randomDataset is a learnable 3-class set of 8×8×2 images: class k has a
// bright patch in quadrant k plus noise.
func randomDataset(n int) *datasets.Dataset {
	cfg := tinyConfig()
	chw := cfg.Channels * cfg.Image * cfg.Image
	split := func(seed int64, n int) datasets.Split {
		x := randomValues(seed, 0.5, n*chw)
		y := make([]int, n)
		for i := range y {
			y[i] = i % cfg.Classes
			for c := 0; c < cfg.Channels; c++ {
				for r := 0; r < 4; r++ {
					for q := 0; q < 4; q++ {
						row, col := r+4*(y[i]/2), q+4*(y[i]%2)
						x[i*chw+c*64+row*8+col] += 2
					}
				}
			}
		}
		return datasets.Split{X: x, Y: y}
	}
	return &datasets.Dataset{Name: "unit", C: cfg.Channels, H: cfg.Image, W: cfg.Image,
		Classes: []string{"a", "b", "c"}, Train: split(1, n), Test: split(2, n/4)}
}

func meanKL(student, teacher *vit.Model, x []float32, n int, temp float64) float64 {
	zs := vit.Predict(student, x, n, n)
	zt := vit.Predict(teacher, x, n, n)
	return kdValue(zs, zt, nil, n, student.Classes, 1, temp, 0) / (temp * temp)
}

func paramBits(m *vit.Model) (data, grad [][]uint32) {
	for _, p := range m.Params.List() {
		d, g := make([]uint32, len(p.Data)), make([]uint32, len(p.Grad))
		for i, v := range p.Data {
			d[i] = math.Float32bits(v)
		}
		for i, v := range p.Grad {
			g[i] = math.Float32bits(v)
		}
		data, grad = append(data, d), append(grad, g)
	}
	return data, grad
}

// newRun is a plain training run on ds: a seeded model, normalisation from
// the training split, no components.
func newRun(opts training.Options, ds *datasets.Dataset) (*training.Run, error) {
	m, err := vit.New(opts.Config, opts.Seed)
	if err != nil {
		return nil, err
	}
	st := datasets.ComputeStats(ds)
	return &training.Run{Opts: opts, Model: m, Data: ds,
		Meta: vit.Meta{Dataset: opts.Data, NormMean: st.Mean, NormStd: st.Std, ClassNames: ds.Classes}}, nil
}

func TestTeacherFrozenDuringDistillation(t *testing.T) {
	cfg := tinyConfig()
	ds := randomDataset(96)
	r, err := newRun(training.Options{Data: "unit", Config: cfg, Epochs: 20, Batch: 16, LR: 2e-2,
		MinLR: 1e-4, WeightDecay: 0.05, LabelSmoothing: 0.1, ClipNorm: 1, Seed: 11}, ds)
	if err != nil {
		t.Fatal(err)
	}
	// A trained teacher, so its soft targets carry a signal, with a
	// recognisable pattern in its gradient buffers that any write would
	// disturb.
	tr, err := newRun(training.Options{Data: "unit", Config: cfg, Epochs: 20, Batch: 16, LR: 2e-2,
		MinLR: 1e-4, WeightDecay: 0.05, ClipNorm: 1, Seed: 12}, ds)
	if err != nil {
		t.Fatal(err)
	}
	tres, err := tr.Train(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tm := tr.Model
	for k, p := range tm.Params.List() {
		for i := range p.Grad {
			p.Grad[i] = float32(k*1000+i) * 0.25
		}
	}
	teacher := NewTeacher(tm)
	obj, err := NewObjective(teacher, 0.9, 2, 0.1, r.Model.Classes)
	if err != nil {
		t.Fatal(err)
	}
	r.Components = []training.Component{obj}
	wantData, wantGrad := paramBits(tm)
	studentBefore, _ := paramBits(r.Model)

	// Normalised training images, as the loop feeds them to both models.
	stats := datasets.ComputeStats(ds)
	loader := datasets.NewLoader(ds, &ds.Train, datasets.LoaderOptions{Batch: ds.Train.Len(), Stats: stats})
	x, _, n := loader.Batch(0, 0)
	x = append([]float32(nil), x[:n*cfg.Channels*cfg.Image*cfg.Image]...)
	klBefore := meanKL(r.Model, tm, x, n, 2)

	res, err := r.Train(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	klAfter := meanKL(r.Model, tm, x, n, 2)
	t.Logf("teacher test accuracy %.3f, student %.3f", tres.Test.Accuracy, res.Test.Accuracy)
	t.Logf("student-teacher KL at T=2 on train images: %.4f before, %.4f after %d epochs (train loss %.4f → %.4f)",
		klBefore, klAfter, len(res.History), res.History[0].TrainLoss, res.History[len(res.History)-1].TrainLoss)

	gotData, gotGrad := paramBits(tm)
	for k := range wantData {
		name := tm.Params.List()[k].Name
		for i := range wantData[k] {
			if gotData[k][i] != wantData[k][i] {
				t.Fatalf("teacher %s[%d] changed", name, i)
			}
			if gotGrad[k][i] != wantGrad[k][i] {
				t.Fatalf("teacher gradient %s[%d] written", name, i)
			}
		}
	}
	studentAfter, _ := paramBits(r.Model)
	changed := 0
	for k := range studentBefore {
		for i := range studentBefore[k] {
			if studentBefore[k][i] != studentAfter[k][i] {
				changed++
			}
		}
	}
	if changed == 0 {
		t.Fatal("the student did not train")
	}
	// The teacher's signal reached the student.
	if !(klAfter < klBefore) {
		t.Errorf("KL to the teacher did not fall: %.4f → %.4f", klBefore, klAfter)
	}
}

func TestTeacherSeesInputNormalisedItsOwnWay(t *testing.T) {
	cfg := tinyConfig()
	m := newModel(t, cfg, 5)
	chw := cfg.Channels * cfg.Image * cfg.Image
	raw := randomValues(8, 1, 3*chw) // pixels
	plane := cfg.Image * cfg.Image
	norm := func(mean, std []float32) []float32 {
		out := make([]float32, len(raw))
		for i, v := range raw {
			c := (i / plane) % cfg.Channels
			out[i] = (v - mean[c]) / std[c]
		}
		return out
	}
	tMean, tStd := []float32{0.1, 0.2}, []float32{0.3, 0.4}
	sMean, sStd := []float32{0.5, -0.1}, []float32{1.2, 0.7}
	want := vit.Predict(m, norm(tMean, tStd), 3, 3) // the teacher fed its own way
	teacher := NewTeacher(m)
	if err := teacher.SeeInputAs(tMean, tStd, sMean, sStd); err != nil {
		t.Fatal(err)
	}
	got := teacher.Logits(autograd.FromData(norm(sMean, sStd), 3, cfg.Channels, cfg.Image, cfg.Image))
	// Renormalising in float32 rounds differently from normalising once.
	if i, err := maxLogitErr(got, want, cfg.Classes); err > 1e-4 {
		t.Errorf("logit %d = %v, the teacher on its own normalisation gives %v", i, got[i], want[i])
	}
	// Statistics that agree to the last bits leave the input alone.
	same := NewTeacher(m)
	if err := same.SeeInputAs(sMean, []float32{math.Nextafter32(1.2, 2), 0.7}, sMean, sStd); err != nil || same.scale != nil {
		t.Errorf("near-equal statistics: err %v, renormalising %v", err, same.scale != nil)
	}
	if err := NewTeacher(m).SeeInputAs(tMean[:1], tStd[:1], sMean, sStd); err == nil {
		t.Error("one channel of statistics for two: no error")
	}
}
