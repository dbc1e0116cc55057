package pipeline

import (
	"fmt"
	"strings"

	"vitc/blockprune"
	"vitc/datasets"
	"vitc/distill"
	"vitc/taylorattn"
	"vitc/tokenprune"
	"vitc/vit"
	"vitc/vit/gorgoniavit"
	"vitc/vit/training"
	"vitc/vit/weightquant"
)

// parts are the components a run's outputs need after training.
type parts struct {
	teacher     *distill.Teacher
	teacherMeta vit.Meta
	pruner      *blockprune.Pruner
	keep        *tokenprune.KeepSchedule
	loop        *closedLoop // nil: no target, or a plan from before plans recorded theirs
}

// Build makes the run a Spec describes, on ds: the model (seeded, then
// initialised from Plan.Init, adapted to the data when Plan.InitWith says
// so), normalisation statistics (the data's, or the pretrained
// checkpoint's), and the components of the plan. A resumed run passes the saved
// state, which then supplies weights, statistics and progress instead.
func Build(spec Spec, ds *datasets.Dataset, saved *training.Saved) (*training.Run, error) {
	r, _, err := build(spec, ds, saved)
	return r, err
}

func build(spec Spec, ds *datasets.Dataset, saved *training.Saved) (*training.Run, *parts, error) {
	if err := spec.Train.Validate(); err != nil {
		return nil, nil, err
	}
	if err := spec.Plan.Validate(); err != nil {
		return nil, nil, err
	}
	engine, err := NewEngine(spec.Train.Engine)
	if err != nil {
		return nil, nil, err
	}
	if ds.Train.Len() == 0 || ds.Test.Len() == 0 {
		return nil, nil, fmt.Errorf("data %q has an empty train or test split", spec.Train.Data)
	}
	var r *training.Run
	if saved == nil {
		m, stats, err := vit.NewRunModel(spec.Train.Config, spec.Train.Seed, spec.Plan.Init, spec.Plan.InitWith, ds)
		if err != nil {
			return nil, nil, err
		}
		if spec.Plan.Init == "" && spec.Train.InitScheme != "" && spec.Train.InitScheme != vit.InitTimm { // New's is timm's
			if err := m.Reinit(spec.Train.InitScheme, spec.Train.Seed); err != nil {
				return nil, nil, err
			}
		}
		spec.Train.Config = m.Config // adapted to the data when fine-tuning
		r = &training.Run{Opts: spec.Train, Model: m, Data: ds,
			Meta: vit.Meta{Dataset: spec.Train.Data, NormMean: stats.Mean, NormStd: stats.Std, ClassNames: ds.Classes,
				ValSplit: spec.Train.DataOptions.ValSplit}}
	} else {
		m, err := vit.New(spec.Train.Config, spec.Train.Seed)
		if err != nil {
			return nil, nil, err
		}
		r = &training.Run{Opts: spec.Train, Model: m, Data: ds, Meta: saved.Meta}
	}
	r.Engine = engine
	p, err := components(spec, r)
	if err != nil {
		return nil, nil, err
	}
	// Frozen and layer-decayed parameters, checked before anything is
	// written (the loop applies them again, the same way).
	if _, err := training.ParamGroups(r.Model, r.Opts); err != nil {
		return nil, nil, err
	}
	if saved != nil {
		if err := saved.Restore(r); err != nil {
			return nil, nil, err
		}
	}
	return r, p, nil
}

// Engines are the engines a run can train with (training.Options.Engine);
// the first is the default.
var Engines = []string{"native", "gorgonia"}

// NewEngine returns the engine named name ("": the native one).
func NewEngine(name string) (training.Engine, error) {
	switch name {
	case "", "native":
		return training.Native{}, nil
	case "gorgonia":
		return gorgoniavit.NewEngine(), nil
	}
	return nil, fmt.Errorf("unknown engine %q (want %s)", name, strings.Join(Engines, " or "))
}

// components is the wiring: which technique joins the run, in which order.
// A new technique adds its component here.
func components(spec Spec, r *training.Run) (*parts, error) {
	plan, m := spec.Plan, r.Model
	p := &parts{}
	if m.Attention == "taylor" && plan.Sparse.Weight > 0 {
		if r.Opts.Recompute {
			return nil, fmt.Errorf("the sparse branch (weight %g) sums statistics as it runs, so its blocks cannot be recomputed: set its weight to 0 or train without recomputation", plan.Sparse.Weight)
		}
		r.Components = append(r.Components, taylorattn.NewSparse(plan.Sparse, m.Depth))
	}
	if d := plan.Distill; d != nil {
		t, tmeta, err := loadTeacher(d, r)
		if err != nil {
			return nil, err
		}
		p.teacherMeta = tmeta
		obj, err := distill.NewObjective(t, d.Alpha, d.Temperature, spec.Train.LabelSmoothing, m.Classes)
		if err != nil {
			return nil, err
		}
		p.teacher = t
		r.Components = append(r.Components, obj)
	}
	if pr := plan.Prune; pr != nil {
		if err := pr.Tokens.Validate(); err != nil {
			return nil, err
		}
		pruner, err := blockprune.New(m, pr.Blocks)
		if err != nil {
			return nil, err
		}
		p.pruner, p.keep = pruner, tokenprune.NewKeepSchedule(pr.Tokens)
		r.Components = append(r.Components, pruner, p.keep)
		// After both schedules: it measures what they set for the step.
		if p.loop = newClosedLoop(pr, m.Config, pruner, p.keep); p.loop != nil {
			r.Components = append(r.Components, p.loop)
		}
		// After the pruner: it rounds the masked weight.
		if pr.Int8WeightsFrom > 0 {
			r.Components = append(r.Components, &weightquant.Trainer{Start: pr.Int8WeightsFrom})
		}
	}
	return p, nil
}

// loadTeacher reads a distillation teacher for the run's model: same input
// size and channels; it sees each batch normalised its own way.
func loadTeacher(d *Distill, r *training.Run) (*distill.Teacher, vit.Meta, error) {
	path := d.Teacher
	t, meta, err := distill.LoadTeacher(path, d.Read)
	if err != nil {
		return nil, vit.Meta{}, err
	}
	tm, m := t.Model(), r.Model
	if tm.Image != m.Image || tm.Channels != m.Channels {
		return nil, vit.Meta{}, fmt.Errorf("teacher %s takes %dx%dx%d images, the student %dx%dx%d", path, tm.Channels, tm.Image, tm.Image, m.Channels, m.Image, m.Image)
	}
	if err := t.SeeInputAs(meta.NormMean, meta.NormStd, r.Meta.NormMean, r.Meta.NormStd); err != nil {
		return nil, vit.Meta{}, fmt.Errorf("teacher %s: %w", path, err)
	}
	if tm.Classes != m.Classes {
		return nil, vit.Meta{}, fmt.Errorf("teacher %s predicts %d classes, the student %d", path, tm.Classes, m.Classes)
	}
	return t, meta, nil
}
