package figures

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// MaskPanel is one block mask to draw: Keep[r][c] reports whether block
// (r, c) is kept. An MLP's neuron mask is a single row.
type MaskPanel struct {
	Title string
	Keep  [][]bool
}

// Figure geometry: panels are laid out three to a row, so the qkv, proj and
// MLP masks of one layer share a row when given in that order.
const (
	heatmapCols        = 3
	heatmapDPI         = 100
	heatmapPanelWidth  = 3.4 * vg.Inch
	heatmapPanelHeight = 2.3 * vg.Inch
	heatmapTitleBand   = 0.5 * vg.Inch
)

var (
	heatmapKept   = color.RGBA{R: 0x1d, G: 0x2b, B: 0x53, A: 0xff} // dark navy
	heatmapPruned = color.RGBA{R: 0xe4, G: 0xe8, B: 0xee, A: 0xff} // light grey
	heatmapFrame  = color.Gray{Y: 0x90}
)

// WriteMaskHeatmaps draws each panel as a heatmap (kept blocks dark, pruned
// blocks light, row 0 at the top) titled with its kept fraction, in a grid
// under the given title, and writes the figure as a PNG to path atomically:
// path is either left as it was or replaced by the complete image. It is an
// error, and nothing is written, if there are no panels or a panel is empty
// or ragged.
func WriteMaskHeatmaps(path, title string, panels []MaskPanel) error {
	if len(panels) == 0 {
		return fmt.Errorf("figures: write %s: no mask panels", path)
	}
	for i, p := range panels {
		if err := heatmapCheck(p); err != nil {
			return fmt.Errorf("figures: write %s: panel %d (%q): %w", path, i, p.Title, err)
		}
	}
	img := heatmapRender(title, panels)
	return writePNG(path, img)
}

// heatmapCheck reports a mask that is not a non-empty rectangle.
func heatmapCheck(p MaskPanel) error {
	if len(p.Keep) == 0 || len(p.Keep[0]) == 0 {
		return errors.New("empty mask")
	}
	for r, row := range p.Keep {
		if len(row) != len(p.Keep[0]) {
			return fmt.Errorf("row %d has %d blocks, row 0 has %d", r, len(row), len(p.Keep[0]))
		}
	}
	return nil
}

// heatmapRender draws the whole figure onto a fresh image canvas.
func heatmapRender(title string, panels []MaskPanel) *vgimg.Canvas {
	cols := min(len(panels), heatmapCols)
	rows := (len(panels) + cols - 1) / cols
	grid := make([][]*plot.Plot, rows)
	for r := range grid {
		grid[r] = make([]*plot.Plot, cols)
	}
	for i, p := range panels {
		grid[i/cols][i%cols] = heatmapPlot(p)
	}

	w := vg.Length(cols) * heatmapPanelWidth
	h := vg.Length(rows)*heatmapPanelHeight + heatmapTitleBand
	img := newCanvas(w, h, heatmapDPI)
	dc := draw.New(img)
	titleStyle := textStyle(sans, 16, draw.XCenter)
	dc.FillText(titleStyle, vg.Point{X: (dc.Min.X + dc.Max.X) / 2, Y: dc.Max.Y - 0.15*vg.Inch}, title)
	body := draw.Crop(dc, 0, 0, 0, -heatmapTitleBand)
	tiles := draw.Tiles{
		Rows: rows, Cols: cols,
		PadTop: 0.05 * vg.Inch, PadBottom: 0.1 * vg.Inch,
		PadLeft: 0.1 * vg.Inch, PadRight: 0.2 * vg.Inch,
		PadX: 0.3 * vg.Inch, PadY: 0.25 * vg.Inch,
	}
	canvases := plot.Align(grid, tiles, body)
	for r, row := range grid {
		for c, p := range row {
			if p != nil {
				p.Draw(canvases[r][c])
			}
		}
	}
	return img
}

// heatmapPlot builds one panel's plot.
func heatmapPlot(m MaskPanel) *plot.Plot {
	rows, cols := len(m.Keep), len(m.Keep[0])
	kept := 0
	for _, row := range m.Keep {
		for _, k := range row {
			if k {
				kept++
			}
		}
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s (%.1f%% kept)", m.Title, 100*float64(kept)/float64(rows*cols))
	p.Title.TextStyle.Font = font.From(sans, 10)
	p.Title.Padding = 0.05 * vg.Inch
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Tick.Label.Font = font.From(sans, 8)
		a.Padding = 0
	}
	// Data y runs upwards, so row r sits at y = rows−1−r to put row 0 on
	// top, and the y tick labels undo the flip.
	p.X.Tick.Marker = heatmapTicks(cols, false)
	p.Y.Tick.Marker = heatmapTicks(rows, true)
	if rows == 1 {
		// A neuron strip has no second dimension worth labelling.
		p.Y.Tick.Marker = plot.ConstantTicks{}
	}
	p.Add(heatmapCells(m.Keep))
	return p
}

