package figures

import (
	"errors"
	"fmt"
	"image/color"
	imagedraw "image/draw"
	"math"
	"strings"

	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"vitc/tokenprune"
)

// KeptImage is one image and the tokens it kept at each pruning stage, for
// WriteKeptTokens.
type KeptImage struct {
	// Pixels is the image (C, H, W) with H = W = Size, in any value range
	// (e.g. normalised model input); it is stretched min..max for display.
	Pixels   []float32
	Channels int // 1 (grey) or 3 (RGB)
	Size     int
	Patch    int
	// Kept[l] is what tokenprune.KeepFuse returned for this image at pruning stage l:
	// token indices into that stage's input.
	Kept  [][]int
	Label string
	// Blocks, when set, names the block after whose attention each stage
	// prunes, for the captions.
	Blocks []int
}

// Tokens is how many tokens the image has after each pruning stage: what
// the stage's block's MLP, and the blocks up to the next stage, see. It
// counts the cls token, the kept tokens and the fused token (none when a
// stage drops nothing), as the pruning report's mean_kept_tokens does;
// a kept token may be an earlier stage's fused token rather than a patch.
func (im KeptImage) Tokens() []int {
	g := im.Size / max(im.Patch, 1)
	n := g*g + 1
	out := make([]int, len(im.Kept))
	for s, kept := range im.Kept {
		if len(kept) < n-1 {
			n = len(kept) + 2
		}
		out[s] = n
	}
	return out
}

// Layout of the kept-token figure, in pixels (the canvas runs at 72 dpi, where
// one point is one pixel).
const (
	keptMinCell = 128 // images are upscaled by whole factors to at least this
	keptPad     = 8
	keptCaption = 16
	keptDPI     = 72
	keptLine    = 14 // a line of the legend
	keptSwatch  = 12 // the legend's sample of a dropped patch
)

// keptLegend says how the figure draws dropped patches and what its
// captions count; the first entry sits by a sample of a dropped patch.
var keptLegend = []string{
	"dropped patches: darkened and hatched (fused into one token)",
	"N tokens: what the block's MLP sees, cls + kept tokens + the fused token (mean_kept_tokens in report.json)",
}

var (
	keptHatch = color.RGBA{R: 0xb0, G: 0xb0, B: 0xb0, A: 0xff}
)

// WriteKeptTokens writes a figure with one row per image: the original image,
// then one column per pruning stage in which the patches pruned by then are
// darkened and hatched, captioned with the tokens left (Tokens), under a
// legend that says so. Images smaller than 128 px are upscaled by whole
// factors with nearest-neighbour sampling so patch edges stay sharp. The file
// at path is replaced atomically and left alone on error.
func WriteKeptTokens(path string, images []KeptImage) error {
	if len(images) == 0 {
		return fmt.Errorf("figures: write %s: no images", path)
	}
	alive := make([][][]int, len(images))
	cell, stages := 0, 0
	for i, im := range images {
		a, err := im.check()
		if err != nil {
			return fmt.Errorf("figures: write %s: image %d: %w", path, i, err)
		}
		alive[i] = a
		cell = max(cell, im.Size*keptScale(im.Size))
		stages = max(stages, len(im.Kept))
	}
	cols := 1 + stages
	w := keptPad + cols*(cell+keptPad)
	rowH := keptCaption + cell + keptPad
	style := textStyle(sans, 10, draw.XLeft)
	legend := keptLegendLines(style, vg.Length(w-2*keptPad-keptSwatch-keptPad))
	legendH := len(legend)*keptLine + keptPad
	h := keptPad + legendH + len(images)*rowH

	c := newCanvas(vg.Length(w), vg.Length(h), keptDPI)
	dc := draw.New(c)
	img := c.Image()
	drawKeptLegend(img, dc, style, legend, h)
	for r, im := range images {
		top := keptPad + legendH + r*rowH
		n0 := (im.Size / im.Patch) * (im.Size / im.Patch)
		rgb := im.display()
		tokens := im.Tokens()
		for col := 0; col <= len(im.Kept); col++ {
			x0 := keptPad + col*(cell+keptPad)
			caption := im.Label
			var pruned []bool
			if col > 0 {
				pruned = keptPrunedMask(n0, alive[r][col-1])
				caption = fmt.Sprintf("stage %d: %d tokens", col, tokens[col-1])
				if col-1 < len(im.Blocks) {
					caption = fmt.Sprintf("block %d: %d tokens", im.Blocks[col-1], tokens[col-1])
				}
			}
			// vg coordinates run upwards from the bottom edge.
			dc.FillText(style, vg.Point{X: vg.Length(x0), Y: vg.Length(h - top)}, caption)
			im.paint(img, x0, top+keptCaption, rgb, pruned)
		}
	}
	return writePNG(path, c)
}

