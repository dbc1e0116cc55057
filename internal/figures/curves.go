package figures

import (
	"cmp"
	"errors"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Point is one epoch of a training run. Accuracies are fractions in [0, 1]
// (as vit.EpochStats reports them); they are drawn as percentages. NaN or
// infinite values are left out of the plot.
type Point struct {
	Epoch                                  int
	TrainLoss, TestLoss, TrainAcc, TestAcc float64
}

// Image geometry: 9x7 in at 100 dpi is 900x700 px.
const (
	dpi    = 100
	width  = 9 * vg.Inch
	height = 7 * vg.Inch
)

var (
	trainColor = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff} // blue
	testColor  = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff} // orange
	refColor   = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff} // green
	gridColor  = color.Gray{Y: 0xdd}
)

// Reference is an accuracy drawn across the accuracy panel as a dashed
// horizontal line, named in the legend: what a run is measured against,
// such as the teacher a pruned model distils from.
type Reference struct {
	Label    string
	Accuracy float64 // a fraction in [0, 1], as Point's
}

// WriteCurves draws two stacked panels, loss per epoch (train and test) above
// accuracy per epoch in percent (train and test), under the given title, and
// writes them as a 900x700 PNG to path, atomically: path is either left as it
// was or replaced by the complete image. Points may come in any order; each
// is drawn as a marker as well as a line, so a single epoch is visible, and
// non-finite values break the line instead of being drawn. refs add
// reference accuracies (non-finite ones are left out). Each panel's legend
// goes in the corner of its data area where it covers the least of the
// curves. It is an error if pts is empty.
func WriteCurves(path, title string, pts []Point, refs ...Reference) error {
	if len(pts) == 0 {
		return fmt.Errorf("figures: write %s: no points to plot", path)
	}
	img, err := render(title, pts, refs)
	if err != nil {
		return fmt.Errorf("figures: write %s: %w", path, err)
	}
	return writePNG(path, img)
}

// render draws the whole figure onto a fresh image canvas.
func render(title string, pts []Point, refs []Reference) (*vgimg.Canvas, error) {
	img, _, err := layout(title, pts, refs)
	return img, err
}

// layout is render, also returning the two panels (loss, accuracy) as
// drawn.
func layout(title string, pts []Point, refs []Reference) (*vgimg.Canvas, [2]*panel, error) {
	pts = slices.Clone(pts)
	slices.SortStableFunc(pts, func(a, b Point) int { return cmp.Compare(a.Epoch, b.Epoch) })

	epochs := make([]float64, len(pts))
	trainLoss := make([]float64, len(pts))
	testLoss := make([]float64, len(pts))
	trainAcc := make([]float64, len(pts))
	testAcc := make([]float64, len(pts))
	for i, p := range pts {
		epochs[i] = float64(p.Epoch)
		trainLoss[i], testLoss[i] = p.TrainLoss, p.TestLoss
		trainAcc[i], testAcc[i] = 100*p.TrainAcc, 100*p.TestAcc
	}
	xmin, xmax := epochs[0], epochs[len(epochs)-1]
	xpad := math.Max(0.5, 0.02*(xmax-xmin))

	loss := newPanel("Loss", "loss", true)
	if err := addSeries(loss, "train", trainColor, draw.CircleGlyph{}, epochs, trainLoss); err != nil {
		return nil, [2]*panel{}, err
	}
	if err := addSeries(loss, "test", testColor, draw.PyramidGlyph{}, epochs, testLoss); err != nil {
		return nil, [2]*panel{}, err
	}
	setYRange(loss.Plot, append(slices.Clone(trainLoss), testLoss...), math.Inf(-1), math.Inf(1), 1)

	acc := newPanel("Accuracy", "accuracy (%)", false)
	if err := addSeries(acc, "train", trainColor, draw.CircleGlyph{}, epochs, trainAcc); err != nil {
		return nil, [2]*panel{}, err
	}
	testName := "test"
	if best, at, ok := argmax(testAcc); ok {
		testName = fmt.Sprintf("test (best %.2f%% at epoch %d)", best, pts[at].Epoch)
	}
	if err := addSeries(acc, testName, testColor, draw.PyramidGlyph{}, epochs, testAcc); err != nil {
		return nil, [2]*panel{}, err
	}
	accs := append(slices.Clone(trainAcc), testAcc...)
	for _, r := range refs {
		if y := 100 * r.Accuracy; finite(y) {
			if err := addReference(acc, fmt.Sprintf("%s (%.2f%%)", r.Label, y), y, xmin-xpad, xmax+xpad); err != nil {
				return nil, [2]*panel{}, err
			}
			accs = append(accs, y)
		}
	}
	setYRange(acc.Plot, accs, 0, 100, 100)

	for _, p := range []*panel{loss, acc} {
		p.X.Min, p.X.Max = xmin-xpad, xmax+xpad
		p.X.Tick.Marker = epochTicks{}
	}
	acc.X.Label.Text = "epoch"

	img := newCanvas(width, height, dpi)
	dc := draw.New(img)

	// Figure title across the top, then the two panels below it.
	titleStyle := textStyle(sansBold, 16, draw.XCenter)
	const titleBand = 0.45 * vg.Inch
	dc.FillText(titleStyle, vg.Point{X: (dc.Min.X + dc.Max.X) / 2, Y: dc.Max.Y - 0.15*vg.Inch}, title)
	body := draw.Crop(dc, 0, 0, 0, -titleBand)
	tiles := draw.Tiles{
		Rows: 2, Cols: 1,
		PadTop: 0.05 * vg.Inch, PadBottom: 0.1 * vg.Inch,
		PadLeft: 0.1 * vg.Inch, PadRight: 0.25 * vg.Inch,
		PadY: 0.3 * vg.Inch,
	}
	plots := [][]*plot.Plot{{loss.Plot}, {acc.Plot}}
	canvases := plot.Align(plots, tiles, body)
	if clear := loss.place(canvases[0][0]); !acc.place(canvases[1][0]) || !clear {
		// Every corner of a panel covers its lines: both legends go to
		// the right of the panels, which narrow alike to stay aligned.
		tiles.PadRight += max(loss.legendWidth(), acc.legendWidth()) + 5*legendInset
		canvases = plot.Align(plots, tiles, body)
		loss.placeOutside(canvases[0][0])
		acc.placeOutside(canvases[1][0])
	}
	loss.draw(canvases[0][0])
	acc.draw(canvases[1][0])
	return img, [2]*panel{loss, acc}, nil
}

