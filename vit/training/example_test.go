package training_test

import (
	"context"
	"fmt"

	"vitc/datasets"
	"vitc/vit"
	"vitc/vit/training"
)

// stepCounter is the smallest component: it hooks in before each step and
// at each epoch's end, and changes nothing else.
type stepCounter struct{ steps int }

func (c *stepCounter) Name() string                 { return "step_counter" }
func (c *stepCounter) BeforeStep(step, total int)   { c.steps++ }
func (c *stepCounter) EpochMetrics() map[string]any { return map[string]any{"steps_seen": c.steps} }

// A component joins a run by being in Run.Components; the loop finds its
// hooks by the interfaces it implements.
func ExampleComponent() {
	ds := datasets.Synthetic(1)
	ds.Train.X, ds.Train.Y = ds.Train.X[:200*28*28], ds.Train.Y[:200]
	ds.Test.X, ds.Test.Y = ds.Test.X[:50*28*28], ds.Test.Y[:50]
	cfg, _ := vit.ConfigFor("micro", ds, vit.Overrides{Dim: 16, Depth: 1, Heads: 2, Patch: 7})
	m, _ := vit.New(cfg, 1)
	st := datasets.ComputeStats(ds)
	r := &training.Run{
		Opts:       training.Options{Data: "synthetic", Config: cfg, Epochs: 2, Batch: 50, LR: 1e-3, Seed: 1},
		Model:      m,
		Data:       ds,
		Meta:       vit.Meta{NormMean: st.Mean, NormStd: st.Std},
		Components: []training.Component{&stepCounter{}},
	}
	res, err := r.Train(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.History[0].Extra["steps_seen"], res.History[1].Extra["steps_seen"])
	// Output: 4 8
}
