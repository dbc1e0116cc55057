package training

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"vitc/autograd"
	"vitc/internal/atomicfile"
	"vitc/internal/safetensors"
	"vitc/vit"
)

// Files of a run directory.
const (
	ModelFile   = "model.safetensors"
	StateFile   = "train_state.safetensors" // weights + optimizer + progress, for resuming
	MetricsFile = "metrics.jsonl"
)

const stateKey = "vitc_state"

// savedJSON is the JSON part of a state file.
type savedJSON struct {
	Options Options `json:"options"`
	// Plan is the wiring's own description of the run (which components
	// with which options), kept opaque here and handed back on resume.
	Plan json.RawMessage `json:"plan,omitempty"`
	// State's fields sit at the top level, where tools peek at a run's
	// progress without knowing the rest.
	State
	Meta       vit.Meta                   `json:"meta"`
	AdamStep   int                        `json:"adam_step"`
	Components map[string]json.RawMessage `json:"components,omitempty"`
}

// DirSaver returns a Run.Save that keeps dir resumable: the state file (the
// only thing a resume reads) first, then the metrics and, with writeModel,
// the model, each written atomically so a kill at any moment leaves the
// previous versions intact. plan is saved with the state for the wiring to
// rebuild the same run on resume. A run whose model is only final after a
// last transformation (pruning compacts it) passes writeModel false and
// writes its model itself.
func DirSaver(dir string, r *Run, plan any, writeModel bool) (func(*State) error, error) {
	pj, err := json.Marshal(plan)
	if err != nil {
		return nil, err
	}
	return func(s *State) error {
		if err := writeState(filepath.Join(dir, StateFile), r, s, pj); err != nil {
			return err
		}
		if writeModel {
			meta := r.Meta
			// At an epoch's end the weights are those the test split was
			// just scored with; inside an epoch nobody has scored them.
			if n := len(s.History); n > 0 && s.NextBatch == 0 {
				meta.TestAccuracy = s.History[n-1].TestAcc
			}
			if err := r.Model.Save(filepath.Join(dir, ModelFile), meta); err != nil {
				return err
			}
		}
		return WriteMetrics(filepath.Join(dir, MetricsFile), s.History)
	}, nil
}

// WriteMetrics writes one JSON line per epoch.
func WriteMetrics(path string, history []EpochMetrics) error {
	return atomicfile.WriteFile(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		for _, m := range history {
			if err := enc.Encode(m); err != nil {
				return err
			}
		}
		return nil
	})
}

func writeState(path string, r *Run, s *State, plan json.RawMessage) error {
	sj := savedJSON{Options: r.Opts, Plan: plan, State: *s, Meta: r.Meta, AdamStep: r.opt.Step}
	for _, c := range r.Components {
		sc, ok := c.(Stateful)
		if !ok {
			continue
		}
		b, err := sc.MarshalState()
		if err != nil {
			return fmt.Errorf("saving the state of %s: %w", c.Name(), err)
		}
		if sj.Components == nil {
			sj.Components = map[string]json.RawMessage{}
		}
		sj.Components[c.Name()] = b
	}
	js, err := json.Marshal(sj)
	if err != nil {
		return err
	}
	var ts []safetensors.WriteTensor
	for _, p := range r.Model.Params.List() {
		ts = append(ts, safetensors.WriteTensor{Name: "model/" + p.Name, Shape: p.Shape, Data: p.Data})
		if mom, ok := r.opt.M[p.Name]; ok {
			ts = append(ts,
				safetensors.WriteTensor{Name: "adam_m/" + p.Name, Shape: p.Shape, Data: mom},
				safetensors.WriteTensor{Name: "adam_v/" + p.Name, Shape: p.Shape, Data: r.opt.V[p.Name]})
		}
	}
	return safetensors.WriteFile(path, ts, map[string]string{stateKey: string(js)})
}

// Saved is a run directory's state, read but not yet applied to a run.
type Saved struct {
	Options Options
	Plan    json.RawMessage
	State   State
	Meta    vit.Meta

	path       string
	adamStep   int
	components map[string]json.RawMessage
	file       *safetensors.File
}

// ReadSaved reads dir's state file.
func ReadSaved(dir string) (*Saved, error) {
	path := filepath.Join(dir, StateFile)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("cannot resume: no %s in %s", StateFile, dir)
	}
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, err
	}
	js, ok := f.Metadata[stateKey]
	if !ok {
		return nil, fmt.Errorf("%s is not a vitc training state (no %q metadata)", path, stateKey)
	}
	var sj savedJSON
	if err := json.NewDecoder(bytes.NewReader([]byte(js))).Decode(&sj); err != nil {
		return nil, fmt.Errorf("%s: bad state metadata: %v", path, err)
	}
	return &Saved{Options: sj.Options, Plan: sj.Plan, State: sj.State, Meta: sj.Meta,
		path: path, adamStep: sj.AdamStep, components: sj.Components, file: f}, nil
}

// Restore puts the saved weights (including parameters components
// registered), optimizer moments, component states and progress into r,
// which the wiring has built afresh from the same options and plan.
func (s *Saved) Restore(r *Run) error {
	opt := autograd.NewAdamW(s.Options.WeightDecay)
	opt.Step = s.adamStep
	for _, p := range r.Model.Params.List() {
		if err := readInto(s.file, "model/"+p.Name, p, p.Data); err != nil {
			return fmt.Errorf("%s: %w", s.path, err)
		}
		if _, ok := s.file.Lookup("adam_m/" + p.Name); ok {
			mom, v := make([]float32, p.Len()), make([]float32, p.Len())
			if err := readInto(s.file, "adam_m/"+p.Name, p, mom); err != nil {
				return fmt.Errorf("%s: %w", s.path, err)
			}
			if err := readInto(s.file, "adam_v/"+p.Name, p, v); err != nil {
				return fmt.Errorf("%s: %w", s.path, err)
			}
			opt.M[p.Name], opt.V[p.Name] = mom, v
		}
	}
	for _, c := range r.Components {
		sc, ok := c.(Stateful)
		if !ok {
			continue
		}
		b, ok := s.components[c.Name()]
		if !ok {
			return fmt.Errorf("%s: no saved state for %s", s.path, c.Name())
		}
		if err := sc.UnmarshalState(b); err != nil {
			return fmt.Errorf("%s: state of %s: %w", s.path, c.Name(), err)
		}
	}
	r.Meta = s.Meta
	r.state = s.State
	r.opt = opt
	return nil
}

func readInto(f *safetensors.File, name string, p *autograd.Param, dst []float32) error {
	t, ok := f.Lookup(name)
	if !ok {
		return fmt.Errorf("missing tensor %s", name)
	}
	if err := p.CheckShape(t.Shape); err != nil {
		return fmt.Errorf("%s", strings.Replace(err.Error(), p.Name, name, 1))
	}
	vals, err := t.Float32s()
	if err != nil {
		return fmt.Errorf("tensor %s: %w", name, err)
	}
	copy(dst, vals)
	return nil
}

// RemoveStaleTemps deletes the temporary files that saves of a killed
// process left in dir (atomicfile names them .NAME.tmp-*): nothing reads
// them, but each kill could add one. Only one process works in a run
// directory at a time.
func RemoveStaleTemps(dir string) {
	stale, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
	for _, p := range stale {
		os.Remove(p)
	}
}
