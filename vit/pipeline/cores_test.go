package pipeline

import (
	"bytes"
	"context"
	"runtime"
	"testing"

	"vitc/datasets"
	"vitc/taylorattn"
	"vitc/vit"
	"vitc/vit/training"
)

// TestCoreCountDoesNotChangeTraining trains the same run with 1, 2, 5 and
// 16 cores and requires byte-identical checkpoints: every parallel split and
// reduction is cut by the size of the work, never by GOMAXPROCS
// (autograd.maxChunks). The run is large enough that products, LayerNorm
// gradients and attention are split into several chunks, and covers both
// attention kinds, the sparse Taylor branch and token pruning.
func TestCoreCountDoesNotChangeTraining(t *testing.T) {
	if testing.Short() {
		t.Skip("trains eight small runs")
	}
	ds := datasets.Synthetic(4)
	ds.Train.X, ds.Train.Y = ds.Train.X[:192*28*28], ds.Train.Y[:192]
	ds.Test.X, ds.Test.Y = ds.Test.X[:64*28*28], ds.Test.Y[:64]
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, attn := range []string{"softmax", "taylor"} {
		cfg, err := vit.ConfigFor("micro", ds, vit.Overrides{Depth: 2, Attention: attn})
		if err != nil {
			t.Fatal(err)
		}
		cfg.TokenKeep, cfg.TokenLayers = 0.7, []int{0}
		spec := Spec{Train: training.Options{Data: "synthetic", Config: cfg, Epochs: 1, Batch: 48, LR: 2e-3, MinLR: 1e-5,
			WeightDecay: 0.05, WarmupEpochs: 0.2, LabelSmoothing: 0.1, ClipNorm: 1, Augment: true, Seed: 3},
			Plan: Plan{Kind: KindTrain}}
		if attn == "taylor" {
			spec.Plan.Sparse = taylorattn.DefaultSparse
			spec.Plan.Sparse.Weight = 0.3
		}
		var want []byte
		for _, procs := range []int{1, 2, 5, 16} {
			runtime.GOMAXPROCS(procs)
			j, err := New(spec, ds)
			if err != nil {
				t.Fatal(err)
			}
			r := j.Run
			if _, err := r.Train(context.Background()); err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := r.Model.Encode(&b, r.Meta); err != nil {
				t.Fatal(err)
			}
			if want == nil {
				want = b.Bytes()
				continue
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("%s: the checkpoint trained with GOMAXPROCS=%d differs from the one trained with GOMAXPROCS=1", attn, procs)
			}
		}
	}
}
