package figures

import (
	"io"

	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg/vgimg"

	"vitc/internal/atomicfile"
)

// The one typeface of every figure: Liberation Sans ships inside gonum/plot,
// so figures render the same on a machine without fonts.
var (
	sans     = font.Font{Typeface: "Liberation", Variant: "Sans"}
	sansBold = font.Font{Typeface: "Liberation", Variant: "Sans", Weight: xfont.WeightBold}
)

// writePNG encodes the canvas as a PNG at path atomically: path is either
// left as it was or replaced by the complete image.
func writePNG(path string, c *vgimg.Canvas) error {
	return atomicfile.WriteFile(path, func(w io.Writer) error {
		_, err := vgimg.PngCanvas{Canvas: c}.WriteTo(w)
		return err
	})
}