// keptLegendLines wraps the legend's entries to width; each entry starts
// a line.
func keptLegendLines(style text.Style, width vg.Length) []string {
	var out []string
	for _, entry := range keptLegend {
		line := ""
		for _, word := range strings.Fields(entry) {
			switch {
			case line == "":
				line = word
			case style.Width(line+" "+word) <= width:
				line += " " + word
			default:
				out = append(out, line)
				line = word
			}
		}
		out = append(out, line)
	}
	return out
}

// drawKeptLegend draws the legend at the top of a figure h pixels high:
// a sample of a dropped patch, then the lines.
func drawKeptLegend(img imagedraw.Image, dc draw.Canvas, style text.Style, lines []string, h int) {
	sample := color.RGBA{R: 0x90, G: 0x90, B: 0x90, A: 0xff}
	for y := 0; y < keptSwatch; y++ {
		for x := 0; x < keptSwatch; x++ {
			img.Set(keptPad+x, keptPad+1+y, keptDropped(sample, x, y))
		}
	}
	x := vg.Length(keptPad + keptSwatch + keptPad)
	for i, l := range lines {
		dc.FillText(style, vg.Point{X: x, Y: vg.Length(h - keptPad - i*keptLine)}, l)
	}
}

// check validates the image and returns its alive patches per stage.
func (im KeptImage) check() ([][]int, error) {
	switch {
	case im.Channels != 1 && im.Channels != 3:
		return nil, fmt.Errorf("%d channels (want 1 or 3)", im.Channels)
	case im.Size <= 0 || im.Patch <= 0 || im.Size%im.Patch != 0:
		return nil, fmt.Errorf("patch size %d does not divide image size %d", im.Patch, im.Size)
	case len(im.Pixels) != im.Channels*im.Size*im.Size:
		return nil, fmt.Errorf("%d pixel values for a %dx%dx%d image", len(im.Pixels), im.Channels, im.Size, im.Size)
	}
	for _, v := range im.Pixels {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, errors.New("non-finite pixel value")
		}
	}
	g := im.Size / im.Patch
	return tokenprune.AlivePatches(g*g, im.Kept)
}

// keptScale is the whole upscaling factor that brings size to keptMinCell.
func keptScale(size int) int {
	return max(1, (keptMinCell+size-1)/size)
}

// display stretches the pixel values min..max to 0..255, interleaved as RGB
// (grey images repeat their one channel): (H, W, 3).
func (im KeptImage) display() []uint8 {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range im.Pixels {
		lo, hi = math.Min(lo, float64(v)), math.Max(hi, float64(v))
	}
	plane := im.Size * im.Size
	out := make([]uint8, 3*plane) // (H, W, 3)
	for p := 0; p < plane; p++ {
		for ch := 0; ch < 3; ch++ {
			v := float64(im.Pixels[min(ch, im.Channels-1)*plane+p])
			g := 128.0 // a constant image has no range to stretch
			if hi > lo {
				g = math.Round(255 * (v - lo) / (hi - lo))
			}
			out[3*p+ch] = uint8(g)
		}
	}
	return out
}

// keptPrunedMask marks the patches that are not alive.
func keptPrunedMask(n0 int, alive []int) []bool {
	pruned := make([]bool, n0)
	for i := range pruned {
		pruned[i] = true
	}
	for _, p := range alive {
		pruned[p] = false
	}
	return pruned
}

// paint draws the image with its top-left corner at (x0, y0), darkening and
// hatching the patches marked in pruned (nil: none).
func (im KeptImage) paint(dst imagedraw.Image, x0, y0 int, rgb []uint8, pruned []bool) {
	s := keptScale(im.Size)
	g := im.Size / im.Patch
	for y := 0; y < im.Size*s; y++ {
		for x := 0; x < im.Size*s; x++ {
			sy, sx := y/s, x/s
			p := 3 * (sy*im.Size + sx)
			c := color.RGBA{R: rgb[p], G: rgb[p+1], B: rgb[p+2], A: 0xff}
			if pruned != nil && pruned[(sy/im.Patch)*g+sx/im.Patch] {
				c = keptDropped(c, x, y)
			}
			dst.Set(x0+x, y0+y, c)
		}
	}
}

// keptDropped is how pixel (x, y) of a dropped patch, c in the image, is
// drawn: darkened, with diagonal hatching.
func keptDropped(c color.RGBA, x, y int) color.RGBA {
	if (x+y)%6 == 0 {
		return keptHatch
	}
	c.R, c.G, c.B = c.R/4, c.G/4, c.B/4
	return c
}
