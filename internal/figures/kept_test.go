package figures

import (
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestWriteKeptTokens(t *testing.T) {
	// 8×8 images in 4×4 patches: a 2×2 grid, upscaled 16× to 128 px.
	rgb := make([]float32, 3*8*8)
	for i := range rgb {
		rgb[i] = 1
	}
	rgb[0] = -1 // so the rest display as white
	grey := make([]float32, 8*8)
	for i := range grey {
		grey[i] = float32(i)
	}
	images := []KeptImage{
		{Pixels: rgb, Channels: 3, Size: 8, Patch: 4, Kept: [][]int{{1, 4}}, Label: "rgb"},
		{Pixels: grey, Channels: 1, Size: 8, Patch: 4, Kept: [][]int{{1, 2, 3}, {2}}, Label: "grey"},
	}
	path := filepath.Join(t.TempDir(), "kept.png")
	if err := WriteKeptTokens(path, images); err != nil {
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
	const cell = 128
	// The rows sit under a legend of a few lines.
	wantW, rows := keptPad+3*(cell+keptPad), keptPad+2*(keptCaption+cell+keptPad)
	b := img.Bounds()
	legend := b.Dy() - rows
	if b.Dx() != wantW || legend < 2*keptLine || legend > 5*keptLine+keptPad {
		t.Fatalf("size %dx%d, want %d wide and %d high plus a legend", b.Dx(), b.Dy(), wantW, rows)
	}
	// at returns the pixel at (x, y) of the given cell.
	at := func(row, col, x, y int) [3]uint32 {
		r, g, b, _ := img.At(keptPad+col*(cell+keptPad)+x, legend+keptPad+row*(keptCaption+cell+keptPad)+keptCaption+y).RGBA()
		return [3]uint32{r, g, b}
	}
	// The legend's sample of a dropped patch is drawn as dropped patches
	// are: hatched and darkened.
	hatch, dark := 0, 0
	for y := 0; y < keptSwatch; y++ {
		for x := 0; x < keptSwatch; x++ {
			switch r, _, _, _ := img.At(keptPad+x, keptPad+1+y).RGBA(); r >> 8 {
			case uint32(keptHatch.R):
				hatch++
			case 0x90 / 4:
				dark++
			}
		}
	}
	if hatch == 0 || dark == 0 || hatch+dark != keptSwatch*keptSwatch {
		t.Errorf("legend sample: %d hatched and %d darkened pixels of %d", hatch, dark, keptSwatch*keptSwatch)
	}
	// Row 0 keeps patches 0 and 3: patch 1 (top right) is pruned.
	if o, p := at(0, 0, 100, 20), at(0, 1, 100, 20); o == p {
		t.Errorf("pruned patch pixel %v equals the original", p)
	}
	if o, p := at(0, 0, 20, 20), at(0, 1, 20, 20); o != p {
		t.Errorf("kept patch pixel %v differs from the original %v", p, o)
	}
	if o := at(0, 0, 100, 20); o[0] != 0xffff {
		t.Errorf("original pixel %v, want white", o)
	}
	// Row 1, stage 2 keeps token 2 of stage 1's output, which is patch 1.
	if o, p := at(1, 0, 100, 20), at(1, 2, 100, 20); o != p {
		t.Errorf("stage 2 kept patch pixel %v differs from the original %v", p, o)
	}
	if o, p := at(1, 0, 20, 20), at(1, 2, 20, 20); o == p {
		t.Errorf("stage 2 pruned patch pixel %v equals the original", p)
	}
}

// Tokens counts what the report counts: cls, the kept tokens and the fused
// token, and no fused token where a stage drops nothing.
func TestKeptTokensCountsTokensNotPatches(t *testing.T) {
	// 4×4 patches (17 tokens): 8 kept, then 3 of those 10, then all 4 of 5.
	im := KeptImage{Size: 16, Patch: 4, Kept: [][]int{{1, 2, 3, 4, 5, 6, 7, 8}, {1, 5, 9}, {1, 2, 3, 4}}}
	if got, want := im.Tokens(), []int{10, 5, 5}; !slices.Equal(got, want) {
		t.Fatalf("tokens %v, want %v", got, want)
	}
}

func TestWriteKeptTokensRejects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kept.png")
	for _, images := range [][]KeptImage{
		nil,
		{{Pixels: make([]float32, 2*8*8), Channels: 2, Size: 8, Patch: 4}},
		{{Pixels: make([]float32, 8*8), Channels: 1, Size: 8, Patch: 3}},
		{{Pixels: make([]float32, 8*7), Channels: 1, Size: 8, Patch: 4}},
		{{Pixels: make([]float32, 8*8), Channels: 1, Size: 8, Patch: 4, Kept: [][]int{{5}}}},
	} {
		if err := WriteKeptTokens(path, images); err == nil {
			t.Errorf("%d images: no error", len(images))
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("file written despite the error (stat: %v)", err)
		}
	}
}
