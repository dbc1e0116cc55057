package main

import (
	"reflect"
	"testing"

	"vitc/internal/jsonkeys"
	"vitc/vit/pipeline"
)

// Everything --json prints, and report.json, is snake_case with durations
// in seconds.
func TestJSONOutputsAreSnakeCase(t *testing.T) {
	for _, v := range []any{benchReport{}, benchAttentionReport{}, evalReport{}, exportReport{}, inspectReport{},
		bundleReport{}, simReport{}, prediction{}, pipeline.TrainReport{}, pipeline.PruneReport{}} {
		for _, p := range jsonkeys.Check(reflect.TypeOf(v)) {
			t.Error(p)
		}
	}
}
