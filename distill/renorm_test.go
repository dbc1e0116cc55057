package distill

import (
	"math"
	"testing"

	"vitc/autograd"
	"vitc/vit"
)

// A teacher trained on other statistics, fed the student's batches with
// Renormalize, computes what it computes on its own normalisation.
func TestRenormalizeMatchesOwnNormalisation(t *testing.T) {
	cfg := vit.Config{Image: 8, Channels: 3, Patch: 4, Dim: 16, Depth: 1, Heads: 2, MLPRatio: 2, Classes: 3, Attention: "softmax"}
	m, err := vit.New(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	sMean, sStd := []float32{0.2, 0.3, 0.4}, []float32{0.1, 0.2, 0.3}
	tMean, tStd := []float32{0.485, 0.456, 0.406}, []float32{0.229, 0.224, 0.225}
	const n = 2
	raw := make([]float32, n*3*64)
	for i := range raw {
		raw[i] = float32(i%17) / 16
	}
	norm := func(mean, std []float32) []float32 {
		x := make([]float32, len(raw))
		for i, v := range raw {
			c := i / 64 % 3
			x[i] = (v - mean[c]) / std[c]
		}
		return x
	}
	own := append([]float32(nil), NewTeacher(m).Logits(autograd.FromData(norm(tMean, tStd), n, 3, 8, 8))...)
	teacher := NewTeacher(m)
	if err := teacher.Renormalize(sMean, sStd, tMean, tStd); err != nil {
		t.Fatal(err)
	}
	student := norm(sMean, sStd)
	got := teacher.Logits(autograd.FromData(student, n, 3, 8, 8))
	for i := range own {
		if math.Abs(float64(got[i]-own[i])) > 1e-4*(1+math.Abs(float64(own[i]))) {
			t.Fatalf("logit %d: %g renormalised, %g on its own statistics", i, got[i], own[i])
		}
	}
	if student[0] != (raw[0]-sMean[0])/sStd[0] {
		t.Error("Renormalize changed the student's batch")
	}
	if err := teacher.Renormalize(sMean[:1], sStd, tMean, tStd); err == nil {
		t.Error("statistics of the wrong channel count accepted")
	}
}