// A panel is one of the two stacked plots. Its legend is kept apart from the
// plot so that it can be drawn on a background box over the curves, in the
// corner where it hides the least of them.
type panel struct {
	*plot.Plot
	legend plot.Legend
	names  []string
	// paths are the drawn lines in data coordinates, for placing the
	// legend; legendAt is the canvas whose corner it goes in and
	// legendBox its box there; data is the data area it was placed for.
	paths     []plotter.XYs
	legendAt  draw.Canvas
	legendBox vg.Rectangle
	data      draw.Canvas
}

// legendInset is the gap between the legend box and the data area's edge,
// and between the box and the legend entries.
const legendInset = 4 * vg.Millimeter / 2

// newPanel returns an empty panel with the package's fonts, a light grid and
// the given panel title and y label; its legend prefers the top right
// corner if top, else the bottom right.
func newPanel(title, ylabel string, top bool) *panel {
	p := &panel{Plot: plot.New(), legend: plot.NewLegend()}
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(sansBold, 12)
	p.Title.Padding = 0.06 * vg.Inch
	p.Y.Label.Text = ylabel
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(sans, 11)
		a.Tick.Label.Font = font.From(sans, 10)
	}
	p.legend.TextStyle.Font = font.From(sans, 10)
	p.legend.ThumbnailWidth = 0.45 * vg.Inch
	p.legend.Padding = 2
	p.legend.Top = top
	grid := plotter.NewGrid()
	grid.Vertical.Color = gridColor
	grid.Horizontal.Color = gridColor
	p.Add(grid)
	return p
}

// addSeries adds one curve: a line through each run of consecutive finite
// values, a marker at every finite value, and one legend entry.
func addSeries(p *panel, name string, c color.Color, shape draw.GlyphDrawer, xs, ys []float64) error {
	n := 0
	for _, y := range ys {
		if finite(y) {
			n++
		}
	}
	radius := vg.Length(3)
	switch {
	case n > 100:
		radius = 1.5
	case n > 40:
		radius = 2
	}
	lineStyle := draw.LineStyle{Color: c, Width: vg.Points(1.8)}
	glyphStyle := draw.GlyphStyle{Color: c, Radius: radius, Shape: shape}

	var all plotter.XYs
	for i := 0; i < len(ys); {
		if !finite(ys[i]) {
			i++
			continue
		}
		var seg plotter.XYs
		for ; i < len(ys) && finite(ys[i]); i++ {
			seg = append(seg, plotter.XY{X: xs[i], Y: ys[i]})
		}
		all = append(all, seg...)
		p.paths = append(p.paths, seg)
		if len(seg) > 1 {
			l, err := plotter.NewLine(seg)
			if err != nil {
				return err
			}
			l.LineStyle = lineStyle
			p.Add(l)
		}
	}
	if len(all) > 0 {
		s, err := plotter.NewScatter(all)
		if err != nil {
			return err
		}
		s.GlyphStyle = glyphStyle
		p.Add(s)
	}
	// Thumbnails are drawn with the same styles whether or not there is data.
	p.legend.Add(name, legendLine{lineStyle}, legendGlyph{glyphStyle})
	p.names = append(p.names, name)
	return nil
}

