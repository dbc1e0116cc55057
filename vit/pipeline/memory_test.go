package pipeline

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"vitc/taylorattn"
)

// A run that recomputes its blocks trains the same model, bit for bit,
// with the same metrics: recomputation changes memory, not results. The
// sparse branch, which sums statistics as it runs, refuses it.
func TestRecomputeTrainsTheSameModel(t *testing.T) {
	spec, ds := tinySpec(t, 2)
	spec.Train.Config.Depth = 2
	plain, err := New(spec, ds)
	if err != nil {
		t.Fatal(err)
	}
	spec.Train.Recompute = true
	re, err := New(spec, ds)
	if err != nil {
		t.Fatal(err)
	}
	a, err := plain.Run.Train(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := re.Run.Train(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(modelBytes(t, plain.Run.Model), modelBytes(t, re.Run.Model)) {
		t.Error("the run with recomputation trained another model")
	}
	for i := range a.History {
		x, y := a.History[i], b.History[i]
		if x.TrainLoss != y.TrainLoss || x.TestLoss != y.TestLoss || x.GradNorm != y.GradNorm {
			t.Errorf("epoch %d: metrics %+v with recomputation, %+v without", i+1, y, x)
		}
	}

	spec.Train.Config.Attention = "taylor"
	spec.Plan.Sparse = taylorattn.DefaultSparse
	if _, err := New(spec, ds); err == nil || !strings.Contains(err.Error(), "sparse branch") {
		t.Errorf("recomputation with the sparse branch: %v", err)
	}
	spec.Plan.Sparse.Weight = 0
	if _, err := New(spec, ds); err != nil {
		t.Errorf("recomputation of plain Taylor attention: %v", err)
	}
	spec.Plan.Sparse, spec.Train.Engine = taylorattn.SparseOptions{}, "gorgonia"
	if _, err := New(spec, ds); err == nil || !strings.Contains(err.Error(), "native engine") {
		t.Errorf("recomputation on the Gorgonia engine: %v", err)
	}
}

// MaxSteps ends each epoch early, as if the split were that long.
func TestMaxStepsPerEpoch(t *testing.T) {
	spec, ds := tinySpec(t, 1)
	spec.Train.MaxSteps = 3
	j, err := New(spec, ds)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Run.Train(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := j.Run.CurrentState(); st.Step != 3 {
		t.Errorf("%d steps trained, want 3", st.Step)
	}
}
