package training

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"vitc/datasets"
	"vitc/internal/jsonkeys"
)

// The state file's JSON and metrics.jsonl are snake_case, with durations
// in seconds.
func TestSavedStateIsSnakeCase(t *testing.T) {
	for _, v := range []any{savedJSON{}, EpochMetrics{}} {
		for _, p := range jsonkeys.Check(reflect.TypeOf(v)) {
			t.Error(p)
		}
	}
}

// Options write checkpoint_every_s in seconds and read it back exactly,
// and still read the nanoseconds and Go-named data options of states
// saved before.
func TestOptionsJSON(t *testing.T) {
	o := Options{Data: "synthetic", Epochs: 3, CheckpointEvery: 1500 * time.Millisecond,
		DataOptions: datasets.Options{ImageSize: 32, ValSplit: 0.2, SkipBadImages: true, Flip: "off"}}
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"checkpoint_every_s":1.5`, `"image_size":32`, `"skip_bad_images":true`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	var back Options
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, o) {
		t.Fatalf("round trip: %+v (%v), want %+v", back, err, o)
	}
	old := `{"data":"synthetic","epochs":3,"checkpoint_every":1500000000,"data_options":{"ImageSize":32,"ValSplit":0.2,"SkipBadImages":true,"Channels":0,"Flip":"off"}}`
	back = Options{}
	if err := json.Unmarshal([]byte(old), &back); err != nil || !reflect.DeepEqual(back, o) {
		t.Fatalf("old format: %+v (%v), want %+v", back, err, o)
	}
}
