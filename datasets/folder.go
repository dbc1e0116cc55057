package datasets

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // the formats image.Decode may dispatch to: the ones
	_ "image/png"  // folder datasets and prediction inputs come in
	"os"
	"path/filepath"
	"strings"
)

const (
	// imageMaxPixels refuses images that would take hundreds of MB once
	// decoded; the check runs on the header, before the decoder allocates.
	imageMaxPixels = 1 << 22
	imageMaxFile   = 64 << 20
)

// Image is one decoded picture in [0,1], CHW. C is 1 when every pixel is
// grey (r = g = b), else 3.
type Image struct {
	C, H, W int
	Pix     []float32
}

// DecodeImage decodes a PNG or JPEG. The header's dimensions are checked
// before the pixels are decoded, so a tiny file claiming a huge image is an
// error rather than an allocation. Transparent pixels come out as black
// (premultiplied alpha), as if composited onto an empty canvas. A JPEG is
// turned upright by its EXIF orientation, as photo viewers show it.
func DecodeImage(b []byte) (Image, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return Image{}, err
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > imageMaxPixels/cfg.Height {
		return Image{}, fmt.Errorf("%s image of %dx%d pixels is empty or larger than %d pixels", format, cfg.Width, cfg.Height, imageMaxPixels)
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return Image{}, err
	}
	if format == "jpeg" {
		return fromImage(img).orient(jpegOrientation(b)), nil
	}
	return fromImage(img), nil
}

// fromImage converts to planar RGB and then drops to one channel if the
// image turns out grey. Pixel equality, not the colour model, decides:
// greyscale content saved as RGB is common and should train as C=1.
func fromImage(img image.Image) Image {
	bnd := img.Bounds()
	w, h := bnd.Dx(), bnd.Dy()
	plane := w * h
	pix := make([]float32, 3*plane)
	gray := true
	set := func(i int, r, g, b uint32) {
		pix[i], pix[plane+i], pix[2*plane+i] = float32(r)/0xffff, float32(g)/0xffff, float32(b)/0xffff
		gray = gray && r == g && g == b
	}
	// The concrete types the PNG and JPEG decoders produce most often get
	// direct access; the generic At path allocates per pixel.
	switch m := img.(type) {
	case *image.Gray:
		for y := range h {
			o := m.PixOffset(bnd.Min.X, bnd.Min.Y+y)
			row := m.Pix[o : o+w]
			for x, v := range row {
				f := float32(v) / 0xff
				i := y*w + x
				pix[i], pix[plane+i], pix[2*plane+i] = f, f, f
			}
		}
	case *image.NRGBA:
		for y := range h {
			o := m.PixOffset(bnd.Min.X, bnd.Min.Y+y)
			for x := range w {
				p := m.Pix[o+4*x : o+4*x+4]
				// Premultiply exactly as color.NRGBA.RGBA does, so this
				// path and the generic one agree bit for bit.
				a := uint32(p[3]) * 0x101
				set(y*w+x, uint32(p[0])*0x101*a/0xffff, uint32(p[1])*0x101*a/0xffff, uint32(p[2])*0x101*a/0xffff)
			}
		}
	case *image.RGBA:
		for y := range h {
			o := m.PixOffset(bnd.Min.X, bnd.Min.Y+y)
			for x := range w {
				p := m.Pix[o+4*x : o+4*x+4]
				set(y*w+x, uint32(p[0])*0x101, uint32(p[1])*0x101, uint32(p[2])*0x101)
			}
		}
	case *image.YCbCr:
		for y := range h {
			for x := range w {
				yi, ci := m.YOffset(bnd.Min.X+x, bnd.Min.Y+y), m.COffset(bnd.Min.X+x, bnd.Min.Y+y)
				// color.YCbCr.RGBA, not YCbCrToRGB: it is what At gives,
				// at 16-bit rather than 8-bit precision.
				r, g, b, _ := color.YCbCr{Y: m.Y[yi], Cb: m.Cb[ci], Cr: m.Cr[ci]}.RGBA()
				set(y*w+x, r, g, b)
			}
		}
	default:
		for y := range h {
			for x := range w {
				r, g, b, _ := img.At(bnd.Min.X+x, bnd.Min.Y+y).RGBA()
				set(y*w+x, r, g, b)
			}
		}
	}
	if gray {
		return Image{C: 1, H: h, W: w, Pix: pix[:plane:plane]}
	}
	return Image{C: 3, H: h, W: w, Pix: pix}
}

// Channels returns the pixels with c channels (1 or 3): grey is replicated
// to RGB, and RGB is reduced to ITU-R 601 luma, so a model trained on either
// kind of data can be fed either kind of file.
func (im Image) Channels(c int) []float32 {
	if c == im.C {
		return im.Pix
	}
	out := make([]float32, c*im.H*im.W)
	channelsInto(out, im.Pix, im.C, im.H*im.W, c)
	return out
}

// channelsInto writes the c-channel planes of pix (from channels) into out.
func channelsInto(out, pix []float32, from, plane, c int) {
	switch {
	case c == from:
		copy(out, pix)
	case c == 3 && from == 1:
		for k := range 3 {
			copy(out[k*plane:(k+1)*plane], pix[:plane])
		}
	case c == 1 && from == 3:
		for i := range out[:plane] {
			out[i] = 0.299*pix[i] + 0.587*pix[plane+i] + 0.114*pix[2*plane+i]
		}
	default:
		panic(fmt.Sprintf("datasets: cannot convert a %d-channel image to %d channels", from, c))
	}
}

// LoadImage reads and decodes one PNG or JPEG file.
func LoadImage(path string) (Image, error) {
	b, err := readFileLimited(path, imageMaxFile)
	if err != nil {
		return Image{}, err
	}
	im, err := DecodeImage(b)
	if err != nil {
		return Image{}, fmt.Errorf("%s: %w", path, err)
	}
	return im, nil
}

func isImageName(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".png", ".jpg", ".jpeg":
		return true
	}
	return false
}

// classDirs lists the non-hidden subdirectories of dir in sorted order.
func classDirs(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		isDir := e.IsDir()
		if e.Type()&os.ModeSymlink != 0 {
			// A class linked in from elsewhere is still a class.
			st, err := os.Stat(filepath.Join(dir, e.Name()))
			isDir = err == nil && st.IsDir()
		}
		if isDir {
			names = append(names, e.Name())
		}
	}
	return names, nil
}
