package figures

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteStages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stages.png")
	bars := []StageBar{{"source", 0.9333, 3.57e6, 1594}, {"taylor", 0.9417, 3.56e6, 1764}, {"prune", 0.9611, 1.05e6, 1034},
		{"export", math.NaN(), 1.05e6, 0}, {"sim", 0.9611, 1.05e6, 1034}}
	if err := WriteStages(path, "digits: 3.41× fewer FLOPs", bars); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	im, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// Each panel's bars are drawn in its colour.
	for i, c := range stageColors {
		r, g, b, _ := c.RGBA()
		if countColored(im, uint8(r>>8), uint8(g>>8), uint8(b>>8)) < 1000 {
			t.Errorf("panel %d: its bars are not drawn", i)
		}
	}
	if err := WriteStages(path, "x", nil); err == nil {
		t.Errorf("no stages accepted")
	}
}
