package datasets

import (
	"slices"
	"strings"
	"testing"
)

func TestLoadSpec(t *testing.T) {
	want4 := Synthetic(4).Train.X
	for _, spec := range []string{"", "synthetic"} {
		d, err := Load(spec, 4)
		if err != nil {
			t.Fatalf("Load(%q): %v", spec, err)
		}
		if d.Name != "synthetic" || !slices.Equal(d.Train.X, want4) {
			t.Fatalf("Load(%q) is not the synthetic set for the seed", spec)
		}
	}
	_, err := Load("imagenet:/data", 0)
	const want = `unknown data kind "imagenet" (want synthetic, digits:FILE, mnist:DIR, cifar10:DIR or folder:DIR)`
	if err == nil || err.Error() != want {
		t.Fatalf("unknown kind: got %v, want %s", err, want)
	}
	for _, spec := range []string{"digits", "mnist:", "cifar10", "folder:", "synthetic:x"} {
		if _, err := Load(spec, 0); err == nil {
			t.Errorf("Load(%q) succeeded", spec)
		}
	}
	if _, err := Load("mnist:/nonexistent/vitc", 0); err == nil || !strings.Contains(err.Error(), "/nonexistent/vitc") {
		t.Errorf("missing directory: %v", err)
	}
}