// addReference adds a dashed horizontal line at y from x0 to x1, with a
// legend entry.
func addReference(p *panel, name string, y, x0, x1 float64) error {
	seg := plotter.XYs{{X: x0, Y: y}, {X: x1, Y: y}}
	l, err := plotter.NewLine(seg)
	if err != nil {
		return err
	}
	l.LineStyle = draw.LineStyle{Color: refColor, Width: vg.Points(1.5), Dashes: []vg.Length{vg.Points(6), vg.Points(3)}}
	p.Add(l)
	p.paths = append(p.paths, seg)
	p.legend.Add(name, legendLine{l.LineStyle})
	p.names = append(p.names, name)
	return nil
}

// place puts the legend on a translucent white box inside c's data area,
// in the corner that covers the fewest points of the panel's lines (ties
// go to the preferred corner, then the other one on the right), and says
// whether it covers none. The box follows the geometry of
// plot.Legend.Draw.
func (p *panel) place(c draw.Canvas) (clear bool) {
	if len(p.names) == 0 {
		return true
	}
	dc := p.DataCanvas(c)
	p.data = dc
	samples := p.samples(&dc)
	best := -1
	top := p.legend.Top
	for _, corner := range []struct{ top, left bool }{{top, false}, {!top, false}, {top, true}, {!top, true}} {
		b := p.legendRect(dc, corner.top, corner.left)
		n := 0
		for _, s := range samples {
			if s.X >= b.Min.X && s.X <= b.Max.X && s.Y >= b.Min.Y && s.Y <= b.Max.Y {
				n++
			}
		}
		if best < 0 || n < best {
			best = n
			p.setLegend(dc, corner.top, corner.left)
		}
	}
	return best == 0
}

// placeOutside puts the legend to the right of c's data area, at the top,
// in the margin render leaves when no corner is clear.
func (p *panel) placeOutside(c draw.Canvas) {
	if len(p.names) == 0 {
		return
	}
	dc := p.DataCanvas(c)
	p.data = dc
	margin := dc
	margin.Min.X, margin.Max.X = dc.Max.X, dc.Max.X+p.legendWidth()+4*legendInset
	p.setLegend(margin, true, true)
}

// legendWidth is the legend's width, box and offsets left out.
func (p *panel) legendWidth() vg.Length {
	b := p.legendRect(draw.Canvas{}, true, true)
	return b.Max.X - b.Min.X - 2*legendInset
}

// setLegend puts the legend in a corner of the canvas a.
func (p *panel) setLegend(a draw.Canvas, top, left bool) {
	l := &p.legend
	l.Top, l.Left = top, left
	l.XOffs, l.YOffs = -2*legendInset, 2*legendInset
	if left {
		l.XOffs = -l.XOffs
	}
	if top {
		l.YOffs = -l.YOffs
	}
	p.legendAt, p.legendBox = a, p.legendRect(a, top, left)
}

// draw draws the panel's plot onto c, then its legend where place or
// placeOutside put it.
func (p *panel) draw(c draw.Canvas) {
	p.Plot.Draw(c)
	if len(p.names) == 0 {
		return
	}
	a := p.legendAt
	a.SetColor(color.NRGBA{R: 0xff, G: 0xff, B: 0xff, A: 0xe0})
	a.Fill(p.legendBox.Path())
	a.SetLineStyle(draw.LineStyle{Color: color.Gray{Y: 0xc0}, Width: 0.5})
	a.Stroke(p.legendBox.Path())
	p.legend.Draw(a)
}

// legendRect is the legend's box, background included, in the given corner
// of the data canvas dc.
func (p *panel) legendRect(dc draw.Canvas, top, left bool) vg.Rectangle {
	l := &p.legend
	var textW, entH vg.Length
	for _, name := range p.names {
		r := l.TextStyle.Rectangle(name)
		textW, entH = max(textW, r.Max.X), max(entH, r.Max.Y)
	}
	em := l.TextStyle.Rectangle(" ").Max.X
	n := vg.Length(len(p.names))
	width := l.ThumbnailWidth + em + textW
	var lo, hi, bottom, up vg.Length
	if left {
		lo = dc.Min.X + 2*legendInset
		hi = lo + width
	} else {
		hi = dc.Max.X - 2*legendInset
		lo = hi - width
	}
	if top {
		up = dc.Max.Y - l.TextStyle.FontExtents().Descent - 2*legendInset
		bottom = up - n*entH - (n-1)*l.Padding
	} else {
		bottom = dc.Min.Y + 2*legendInset
		up = bottom + n*entH + (n-1)*l.Padding
	}
	return vg.Rectangle{
		Min: vg.Point{X: lo - legendInset, Y: bottom - legendInset},
		Max: vg.Point{X: hi + legendInset, Y: up + legendInset},
	}
}

