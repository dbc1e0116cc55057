// Package archtest keeps docs/architecture.md true: every package sits on
// one floor of its diagram and imports only packages on lower floors, and
// the model builds without a plotting library.
package archtest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// floors reads the ```floors block of docs/architecture.md: "N  pkg pkg …",
// package paths relative to the module.
func floors(t *testing.T) map[string]int {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]int{}
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "```floors":
			in = true
		case in && line == "```":
			return out
		case in && line != "":
			fields := strings.Fields(line)
			n, err := strconv.Atoi(fields[0])
			if err != nil {
				t.Fatalf("floors block: %q does not start with a floor number", line)
			}
			for _, p := range fields[1:] {
				out["vitc/"+p] = n
			}
		}
	}
	t.Fatal("docs/architecture.md has no ```floors block")
	return nil
}

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Fields(string(out))
}

func TestImportsPointDown(t *testing.T) {
	fl := floors(t)
	for _, line := range strings.Split(strings.Join(goList(t, "-f", `{{.ImportPath}}:{{join .Imports ","}}`, "./..."), "\n"), "\n") {
		pkg, imports, _ := strings.Cut(line, ":")
		if pkg == "vitc/internal/archtest" {
			continue
		}
		floor, ok := fl[pkg]
		if !ok {
			t.Errorf("%s is on no floor of docs/architecture.md", pkg)
			continue
		}
		for _, imp := range strings.Split(imports, ",") {
			if !strings.HasPrefix(imp, "vitc/") {
				continue
			}
			if f, ok := fl[imp]; ok && f >= floor {
				t.Errorf("%s (floor %d) imports %s (floor %d): imports must point down", pkg, floor, imp, f)
			}
		}
	}
}

func TestModelBuildsWithoutPlotting(t *testing.T) {
	for _, dep := range goList(t, "-deps", "./vit") {
		if strings.Contains(dep, "plot") {
			t.Errorf("vitc/vit depends on %s: plotting belongs in internal/figures", dep)
		}
	}
}
