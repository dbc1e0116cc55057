package vit

import (
	"bytes"
	"context"
	"testing"

	"vitc/taylorattn"
)

func taylorRun(t *testing.T, sparse taylorattn.SparseOptions) *Run {
	t.Helper()
	r := tinyRun(t, 1)
	cfg := r.Opts.Config
	cfg.Attention = "taylor"
	r.Opts.Config = cfg
	r.Opts.Sparse = sparse
	m, err := New(cfg, r.Opts.Seed)
	if err != nil {
		t.Fatal(err)
	}
	r.Model = m
	if err := r.attachSparse(); err != nil {
		t.Fatal(err)
	}
	return r
}

func trainedBytes(t *testing.T, r *Run) []byte {
	t.Helper()
	if _, err := r.Train(context.Background()); err != nil {
		t.Fatal(err)
	}
	return modelBytes(t, r.Model)
}

func TestSparseBranchReproducibleAndSwitchable(t *testing.T) {
	on := taylorattn.SparseOptions{Weight: 1, Threshold: 0.002, Reg: 0.1, Anneal: 0.3}
	a, b := taylorRun(t, on), taylorRun(t, on)
	if len(a.Terms) != 1 || len(a.Hooks) != 1 || a.Model.AttentionHook == nil {
		t.Fatal("sparse branch not attached")
	}
	first := trainedBytes(t, a)
	if !bytes.Equal(first, trainedBytes(t, b)) {
		t.Error("two seeded runs with the sparse branch differ")
	}
	metrics := a.state.History[0].Extra
	if dens, ok := metrics["sparse_mask_density"].([]float64); !ok || len(dens) != a.Model.Depth || dens[0] <= 0 {
		t.Errorf("metrics lack per-layer mask density: %v", metrics)
	}
	off := on
	off.Weight = 0
	plain := taylorRun(t, off)
	if len(plain.Terms) != 0 || plain.Model.AttentionHook != nil {
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
