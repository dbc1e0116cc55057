package vit

import (
	"os"
	"strconv"
	"context"
	"testing"

	"vitc/datasets"
)

func TestSmokeTrainDigits(t *testing.T) {
	ds, err := datasets.Load("digits:/tmp/skl/x/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz", 0)
	if err != nil {
		t.Skip(err)
	}
	cfg, err := ConfigFor("micro", ds, Overrides{Patch: 2})
	if err != nil {
		t.Fatal(err)
	}
	f := func(k string, d float64) float64 {
		if v := os.Getenv(k); v != "" {
			x, _ := strconv.ParseFloat(v, 64)
			return x
		}
		return d
	}
	opts := TrainOptions{Data: "digits", Config: cfg, Epochs: int(f("EP", 30)), Batch: int(f("BS", 64)), LR: f("LR", 3e-3), MinLR: 1e-5, WeightDecay: f("WD", 0.05), WarmupEpochs: f("WU", 3), ClipNorm: 1, Augment: f("AUG", 1) == 1, Seed: 1, LabelSmoothing: f("LS", 0)}
	r, err := NewRun(opts, ds)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Train(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range res.History {
		t.Logf("%+v", h)
	}
}