// heatmapTicks puts labelled ticks on whole block indices, at a step of 1, 2
// or 5 times a power of ten giving at most about six labels; a block has no
// fractional positions to label. With flip, axis value v shows row rows−1−v,
// so that row 0 can be drawn on top.
func heatmapTicks(rows int, flip bool) plot.Ticker {
	last := rows - 1
	return plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		first, end := int(math.Ceil(lo)), int(math.Floor(hi))
		step := 1
		for mult := 0; (end-first)/step > 5; mult++ {
			step = []int{2, 5, 10}[mult%3] * int(math.Pow10(mult/3))
		}
		var ticks []plot.Tick
		for v := first; v <= end; v++ {
			if v%step != 0 {
				continue
			}
			t := plot.Tick{Value: float64(v), Label: strconv.Itoa(v)}
			if flip {
				t.Value = float64(last - v)
			}
			ticks = append(ticks, t)
		}
		return ticks
	})
}

// heatmapCells draws a mask as a grid of unit cells centred on integer
// coordinates.
type heatmapCells [][]bool

// DataRange implements plot.DataRanger.
func (h heatmapCells) DataRange() (xmin, xmax, ymin, ymax float64) {
	return -0.5, float64(len(h[0])) - 0.5, -0.5, float64(len(h)) - 0.5
}

// Plot implements plot.Plotter. The mask is rasterised at the canvas
// resolution, each pixel coloured by the kept share of the area it covers:
// cells filled as vector rectangles leave anti-aliasing seams between equal
// neighbours, and scaling a one-pixel-per-block image blurs whole blocks.
// Blocks narrower than a pixel (a long neuron strip) blend into a shade that
// still shows the local density.
func (h heatmapCells) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	rows, cols := len(h), len(h[0])
	area := vg.Rectangle{
		Min: vg.Point{X: trX(-0.5), Y: trY(-0.5)},
		Max: vg.Point{X: trX(float64(cols) - 0.5), Y: trY(float64(rows) - 0.5)},
	}
	dpi := float64(heatmapDPI)
	if d, ok := c.Canvas.(interface{ DPI() float64 }); ok {
		dpi = d.DPI()
	}
	size := area.Size()
	w := max(1, int(math.Round(size.X.Dots(dpi))))
	ht := max(1, int(math.Round(size.Y.Dots(dpi))))
	xs := heatmapCoverage(cols, w)  // per pixel column
	ys := heatmapCoverage(rows, ht) // per pixel row, mask row 0 at the top
	img := image.NewRGBA(image.Rect(0, 0, w, ht))
	for py, yw := range ys {
		for px, xw := range xs {
			var kept float64
			for _, a := range yw {
				for _, b := range xw {
					if h[a.cell][b.cell] {
						kept += a.weight * b.weight
					}
				}
			}
			img.SetRGBA(px, py, heatmapShade(kept))
		}
	}
	c.DrawImage(area, img)
	// A frame keeps an all-pruned panel visible against the white page.
	c.SetLineStyle(draw.LineStyle{Color: heatmapFrame, Width: vg.Points(0.5)})
	c.Stroke(area.Path())
}

// heatmapShare is the fraction of a pixel's extent along one axis that falls
// in one cell.
type heatmapShare struct {
	cell   int
	weight float64
}

// heatmapCoverage splits n cells evenly over m pixels and returns, for each
// pixel, the cells it overlaps and by how much; each pixel's weights sum to 1.
func heatmapCoverage(n, m int) [][]heatmapShare {
	out := make([][]heatmapShare, m)
	per := float64(n) / float64(m) // cells per pixel
	for p := range out {
		lo, hi := float64(p)*per, float64(p+1)*per
		for i := int(lo); i < n && float64(i) < hi; i++ {
			if o := math.Min(hi, float64(i+1)) - math.Max(lo, float64(i)); o > 0 {
				out[p] = append(out[p], heatmapShare{cell: i, weight: o / per})
			}
		}
	}
	return out
}

// heatmapShade mixes the pruned and kept colours by the kept share f.
func heatmapShade(f float64) color.RGBA {
	mix := func(a, b uint8) uint8 { return uint8(math.Round(float64(a) + f*(float64(b)-float64(a)))) }
	return color.RGBA{
		R: mix(heatmapPruned.R, heatmapKept.R),
		G: mix(heatmapPruned.G, heatmapKept.G),
		B: mix(heatmapPruned.B, heatmapKept.B),
		A: 0xff,
	}
}
