package figures

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteMaskHeatmapsDecodes(t *testing.T) {
	qkv := make([][]bool, 6)
	for r := range qkv {
		qkv[r] = make([]bool, 4)
		for c := range qkv[r] {
			qkv[r][c] = (r+c)%3 != 0
		}
	}
	strip := [][]bool{make([]bool, 100)}
	for c := range strip[0] {
		strip[0][c] = c%4 == 0
	}
	panels := []MaskPanel{
		{Title: "block 0 qkv", Keep: qkv},
		{Title: "block 0 proj", Keep: [][]bool{{true, false}, {false, false}}},
		{Title: "block 0 mlp", Keep: strip},
		{Title: "block 1 qkv", Keep: [][]bool{{false}}}, // all pruned, one block
	}
	path := filepath.Join(t.TempDir(), "masks.png")
	if err := WriteMaskHeatmaps(path, "masks", panels); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	// Three panels to a row, two rows.
	if b.Dx() != 3*340 || b.Dy() != 2*230+50 {
		t.Errorf("size %dx%d, want %dx%d", b.Dx(), b.Dy(), 3*340, 2*230+50)
	}
	// Both mask colours must appear: the panels were drawn, not just the
	// page.
	var dark, light bool
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			switch [3]uint32{r >> 8, g >> 8, bl >> 8} {
			case [3]uint32{uint32(heatmapKept.R), uint32(heatmapKept.G), uint32(heatmapKept.B)}:
				dark = true
			case [3]uint32{uint32(heatmapPruned.R), uint32(heatmapPruned.G), uint32(heatmapPruned.B)}:
				light = true
			}
		}
	}
	if !dark || !light {
		t.Errorf("kept colour drawn: %v, pruned colour drawn: %v", dark, light)
	}
}

func TestWriteMaskHeatmapsRejects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "masks.png")
	for name, panels := range map[string][]MaskPanel{
		"no panels":   nil,
		"no rows":     {{Title: "a", Keep: nil}},
		"no columns":  {{Title: "a", Keep: [][]bool{{}}}},
		"ragged rows": {{Title: "a", Keep: [][]bool{{true}}}, {Title: "b", Keep: [][]bool{{true, false}, {true}}}},
	} {
		if err := WriteMaskHeatmaps(path, "masks", panels); err == nil {
			t.Errorf("%s: no error", name)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("%s: file written despite the error (stat: %v)", name, err)
		}
		entries, err := os.ReadDir(filepath.Dir(path))
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 0 {
			t.Fatalf("%s: left %d files behind", name, len(entries))
		}
	}
}
