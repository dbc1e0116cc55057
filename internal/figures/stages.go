package figures

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// StageBar is one stage of a compression run: its model's accuracy (a
// fraction; NaN: none), FLOPs and cycles per image (0: none).
type StageBar struct {
	Name          string
	Accuracy      float64
	FLOPs, Cycles float64
}

var stageColors = [3]color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
}

// WriteStages draws three panels side by side, accuracy in percent, FLOPs
// per image and cycles per image for each stage, each bar labelled with its
// value, under title, and writes them as a PNG to path atomically.
func WriteStages(path, title string, stages []StageBar) error {
	if len(stages) == 0 {
		return fmt.Errorf("figures: write %s: no stages", path)
	}
	names := make([]string, len(stages))
	acc, flops, cycles := make(plotter.Values, len(stages)), make(plotter.Values, len(stages)), make(plotter.Values, len(stages))
	for i, s := range stages {
		names[i] = s.Name
		acc[i], flops[i], cycles[i] = 100*s.Accuracy, s.FLOPs/1e6, s.Cycles/1e3
	}
	panels := []struct {
		title, ylabel, format string
		v                     plotter.Values
	}{
		{"test accuracy", "%", "%.2f", acc},
		{"FLOPs per image", "MFLOPs", "%.3g", flops},
		{"cycles per image", "thousand cycles", "%.4g", cycles},
	}
	w, h := 13*vg.Inch, 5*vg.Inch
	c := newCanvas(w, h, dpi)
	dc := draw.New(c)
	const titleBand = 0.45 * vg.Inch
	dc.FillText(textStyle(sansBold, 14, draw.XCenter), vg.Point{X: w / 2, Y: h - 0.12*vg.Inch}, title)
	body := draw.Crop(dc, 0, 0, 0, -titleBand)
	tiles := draw.Tiles{Rows: 1, Cols: 3, PadX: vg.Inch / 4, PadLeft: vg.Inch / 8, PadRight: vg.Inch / 8, PadBottom: vg.Inch / 8}
	for i, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.title
		p.Title.TextStyle.Font = font.From(sansBold, 12)
		p.Y.Label.Text = pn.ylabel
		vals := make(plotter.Values, len(pn.v))
		lo, hi := math.Inf(1), 0.0
		for j, v := range pn.v {
			if math.IsNaN(v) || v == 0 {
				v = 0
			} else {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
			vals[j] = v
		}
		bars, err := plotter.NewBarChart(vals, vg.Points(28))
		if err != nil {
			return fmt.Errorf("figures: write %s: %w", path, err)
		}
		bars.Color = stageColors[i]
		bars.LineStyle.Width = 0
		p.Add(bars, plotter.NewGrid())
		p.NominalX(names...)
		var labels []string
		var xys plotter.XYs
		for j, v := range vals {
			if v == 0 {
				continue
			}
			labels = append(labels, fmt.Sprintf(pn.format, v))
			xys = append(xys, plotter.XY{X: float64(j), Y: v})
		}
		if len(xys) > 0 {
			l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
			if err == nil {
				for k := range l.TextStyle {
					l.TextStyle[k].XAlign = draw.XCenter
				}
				p.Add(l)
			}
		}
		// Accuracy bars start near the lowest value, so that a point's
		// difference is visible; the others start at zero.
		p.Y.Min, p.Y.Max = 0, 1.12*hi
		if i == 0 && !math.IsInf(lo, 1) {
			p.Y.Min = math.Max(0, math.Floor(lo-5))
			p.Y.Max = math.Min(100, hi+0.15*(hi-p.Y.Min)+0.5)
		}
		p.Draw(tiles.At(body, i, 0))
	}
	return writePNG(path, c)
}
