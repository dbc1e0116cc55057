package pipeline

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"vitc/taylorattn"
	"vitc/vit/training"
)

func taylorRun(t *testing.T, sparse taylorattn.SparseOptions) *training.Run {
	t.Helper()
	spec, ds := tinySpec(t, 1)
	spec.Train.Config.Attention = "taylor"
	spec.Plan.Sparse = sparse
	j, err := New(spec, ds)
	if err != nil {
		t.Fatal(err)
	}
	return j.Run
}

// sparseOf is the run's sparse-branch component, if any.
func sparseOf(r *training.Run) *taylorattn.Sparse {
	for _, c := range r.Components {
		if s, ok := c.(*taylorattn.Sparse); ok {
			return s
		}
	}
	return nil
}

func trainedBytes(t *testing.T, r *training.Run) []byte {
	t.Helper()
	if _, err := r.Train(context.Background()); err != nil {
		t.Fatal(err)
	}
	return modelBytes(t, r.Model)
}

func TestSparseBranchReproducibleAndSwitchable(t *testing.T) {
	on := taylorattn.SparseOptions{Weight: 1, Threshold: 0.002, Reg: 0.1, Anneal: 0.3}
	a, b := taylorRun(t, on), taylorRun(t, on)
	if len(a.Components) != 1 || sparseOf(a) == nil {
		t.Fatal("sparse branch not attached")
	}
	first := trainedBytes(t, a)
	if !bytes.Equal(first, trainedBytes(t, b)) {
		t.Error("two seeded runs with the sparse branch differ")
	}
	metrics := a.CurrentState().History[0].Extra
	if dens, ok := metrics["sparse_mask_density"].([]float64); !ok || len(dens) != a.Model.Depth || dens[0] <= 0 {
		t.Errorf("metrics lack per-layer mask density: %v", metrics)
	}
	off := on
	off.Weight = 0
	plain := taylorRun(t, off)
	if len(plain.Components) != 0 {
		t.Error("--sparse-weight 0 still attaches the branch")
	}
	plainBytes := trainedBytes(t, plain)
	if !bytes.Equal(plainBytes, trainedBytes(t, taylorRun(t, taylorattn.SparseOptions{}))) {
		t.Error("--sparse-weight 0 differs from plain Taylor training")
	}
	if bytes.Equal(plainBytes, first) {
		t.Error("the sparse branch changed nothing")
	}
}

// TestSparseFormulationResumes trains with ViTALiTy's formulation of the
// branch, stops inside the run and resumes from the directory: the saved
// plan names the formulation, and the resumed run ends where an
// uninterrupted one does, which vitc's formulation does not.
func TestSparseFormulationResumes(t *testing.T) {
	opts := taylorattn.SparseOptions{Weight: 1, Threshold: 0.002, Reg: 0.1, Anneal: 0.3, Formulation: taylorattn.FormulationViTALiTy}
	want := trainedBytes(t, taylorRun(t, opts))
	vitcOpts := opts
	vitcOpts.Formulation = taylorattn.FormulationVitc
	if bytes.Equal(want, trainedBytes(t, taylorRun(t, vitcOpts))) {
		t.Error("the two formulations trained the same model")
	}
	spec, ds := tinySpec(t, 1)
	spec.Train.Config.Attention = "taylor"
	spec.Plan.Sparse = opts
	j, err := New(spec, ds)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := j.Train(ctx, dir, &cancelAfter{n: 9, cancel: cancel}); !errors.Is(err, training.ErrInterrupted) {
		t.Fatalf("got %v, want ErrInterrupted", err)
	}
	saved, err := training.ReadSaved(dir)
	if err != nil {
		t.Fatal(err)
	}
	savedSpec, _ := SavedSpec(saved)
	if savedSpec.Plan.Sparse != opts {
		t.Fatalf("saved sparse options %+v, want %+v", savedSpec.Plan.Sparse, opts)
	}
	resumed, err := Build(savedSpec, j.Run.Data, saved)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(trainedBytes(t, resumed), want) {
		t.Error("the resumed run differs from the uninterrupted one")
	}
}
