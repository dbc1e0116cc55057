package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"vitc/blockprune"
	"vitc/datasets"
	"vitc/internal/safetensors"
	"vitc/tokenprune"
	"vitc/vit/training"
)

// goNames rewrites obj's keys from t's json tags back to its Go field
// names: what encoding/json wrote for t before its fields had tags.
func goNames(t *testing.T, obj map[string]any, typ reflect.Type) {
	t.Helper()
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		key, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		v, ok := obj[key]
		if !ok && strings.Contains(opts, "omit") {
			continue // a field newer than the old format, left out when empty
		}
		if !ok {
			t.Fatalf("%s: no key %q in %v", typ, key, obj)
		}
		delete(obj, key)
		obj[f.Name] = v
	}
}

// toOldFormat turns a state file's JSON into what vitc wrote before its
// JSON was snake_case throughout: the data options and the block and
// token schedules under their Go field names, checkpoint_every in
// nanoseconds.
func toOldFormat(t *testing.T, js string) string {
	t.Helper()
	var st map[string]any
	if err := json.Unmarshal([]byte(js), &st); err != nil {
		t.Fatal(err)
	}
	opts := st["options"].(map[string]any)
	goNames(t, opts["data_options"].(map[string]any), reflect.TypeFor[datasets.Options]())
	secs, ok := opts["checkpoint_every_s"].(float64)
	if !ok {
		t.Fatalf("no checkpoint_every_s in %v", opts)
	}
	delete(opts, "checkpoint_every_s")
	opts["checkpoint_every"] = int64(secs * 1e9)
	pr := st["plan"].(map[string]any)["prune"].(map[string]any)
	goNames(t, pr["blocks"].(map[string]any), reflect.TypeFor[blockprune.Options]())
	goNames(t, pr["tokens"].(map[string]any), reflect.TypeFor[tokenprune.Schedule]())
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A pruning run's state saved in the format before the JSON keys were
// snake_case resumes with the options it was saved with and ends as the
// uninterrupted run does.
func TestResumesAStateSavedWithGoFieldNames(t *testing.T) {
	tmp := t.TempDir()
	spec, ds := tinyPruneSpec(t, tmp, 1)
	spec.Train.DataOptions = datasets.Options{ValSplit: 0.25, SkipBadImages: true, Flip: "auto"}
	spec.Train.CheckpointEvery = 90 * time.Second
	full, err := New(spec, ds)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := full.Train(context.Background(), filepath.Join(tmp, "full"), nil); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(tmp, "stop")
	j, err := New(spec, ds)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := j.Train(ctx, dir, &cancelAfter{n: 7, cancel: cancel}); !errors.Is(err, training.ErrInterrupted) {
		t.Fatalf("got %v, want ErrInterrupted", err)
	}
	path := filepath.Join(dir, training.StateFile)
	f, err := safetensors.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	old := toOldFormat(t, f.Metadata["vitc_state"])
	for _, want := range []string{`"ValSplit":0.25`, `"checkpoint_every":90000000000`, `"Density":`, `"Target":`} {
		if !strings.Contains(old, want) {
			t.Fatalf("the old-format state lacks %s: %s", want, old)
		}
	}
	f.Metadata["vitc_state"] = old
	var ts []safetensors.WriteTensor
	for _, tn := range f.Tensors {
		data, err := tn.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		ts = append(ts, safetensors.WriteTensor{Name: tn.Name, Shape: tn.Shape, Data: data})
	}
	if err := safetensors.WriteFile(path, ts, f.Metadata); err != nil {
		t.Fatal(err)
	}

	saved, err := training.ReadSaved(dir)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := SavedSpec(saved)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rs.Train.DataOptions, spec.Train.DataOptions) || rs.Train.CheckpointEvery != spec.Train.CheckpointEvery {
		t.Errorf("read data options %+v every %v, saved %+v every %v", rs.Train.DataOptions, rs.Train.CheckpointEvery, spec.Train.DataOptions, spec.Train.CheckpointEvery)
	}
	if rs.Plan.Prune == nil || rs.Plan.Prune.Blocks != spec.Plan.Prune.Blocks || rs.Plan.Prune.Tokens != spec.Plan.Prune.Tokens {
		t.Fatalf("read plan %+v, saved %+v", rs.Plan.Prune, spec.Plan.Prune)
	}
	r, p, err := build(rs, ds, saved)
	if err != nil {
		t.Fatal(err)
	}
	resumed := &Job{Spec: rs, Run: r, Resumed: true, parts: p}
	if _, err := resumed.Train(context.Background(), dir, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(modelBytes(t, r.Model), modelBytes(t, full.Run.Model)) {
		t.Error("the run resumed from the old-format state differs from the uninterrupted one")
	}
}
