package figures

import (
	"image/color"
	"io"

	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"vitc/internal/atomicfile"
)

// The one typeface of every figure: Liberation Sans ships inside gonum/plot,
// so figures render the same on a machine without fonts.
var (
	sans     = font.Font{Typeface: "Liberation", Variant: "Sans"}
	sansBold = font.Font{Typeface: "Liberation", Variant: "Sans", Weight: xfont.WeightBold}
)

// newCanvas is a white w×h canvas at dpi.
func newCanvas(w, h vg.Length, dpi int) *vgimg.Canvas {
	return vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(dpi), vgimg.UseBackgroundColor(color.White))
}

// textStyle is black text of the given face and size, hanging from its
// anchor (YTop) and aligned horizontally by x.
func textStyle(f font.Font, size font.Length, x draw.XAlignment) text.Style {
	return text.Style{Color: color.Black, Font: font.From(f, size), XAlign: x, YAlign: draw.YTop, Handler: plot.DefaultTextHandler}
}

// writePNG encodes the canvas as a PNG at path atomically: path is either
// left as it was or replaced by the complete image.
func writePNG(path string, c *vgimg.Canvas) error {
	return atomicfile.WriteFile(path, func(w io.Writer) error {
		_, err := vgimg.PngCanvas{Canvas: c}.WriteTo(w)
		return err
	})
}
