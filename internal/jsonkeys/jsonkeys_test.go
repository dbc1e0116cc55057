package jsonkeys

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

type inner struct {
	ImageSize int     `json:"image_size"`
	ValSplit  float64 `json:"val_split"`
}

type outer struct {
	Name   string           `json:"name"`
	In     inner            `json:"data_options"`
	Ptr    *inner           `json:"ptr,omitempty"`
	List   []inner          `json:"list"`
	ByName map[string]inner `json:"by_name"`
}

func TestUnmarshalLegacyReadsGoNamesAtEveryDepth(t *testing.T) {
	old := `{"Name":"a","In":{"ImageSize":32,"ValSplit":0.25},"Ptr":{"ImageSize":1},"List":[{"ValSplit":0.5}],"ByName":{"x":{"ImageSize":7}}}`
	want := outer{Name: "a", In: inner{32, 0.25}, Ptr: &inner{ImageSize: 1}, List: []inner{{ValSplit: 0.5}}, ByName: map[string]inner{"x": {ImageSize: 7}}}
	var got outer
	if err := UnmarshalLegacy([]byte(old), &got); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("old keys: %+v (%v), want %+v", got, err, want)
	}
	// The tagged key wins over a stale Go-named one.
	got = outer{}
	if err := UnmarshalLegacy([]byte(`{"data_options":{"image_size":3,"ImageSize":9}}`), &got); err != nil || got.In.ImageSize != 3 {
		t.Fatalf("both keys: %+v (%v)", got, err)
	}
	if err := UnmarshalLegacy([]byte(`{"data_options":[1]}`), &got); err == nil {
		t.Fatal("a wrong shape decoded")
	}
}

func TestCheckFindsGoNamesAndDurations(t *testing.T) {
	type bad struct {
		Good  int           `json:"good_key"`
		Every time.Duration `json:"every"`
		Camel int           `json:"camelCase"`
		In    struct{ Size int }
		When  time.Time `json:"when"`
	}
	got := strings.Join(Check(reflect.TypeFor[bad]()), "\n")
	for _, want := range []string{"Every", "nanoseconds", `"camelCase"`, "In (", "Size", "no json tag"} {
		if !strings.Contains(got, want) {
			t.Errorf("Check missed %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Good") || strings.Contains(got, "When") {
		t.Errorf("Check flagged a good field:\n%s", got)
	}
}
