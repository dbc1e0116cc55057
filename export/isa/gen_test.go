package isa

import (
	"os"
	"testing"
)

// TestGeneratedFilesUpToDate fails when the checked-in C header or Markdown
// reference no longer match the table, e.g. after an edit to table.go
// without regenerating.
func TestGeneratedFilesUpToDate(t *testing.T) {
	for _, f := range []struct{ path, want string }{
		{"vitc_isa.h", CHeader()},
		{"../../docs/isa.md", Markdown()},
	} {
		got, err := os.ReadFile(f.path)
		if err != nil {
			t.Errorf("%v; run `go generate ./export/isa`", err)
			continue
		}
		if string(got) != f.want {
			t.Errorf("%s is out of date with table.go; run `go generate ./export/isa`", f.path)
		}
	}
}
