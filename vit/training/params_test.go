package training

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"vitc/autograd"
	"vitc/datasets"
	"vitc/vit"
)

func tinyRun(t *testing.T, opts Options) *Run {
	t.Helper()
	ds := datasets.Synthetic(2)
	ds.Train.X, ds.Train.Y = ds.Train.X[:100*28*28], ds.Train.Y[:100]
	ds.Test.X, ds.Test.Y = ds.Test.X[:20*28*28], ds.Test.Y[:20]
	cfg, err := vit.ConfigFor("micro", ds, vit.Overrides{Dim: 16, Depth: 2, Heads: 2, Patch: 7})
	if err != nil {
		t.Fatal(err)
	}
	m, err := vit.New(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	st := datasets.ComputeStats(ds)
	opts.Data, opts.Config, opts.Epochs, opts.Batch, opts.LR, opts.Seed = "synthetic", cfg, 1, 25, 1e-2, 1
	return &Run{Opts: opts, Model: m, Data: ds, Meta: vit.Meta{NormMean: st.Mean, NormStd: st.Std}}
}

// Layer-wise decay follows timm's param_groups_layer_decay: with depth 2
// there are 4 layer ids, the head at the full rate and each layer below it
// one factor of the decay smaller.
func TestLayerDecayScales(t *testing.T) {
	r := tinyRun(t, Options{LayerDecay: 0.5})
	if _, err := ParamGroups(r.Model, r.Opts); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{"head.weight": 1, "norm.bias": 1, "blocks.1.attn.qkv.weight": 0.5,
		"blocks.0.mlp.fc2.bias": 0.25, "pos_embed": 0.125, "cls_token": 0.125, "patch_embed.proj.weight": 0.125} {
		p, _ := r.Model.Params.Get(name)
		if math.Abs(p.LRScale-want) > 1e-15 {
			t.Errorf("%s: lr scale %v, want %v", name, p.LRScale, want)
		}
	}
}

func snapshot(r *Run) map[string][]float32 {
	out := map[string][]float32{}
	for _, p := range r.Model.Params.List() {
		out[p.Name] = slices.Clone(p.Data)
	}
	return out
}

func TestFrozenParametersDoNotTrain(t *testing.T) {
	for _, opts := range []Options{{LinearProbe: true}, {Freeze: []string{"blocks.*", "patch_embed.*"}}} {
		r := tinyRun(t, opts)
		before := snapshot(r)
		if _, err := r.Train(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, p := range r.Model.Params.List() {
			frozen := opts.LinearProbe && !strings.HasPrefix(p.Name, "head.") ||
				strings.HasPrefix(p.Name, "blocks.") || strings.HasPrefix(p.Name, "patch_embed.")
			changed := !slices.Equal(before[p.Name], p.Data)
			if frozen && changed {
				t.Errorf("%+v: frozen %s changed", opts, p.Name)
			}
			if !frozen && !changed {
				t.Errorf("%+v: trainable %s did not change", opts, p.Name)
			}
		}
	}
}

func TestFreezeRefusesWhatCannotBeMeant(t *testing.T) {
	for _, c := range []struct {
		opts Options
		want string
	}{
		{Options{Freeze: []string{"blokcs.*"}}, `freeze pattern "blokcs.*" matches no parameter`},
		{Options{Freeze: []string{"*"}}, "nothing to train"},
		{Options{Freeze: []string{"[bad"}}, `freeze pattern "[bad"`},
		{Options{LayerDecay: 1.5}, "layer decay 1.5"},
	} {
		r := tinyRun(t, c.opts)
		if _, err := r.Train(context.Background()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want an error containing %q", c.opts, err, c.want)
		}
	}
}

// zeroHead is a weight view that replaces the head's weights by zeros, so
// that every logit is the head's bias.
type zeroHead struct{}

func (zeroHead) Name() string { return "zero_head" }
func (zeroHead) View(tp *autograd.Tape, p *autograd.Param, w *autograd.Tensor) *autograd.Tensor {
	if p.Name != "head.weight" {
		return w
	}
	return tp.New(true, w.Shape...) // zeroed: a pool buffer holds whatever it held before
}

// The epoch's test accuracy is the model as the run trains it, extensions
// included (block masks, the keep rate of the moment): with the head viewed
// as zeros every image gets the class of the largest head bias.
func TestEvaluationSeesThePassExtensions(t *testing.T) {
	r := tinyRun(t, Options{})
	r.Components = []Component{zeroHead{}}
	res, err := r.Train(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	hb, _ := r.Model.Params.Get("head.bias")
	pred := vit.Argmax(hb.Data)
	want := 0
	for _, y := range r.Data.Test.Y {
		if y == pred {
			want++
		}
	}
	if got := res.History[0].TestAcc; got != float64(want)/float64(len(r.Data.Test.Y)) {
		t.Errorf("epoch test accuracy %v, want %v (every image predicted as class %d)", got, float64(want)/float64(len(r.Data.Test.Y)), pred)
	}
}
