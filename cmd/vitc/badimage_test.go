package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A file of a folder data set that does not decode stops train and eval
// with one line that names the file and the way past it, the flag (not
// the library's option); with the flag the file is left out and counted.
func TestCorruptImageNamesSkipBadImages(t *testing.T) {
	dir := t.TempDir()
	photos := filepath.Join(dir, "photos")
	photoFolder(t, photos, 2, 6)
	bad := filepath.Join(photos, "a", "9.png")
	if err := os.WriteFile(bad, []byte("\x89PNG\r\n\x1a\n truncated"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := []string{"--data", "folder:" + photos, "--val-split", "0.34", "--image-size", "28"}
	out := filepath.Join(dir, "run")
	train := append([]string{"train", "--out", out, "--epochs", "1", "--dim", "16", "--depth", "1", "--heads", "2", "--patch", "7", "--batch", "4"}, data...)
	refused := func(what string, code int, errOut string) {
		t.Helper()
		if code != 2 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, bad) ||
			!strings.Contains(errOut, "--skip-bad-images") || strings.Contains(errOut, "Options.") {
			t.Errorf("%s: exit %d, stderr %q", what, code, errOut)
		}
	}
	code, _, errOut := vitcRun(t, train...)
	refused("train", code, errOut)

	code, _, errOut = vitcRun(t, append(train, "--skip-bad-images")...)
	if code != 0 || !strings.Contains(errOut, "skipped 1 image file") {
		t.Fatalf("train --skip-bad-images: exit %d, stderr %q", code, errOut)
	}
	eval := []string{"eval", "--checkpoint", filepath.Join(out, "model.safetensors"), "--data", "folder:" + photos, "--val-split", "0.34"}
	code, _, errOut = vitcRun(t, eval...)
	refused("eval", code, errOut)
	if code, _, errOut = vitcRun(t, append(eval, "--skip-bad-images")...); code != 0 {
		t.Errorf("eval --skip-bad-images: exit %d, stderr %q", code, errOut)
	}
}
