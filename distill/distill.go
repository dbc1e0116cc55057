// Package distill trains a student under knowledge distillation from a
// frozen teacher (DESIGN.md, "Distillation"):
//
//	L = α·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) + (1−α)·CE(z_s, y)
package distill

import (
	"errors"
	"fmt"
	"math"

	"vitc/autograd"
	"vitc/vit"
)

// Teacher is a frozen model: its logits for a batch, computed on an
// inference tape, so no op records a backward closure, no gradient buffer
// of its parameters is ever written and no optimizer sees its weights.
//
// A Teacher reuses one tape between calls and is not safe for concurrent
// use.
type Teacher struct {
	m  *vit.Model
	tp *autograd.Tape
	// scale and shift map the student's normalised input to the teacher's,
	// per channel: x_t = x_s·scale + shift (nil: the same normalisation).
	scale, shift []float32
	input        []float32 // scratch for the renormalised batch
}

// NewTeacher wraps m. The caller must not train m while the Teacher is in
// use: the Teacher only guarantees that it never changes m itself.
func NewTeacher(m *vit.Model) *Teacher {
	return &Teacher{m: m, tp: autograd.NewTape(false)}
}

// LoadTeacher reads a checkpoint as vit.Load does, with its Meta (where it
// was trained and how its input was normalised).
func LoadTeacher(path string, opts vit.LoadOptions) (*Teacher, vit.Meta, error) {
	m, meta, err := vit.Load(path, opts)
	if err != nil {
		return nil, vit.Meta{}, fmt.Errorf("teacher: %w", err)
	}
	return NewTeacher(m), meta, nil
}

// NormTol is how far two normalisation statistics may be apart and still
// count as the same: statistics of the same data computed on another CPU or
// by another build differ in the last bits (relative 1e-7), statistics of
// other data in the second digit.
const NormTol = 1e-5

// SeeInputAs makes the teacher see each batch normalised its own way. The
// student's batches are normalised with (mean, std) = student; the teacher
// was trained on teacher. Raw pixels are x·std_s + mean_s, so the teacher's
// input is x·(std_s/std_t) + (mean_s − mean_t)/std_t. Statistics that agree
// within NormTol are left alone; empty teacher statistics (a checkpoint
// that does not record them) are taken to be the student's.
func (t *Teacher) SeeInputAs(teacherMean, teacherStd, studentMean, studentStd []float32) error {
	if len(teacherMean) == 0 && len(teacherStd) == 0 {
		return nil
	}
	c := len(studentMean)
	if len(teacherMean) != c || len(teacherStd) != c || len(studentStd) != c {
		return fmt.Errorf("teacher normalisation has %d means and %d stds for %d channels", len(teacherMean), len(teacherStd), c)
	}
	if Same(teacherMean, studentMean) && Same(teacherStd, studentStd) {
		t.scale, t.shift = nil, nil
		return nil
	}
	t.scale, t.shift = make([]float32, c), make([]float32, c)
	for i := range c {
		if !(teacherStd[i] > 0) {
			return fmt.Errorf("teacher normalisation std of channel %d is %v", i, teacherStd[i])
		}
		t.scale[i] = studentStd[i] / teacherStd[i]
		t.shift[i] = (studentMean[i] - teacherMean[i]) / teacherStd[i]
	}
	return nil
}

// Same reports whether two statistics agree within NormTol (relative).
func Same(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		if !(math.Abs(x-y) <= NormTol*math.Max(math.Abs(x), math.Abs(y))) {
			return false
		}
	}
	return true
}

// Model returns the wrapped model.
func (t *Teacher) Model() *vit.Model { return t.m }

// Logits returns the teacher's logits (B, classes) for normalised images
// (B, C, H, W). The slice lives in the Teacher's tape, which is rewound on
// the next call: it is valid until then, and a training step that runs one
// teacher pass allocates nothing after the first.
func (t *Teacher) Logits(images *autograd.Tensor) []float32 {
	m := t.m
	// An Objective cannot return an error, and a mismatch here would
	// otherwise surface as an index panic deep inside an op.
	if len(images.Shape) != 4 || images.Shape[1] != m.Channels || images.Shape[2] != m.Image || images.Shape[3] != m.Image {
		panic(fmt.Sprintf("distill: teacher expects images (B, %d, %d, %d), got %v", m.Channels, m.Image, m.Image, images.Shape))
	}
	t.tp.Reset()
	return m.Forward(t.tp, t.Input(images)).Data
}

// Input maps the student's input (B, C, H, W) to the teacher's (see
// SeeInputAs); the result is valid until the next call.
func (t *Teacher) Input(images *autograd.Tensor) *autograd.Tensor {
	if t.scale == nil {
		return images
	}
	if cap(t.input) < len(images.Data) {
		t.input = make([]float32, len(images.Data))
	}
	x := t.input[:len(images.Data)]
	b, c := images.Shape[0], images.Shape[1]
	plane := images.Shape[2] * images.Shape[3]
	for i := 0; i < b*c; i++ {
		sc, sh := t.scale[i%c], t.shift[i%c]
		src, dst := images.Data[i*plane:(i+1)*plane], x[i*plane:(i+1)*plane]
		for j, v := range src {
			dst[j] = v*sc + sh
		}
	}
	return autograd.FromData(x, images.Shape...)
}

// Objective is distillation as a training component: it replaces the
// run's cross-entropy with the distillation loss (see KDLoss). Build it
// with NewObjective, which validates the settings.
type Objective struct {
	Teacher        *Teacher
	Alpha          float64 // weight of the distillation term, in [0, 1]
	Temperature    float64 // softening temperature T > 0
	LabelSmoothing float64 // of the cross-entropy term
}