// samples are points along the panel's lines in dc's coordinates, a few
// per segment, so that a legend box a line only crosses counts too.
func (p *panel) samples(dc *draw.Canvas) []vg.Point {
	tx, ty := p.Transforms(dc)
	const per = 16
	var out []vg.Point
	for _, path := range p.paths {
		for i, a := range path {
			pa := vg.Point{X: tx(a.X), Y: ty(a.Y)}
			out = append(out, pa)
			if i+1 == len(path) {
				continue
			}
			b := path[i+1]
			pb := vg.Point{X: tx(b.X), Y: ty(b.Y)}
			for k := 1; k < per; k++ {
				f := vg.Length(k) / per
				out = append(out, vg.Point{X: pa.X + f*(pb.X-pa.X), Y: pa.Y + f*(pb.Y-pa.Y)})
			}
		}
	}
	return out
}

// legendLine and legendGlyph draw legend thumbnails without needing data.
type legendLine struct{ style draw.LineStyle }

func (l legendLine) Thumbnail(c *draw.Canvas) {
	y := c.Center().Y
	c.StrokeLine2(l.style, c.Min.X, y, c.Max.X, y)
}

type legendGlyph struct{ style draw.GlyphStyle }

func (g legendGlyph) Thumbnail(c *draw.Canvas) { c.DrawGlyph(g.style, c.Center()) }

// setYRange sets the y axis to the finite values in ys with a 5% margin,
// clamped to [lo, hi]; with no finite values it is [max(lo, 0), fallback].
func setYRange(p *plot.Plot, ys []float64, lo, hi, fallback float64) {
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for _, y := range ys {
		if finite(y) {
			ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
		}
	}
	if math.IsInf(ymin, 1) {
		p.Y.Min, p.Y.Max = math.Max(lo, 0), fallback
		return
	}
	span := ymax - ymin
	if span == 0 {
		span = math.Max(math.Abs(ymax), 1)
	}
	pad := 0.05 * span
	if ymin >= 0 {
		// Non-negative data (losses, accuracies) keeps a non-negative axis.
		lo = math.Max(lo, 0)
	}
	p.Y.Min = math.Max(lo, ymin-pad)
	p.Y.Max = math.Min(hi, ymax+pad)
	if p.Y.Min >= p.Y.Max { // e.g. all accuracies exactly 100%
		p.Y.Min, p.Y.Max = ymin-pad, ymax+pad
	}
}

// argmax returns the largest finite value in ys and its index.
func argmax(ys []float64) (best float64, at int, ok bool) {
	for i, y := range ys {
		if finite(y) && (!ok || y > best) {
			best, at, ok = y, i, true
		}
	}
	return best, at, ok
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// epochTicks labels whole epochs only, at a step of 1, 2 or 5 times a power
// of ten chosen to give at most about ten labels.
type epochTicks struct{}

func (epochTicks) Ticks(min, max float64) []plot.Tick {
	if !(max > min) {
		panic(errors.New("curves: illegal tick range"))
	}
	lo, hi := int(math.Ceil(min)), int(math.Floor(max))
	step := 1
	for mult := 0; (hi-lo)/step > 10; mult++ {
		step = []int{2, 5, 10}[mult%3] * pow10(mult/3)
	}
	minor := 0
	switch {
	case step >= 5 && step%5 == 0:
		minor = step / 5
	case step%2 == 0:
		minor = step / 2
	}
	g := step
	if minor > 0 {
		g = minor
	}
	var ticks []plot.Tick
	for v := ceilMultiple(lo, g); v <= hi; v += g {
		switch {
		case v%step == 0:
			ticks = append(ticks, plot.Tick{Value: float64(v), Label: strconv.Itoa(v)})
		case minor > 0 && v%minor == 0:
			ticks = append(ticks, plot.Tick{Value: float64(v)})
		}
	}
	return ticks
}

// ceilMultiple returns the smallest multiple of m (m > 0) that is >= v.
func ceilMultiple(v, m int) int {
	q := v / m
	if q*m < v {
		q++
	}
	return q * m
}

func pow10(n int) int {
	p := 1
	for range n {
		p *= 10
	}
	return p
}
