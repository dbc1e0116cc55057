package vit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"vitc/autograd"
	"vitc/vit/atomicfile"
	"vitc/vit/safetensors"
)

// Files of a run directory.
const (
	ModelFile   = "model.safetensors"
	StateFile   = "train_state.safetensors" // weights + optimizer + progress, for --resume
	MetricsFile = "metrics.jsonl"
)

const stateKey = "vitc_state"

// stateMeta is the JSON part of a state file.
type stateMeta struct {
	State
	Meta     Meta `json:"meta"`
	AdamStep int  `json:"adam_step"`
}

// DirSaver returns a Run.Save that keeps dir resumable: the state file (the
// only thing --resume reads) first, then the model and metrics, each written
// atomically so a kill at any moment leaves the previous versions intact.
func DirSaver(dir string) func(*State) error {
	return func(s *State) error {
		r := s.Run
		if err := writeState(filepath.Join(dir, StateFile), s, r.Model, r.Meta, s.Optimizer); err != nil {
			return err
		}
		if err := r.Model.Save(filepath.Join(dir, ModelFile), r.Meta); err != nil {
			return err
		}
		return WriteMetrics(filepath.Join(dir, MetricsFile), s.History)
	}
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

func writeState(path string, s *State, m *Model, meta Meta, opt *autograd.AdamW) error {
	js, err := json.Marshal(stateMeta{State: *s, Meta: meta, AdamStep: opt.Step})
	if err != nil {
		return err
	}
	var ts []safetensors.WriteTensor
	for _, p := range m.Params.List() {
		ts = append(ts, safetensors.WriteTensor{Name: "model/" + p.Name, Shape: p.Shape, Data: p.Data})
		if mom, ok := opt.M[p.Name]; ok {
			ts = append(ts,
				safetensors.WriteTensor{Name: "adam_m/" + p.Name, Shape: p.Shape, Data: mom},
				safetensors.WriteTensor{Name: "adam_v/" + p.Name, Shape: p.Shape, Data: opt.V[p.Name]})
		}
	}
	return safetensors.WriteFile(path, ts, map[string]string{stateKey: string(js)})
}

// ResumePoint is a run directory's saved state, ready to continue.
type ResumePoint struct {
	State     *State
	Model     *Model
	Meta      Meta
	Optimizer *autograd.AdamW
}

// LoadResumePoint reads dir's state file.
func LoadResumePoint(dir string) (*ResumePoint, error) {
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
	var sm stateMeta
	dec := json.NewDecoder(bytes.NewReader([]byte(js)))
	if err := dec.Decode(&sm); err != nil {
		return nil, fmt.Errorf("%s: bad state metadata: %v", path, err)
	}
	m, err := New(sm.Opts.Config, sm.Opts.Seed)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	opt := autograd.NewAdamW(sm.Opts.WeightDecay)
	opt.Step = sm.AdamStep
	for _, p := range m.Params.List() {
		if err := readInto(f, "model/"+p.Name, p, p.Data); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if _, ok := f.Lookup("adam_m/" + p.Name); ok {
			mom, v := make([]float32, p.Len()), make([]float32, p.Len())
			if err := readInto(f, "adam_m/"+p.Name, p, mom); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			if err := readInto(f, "adam_v/"+p.Name, p, v); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			opt.M[p.Name], opt.V[p.Name] = mom, v
		}
	}
	st := sm.State
	return &ResumePoint{State: &st, Model: m, Meta: sm.Meta, Optimizer: opt}, nil
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