// NewObjective validates the settings against the student's class count:
// a teacher with other classes has no meaningful KL to the student.
func NewObjective(t *Teacher, alpha, temp, smoothing float64, studentClasses int) (*Objective, error) {
	var errs []error
	if t == nil || t.m == nil {
		errs = append(errs, errors.New("distillation needs a teacher model"))
	} else if t.m.Classes != studentClasses {
		errs = append(errs, fmt.Errorf("teacher has %d classes, student has %d", t.m.Classes, studentClasses))
	}
	// Negated comparisons so that NaN is refused too.
	if !(alpha >= 0 && alpha <= 1) {
		errs = append(errs, fmt.Errorf("distillation alpha %v must be in [0, 1]", alpha))
	}
	if !(temp > 0) || math.IsInf(temp, 0) {
		errs = append(errs, fmt.Errorf("distillation temperature %v must be positive and finite", temp))
	}
	if !(smoothing >= 0 && smoothing <= 1) {
		errs = append(errs, fmt.Errorf("label smoothing %v must be in [0, 1]", smoothing))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Objective{Teacher: t, Alpha: alpha, Temperature: temp, LabelSmoothing: smoothing}, nil
}

// Name identifies the component.
func (o *Objective) Name() string { return "distill" }

// Objective is the step's loss. The teacher runs on the student's batch,
// normalised its own way; with α = 0 it is not run at all.
func (o *Objective) Objective(tp *autograd.Tape, images *autograd.Tensor, labels []int, logits *autograd.Tensor) *autograd.Tensor {
	var zt []float32
	if o.Alpha != 0 {
		zt = o.Teacher.Logits(images)
	}
	return KDLoss(tp, logits, zt, labels, o.Alpha, o.Temperature, o.LabelSmoothing)
}

// KDLoss is the distillation loss of student logits (B, C) against fixed
// teacher logits (B·C values, row-major) and integer labels:
//
//	α·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T)) + (1−α)·CE(z_s, y; smoothing)
//
// with the KL summed over classes and averaged over the batch, which is
// torch's
//
//	F.kl_div(F.log_softmax(zs/T, -1), F.softmax(zt/T, -1), reduction='batchmean') * T*T
//
// (Hinton et al.: the T² keeps the soft term's gradient scale independent of
// T). The CE term is torch.nn.CrossEntropyLoss(label_smoothing=smoothing).
//
// The KL is built as SoftCrossEntropy(z_s/T; p_t) − H(p_t): the entropy is a
// constant of the teacher, so it changes no gradient, but subtracting it
// makes the reported value the KL itself (0 when the student matches the
// teacher) rather than a cross-entropy whose floor depends on the teacher.
//
// With α = 0 the teacher logits are not read (they may be nil) and the
// result is exactly autograd.CrossEntropy; with α = 1 the labels are not
// read.
func KDLoss(tp *autograd.Tape, student *autograd.Tensor, teacherLogits []float32, labels []int, alpha, temp, smoothing float64) *autograd.Tensor {
	if len(student.Shape) != 2 {
		panic(fmt.Sprintf("distill: student logits must be (B, C), got %v", student.Shape))
	}
	b, c := student.Shape[0], student.Shape[1]
	if alpha == 0 {
		return autograd.CrossEntropy(tp, student, labels, float32(smoothing))
	}
	if len(teacherLogits) != b*c {
		panic(fmt.Sprintf("distill: %d teacher logits for student logits %v", len(teacherLogits), student.Shape))
	}
	// The targets must outlive this call: SoftCrossEntropy's backward reads
	// them. The tape's arena keeps them until the next Reset and reuses the
	// buffer every step.
	targets := tp.New(false, b, c).Data
	entropy := teacherTargets(targets, teacherLogits, b, c, float32(temp))
	soft := autograd.SoftCrossEntropy(tp, student, targets, float32(temp))
	h := autograd.FromData([]float32{entropy}, 1)
	kd := float32(alpha * temp * temp)
	if alpha == 1 {
		return autograd.WeightedSum(tp, []*autograd.Tensor{soft, h}, []float32{kd, -kd})
	}
	if len(labels) != b {
		panic(fmt.Sprintf("distill: %d labels for a batch of %d", len(labels), b))
	}
	ce := autograd.CrossEntropy(tp, student, labels, float32(smoothing))
	return autograd.WeightedSum(tp, []*autograd.Tensor{soft, h, ce}, []float32{kd, -kd, float32(1 - alpha)})
}

// teacherTargets writes softmax(z_t/T) row by row into targets and returns
// the batch-mean entropy −Σ t·log p of those targets. Every step mirrors
// SoftCrossEntropy's own arithmetic (float32 z/T, float64 max-shifted
// log-sum-exp in the same order, float64 accumulation, one float32 rounding
// of the mean), so that for a student equal to the teacher the two terms
// are the same float32 and the KL is 0 (exactly, unless the compiler fuses
// multiply-adds in one of them, as Go does on arm64: then a few ulps), and
// for extreme logits the probabilities underflow to 0 instead of
// overflowing.
func teacherTargets(targets, logits []float32, b, c int, temp float32) float32 {
	scaled := make([]float64, c)
	var total float64
	for i := 0; i < b; i++ {
		mx := math.Inf(-1)
		for j, v := range logits[i*c : (i+1)*c] {
			scaled[j] = float64(v / temp)
			mx = math.Max(mx, scaled[j])
		}
		var s float64
		for _, v := range scaled {
			s += math.Exp(v - mx)
		}
		lse := mx + math.Log(s)
		row := targets[i*c : (i+1)*c]
		for j, v := range scaled {
			row[j] = float32(math.Exp(v - lse))
			total -= float64(row[j]) * (v - lse)
		}
	}
	return float32(total / float64(b))
}
