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
	// scale and shift map the student's normalised input to the teacher's
	// own normalisation, per channel (nil: the same normalisation).
	scale, shift []float32
	buf          []float32
}

// Renormalize makes the teacher see the student's batches, normalised with
// (fromMean, fromStd), as if normalised with its own (toMean, toStd):
// x_t = (x·σ_s + μ_s − μ_t)/σ_t, so any checkpoint can teach whatever
// statistics the student's data has.
func (t *Teacher) Renormalize(fromMean, fromStd, toMean, toStd []float32) error {
	c := t.m.Channels
	if len(fromMean) != c || len(fromStd) != c || len(toMean) != c || len(toStd) != c {
		return fmt.Errorf("teacher normalisation: %d/%d student and %d/%d teacher statistics for %d channels", len(fromMean), len(fromStd), len(toMean), len(toStd), c)
	}
	t.scale, t.shift = make([]float32, c), make([]float32, c)
	for i := range c {
		if !(toStd[i] > 0) {
			return fmt.Errorf("teacher normalisation: std %v must be positive", toStd)
		}
		t.scale[i] = fromStd[i] / toStd[i]
		t.shift[i] = (fromMean[i] - toMean[i]) / toStd[i]
	}
	return nil
}

// NewTeacher wraps m. The caller must not train m while the Teacher is in
// use: the Teacher only guarantees that it never changes m itself.
func NewTeacher(m *vit.Model) *Teacher {
	return &Teacher{m: m, tp: autograd.NewTape(false)}
}

// LoadTeacher reads a checkpoint as vit.Load does. The Meta is returned so
// the caller can compare the teacher's normalisation with the student's and
// Renormalize when they differ: otherwise the teacher sees the student's
// batches as they are.
func LoadTeacher(path string, opts vit.LoadOptions) (*Teacher, vit.Meta, error) {
	m, meta, err := vit.Load(path, opts)
	if err != nil {
		return nil, vit.Meta{}, fmt.Errorf("teacher: %w", err)
	}
	return NewTeacher(m), meta, nil
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
	if t.scale != nil {
		t.buf = append(t.buf[:0], images.Data...)
		plane := m.Image * m.Image
		for i := range t.buf {
			ch := i / plane % m.Channels
			t.buf[i] = t.buf[i]*t.scale[ch] + t.shift[ch]
		}
		images = autograd.FromData(t.buf, images.Shape...)
	}
	return m.Forward(t.tp, images).Data
}

// Objective implements vit.Objective with the distillation loss; see KDLoss.
// Build it with NewObjective, which validates the settings.
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

// Loss implements vit.Objective. The teacher runs on the student's images,
// renormalised if Renormalize was called; with α = 0 it is not run at all.
func (o *Objective) Loss(tp *autograd.Tape, b vit.Batch, logits *autograd.Tensor) *autograd.Tensor {
	var zt []float32
	if o.Alpha != 0 {
		zt = o.Teacher.Logits(b.Images)
	}
	return KDLoss(tp, logits, zt, b.Labels, o.Alpha, o.Temperature, o.LabelSmoothing)
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
