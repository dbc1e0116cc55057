package pipeline

import (
	"reflect"
	"testing"

	"vitc/internal/jsonkeys"
)

// report.json and the plan saved with a run's state are snake_case, with
// durations in seconds.
func TestReportsAndPlanAreSnakeCase(t *testing.T) {
	for _, v := range []any{TrainReport{}, PruneReport{}, Plan{}, loopState{}} {
		for _, p := range jsonkeys.Check(reflect.TypeOf(v)) {
			t.Error(p)
		}
	}
}
