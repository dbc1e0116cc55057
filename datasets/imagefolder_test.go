package datasets

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/color/palette"
	"image/jpeg"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func jpegBytes(t testing.TB, img image.Image) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// photoModes are small images in every mode a photo folder holds: grey,
// 16-bit grey, RGBA with transparency, paletted, 16-bit colour, JPEG
// (YCbCr), and CMYK (what image/jpeg decodes Adobe CMYK files to).
func photoModes(t testing.TB) map[string][]byte {
	g16 := image.NewGray16(image.Rect(0, 0, 30, 20))
	for i := range g16.Pix {
		g16.Pix[i] = uint8(i * 7)
	}
	rgba := image.NewNRGBA(image.Rect(0, 0, 17, 25))
	for i := range rgba.Pix {
		rgba.Pix[i] = uint8(i * 13)
	}
	pal := image.NewPaletted(image.Rect(0, 0, 40, 12), palette.Plan9)
	for i := range pal.Pix {
		pal.Pix[i] = uint8(i)
	}
	rgb64 := image.NewRGBA64(image.Rect(0, 0, 9, 9))
	for y := range 9 {
		for x := range 9 {
			rgb64.SetRGBA64(x, y, color.RGBA64{uint16(x * 7000), uint16(y * 7000), 30000, 0xffff})
		}
	}
	cmyk := image.NewCMYK(image.Rect(0, 0, 24, 16))
	for i := range cmyk.Pix {
		cmyk.Pix[i] = uint8(i * 5)
	}
	return map[string][]byte{
		"grey.png":   pngBytes(t, grayImage(11, 7, 3)),
		"grey16.png": pngBytes(t, g16),
		"rgba.png":   pngBytes(t, rgba),
		"pal.png":    pngBytes(t, pal),
		"rgb16.png":  pngBytes(t, rgb64),
		"photo.jpg":  jpegBytes(t, rgbImage(33, 21, 200, 40, 10, 3)),
		"cmyk.jpg":   jpegBytes(t, cmyk),
	}
}

func TestFolderMixedSizesAndModes(t *testing.T) {
	dir := t.TempDir()
	for i, cls := range []string{"a", "b"} {
		for name, b := range photoModes(t) {
			writeFile(t, filepath.Join(dir, cls, string(rune('0'+i))+name), b)
		}
	}
	if _, err := LoadFolderWith(dir, Options{ValSplit: 0.3}); err == nil || !strings.Contains(err.Error(), "image size") {
		t.Fatalf("mixed sizes without an image size: %v", err)
	}
	d, err := LoadFolderWith(dir, Options{ValSplit: 0.3, ImageSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	if d.C != 3 || d.H != 16 || d.W != 16 || !slices.Equal(d.Classes, []string{"a", "b"}) {
		t.Fatalf("dataset %dx%dx%d classes %v", d.C, d.H, d.W, d.Classes)
	}
	// Several stored sizes: no one native size to compare a model with.
	if d.NativeH != 0 || d.NativeW != 0 || d.NativeC != 3 || !d.NamesClasses() {
		t.Errorf("native %dx%dx%d, named %v", d.NativeC, d.NativeH, d.NativeW, d.NamesClasses())
	}
	// 7 per class, 0.3 held out: round(2.1) = 2 each.
	if d.Train.Len() != 10 || d.Test.Len() != 4 || !slices.Equal(d.Test.Y, []int{0, 0, 1, 1}) {
		t.Fatalf("train %d test %d labels %v", d.Train.Len(), d.Test.Len(), d.Test.Y)
	}
	for _, v := range pixels(d, &d.Train) {
		if !(v >= -1e-6 && v <= 1+1e-6) {
			t.Fatalf("pixel %v outside [0,1]", v)
		}
	}
	again, err := LoadFolderWith(dir, Options{ValSplit: 0.3, ImageSize: 16})
	if err != nil || !slices.Equal(pixels(again, &again.Test), pixels(d, &d.Test)) {
		t.Fatalf("the validation split is not deterministic (%v)", err)
	}
}

func TestFolderBadImage(t *testing.T) {
	dir := t.TempDir()
	good := pngBytes(t, grayImage(6, 6, 0))
	writeFile(t, filepath.Join(dir, "train/a/1.png"), good)
	writeFile(t, filepath.Join(dir, "train/a/broken.jpg"), []byte("\xff\xd8\xff garbage"))
	writeFile(t, filepath.Join(dir, "test/a/1.png"), good)
	_, err := LoadFolderWith(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "train/a/broken.jpg") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("got %v, want one line naming the file", err)
	}
	// It names the way past it too, and callers can tell it by ErrBadImage
	// to name their own switch.
	if !errors.Is(err, ErrBadImage) || !strings.Contains(err.Error(), "Options.SkipBadImages") {
		t.Fatalf("got %v, want ErrBadImage naming Options.SkipBadImages", err)
	}
	d, err := LoadFolderWith(dir, Options{SkipBadImages: true})
	if err != nil || d.Skipped != 1 || d.Train.Len() != 1 {
		t.Fatalf("skipping: %v, skipped %d", err, d.Skipped)
	}
}

func TestEvalResize(t *testing.T) {
	// A constant image stays constant through resizing and cropping.
	im := Image{C: 1, H: 30, W: 50, Pix: make([]float32, 1500)}
	for i := range im.Pix {
		im.Pix[i] = 0.25
	}
	r := im.EvalResize(14, DefaultCropPct) // shorter side 16, then crop 14
	if r.H != 14 || r.W != 14 || len(r.Pix) != 196 {
		t.Fatalf("%dx%d", r.W, r.H)
	}
	for _, v := range r.Pix {
		if math.Abs(float64(v)-0.25) > 1e-6 {
			t.Fatalf("value %v", v)
		}
	}
	// A left-to-right ramp keeps its order, and the crop is centred.
	for y := range 30 {
		for x := range 50 {
			im.Pix[y*50+x] = float32(x) / 49
		}
	}
	r = im.EvalResize(14, DefaultCropPct)
	if !(r.Pix[0] < r.Pix[13]) || math.Abs(float64(r.Pix[0]+r.Pix[13])-1) > 0.02 {
		t.Fatalf("ramp row %v", r.Pix[:14])
	}
}

func TestResizeToFixedSet(t *testing.T) {
	d := &Dataset{C: 1, H: 2, W: 2, Train: Split{X: []float32{0, 1, 0, 1}, Y: []int{0}}, Test: Split{X: []float32{1, 1, 1, 1}, Y: []int{0}}}
	d.ResizeTo(4)
	if d.H != 4 || len(pixels(d, &d.Train)) != 16 || len(pixels(d, &d.Test)) != 16 {
		t.Fatalf("%dx%d, %d values", d.H, d.W, len(pixels(d, &d.Train)))
	}
	if pixels(d, &d.Train)[0] != 0 || pixels(d, &d.Train)[3] != 1 || pixels(d, &d.Test)[5] != 1 {
		t.Fatalf("resized %v", pixels(d, &d.Train))
	}
}

// withOrientation inserts an EXIF APP1 segment with orientation o after a
// JPEG's SOI marker (big-endian TIFF, as many cameras write).
func withOrientation(b []byte, o uint8) []byte {
	tiff := []byte{'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, o, 0, 0, 0, 0, 0, 0, 0, 0}
	seg := append([]byte("Exif\x00\x00"), tiff...)
	app1 := append([]byte{0xff, 0xe1, byte((len(seg) + 2) >> 8), byte(len(seg) + 2)}, seg...)
	return append(append(append([]byte(nil), b[:2]...), app1...), b[2:]...)
}

func TestJPEGOrientation(t *testing.T) {
	// 16x8 image, bright left half: after orientation 6 (rotate 90° CW) it
	// is 8x16 with the bright half on top; after 8, at the bottom.
	m := image.NewGray(image.Rect(0, 0, 16, 8))
	for y := range 8 {
		for x := range 16 {
			if x < 8 {
				m.SetGray(x, y, color.Gray{240})
			}
		}
	}
	plain := jpegBytes(t, m)
	for _, c := range []struct {
		o        uint8
		w, h     int
		brightAt int // pixel index expected bright
		darkAt   int
	}{
		{1, 16, 8, 0, 15},
		{6, 8, 16, 0, 15 * 8},
		{8, 8, 16, 15 * 8, 0},
		{3, 16, 8, 15, 0},
	} {
		im, err := DecodeImage(withOrientation(plain, c.o))
		if err != nil {
			t.Fatal(err)
		}
		if im.W != c.w || im.H != c.h || im.Pix[c.brightAt] < 0.8 || im.Pix[c.darkAt] > 0.2 {
			t.Errorf("orientation %d: %dx%d, bright %v dark %v", c.o, im.W, im.H, im.Pix[c.brightAt], im.Pix[c.darkAt])
		}
	}
}

func TestLoadWithChannels(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "train/a/1.png"), pngBytes(t, rgbImage(4, 4, 200, 40, 10, 3)))
	writeFile(t, filepath.Join(dir, "test/a/1.png"), pngBytes(t, rgbImage(4, 4, 200, 40, 10, 3)))
	d, err := LoadWith("folder:"+dir, 0, Options{Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	if d.C != 1 || len(pixels(d, &d.Train)) != 16 || math.Abs(float64(pixels(d, &d.Train)[0])-(0.299*200+0.587*40+0.114*10)/255) > 1e-3 {
		t.Fatalf("C %d, %d values, first %v", d.C, len(pixels(d, &d.Train)), pixels(d, &d.Train)[0])
	}
}

func TestClassNamesAndOrderOptions(t *testing.T) {
	spec := "synthetic"
	d, err := LoadWith(spec, 1, Options{})
	if err != nil {
		t.Fatal(err)
	}
	names := slices.Clone(d.Classes)
	// Renamed in label order.
	renamed := make([]string, len(names))
	for i := range renamed {
		renamed[i] = "c" + names[i]
	}
	r, err := LoadWith(spec, 1, Options{ClassNames: renamed})
	if err != nil || !slices.Equal(r.Classes, renamed) || !r.NamesClasses() || !slices.Equal(r.Test.Y, d.Test.Y) {
		t.Fatalf("ClassNames: %v %v", r.Classes, err)
	}
	if _, err := LoadWith(spec, 1, Options{ClassNames: []string{"a"}}); err == nil {
		t.Errorf("one name for ten classes accepted")
	}
	// Put in another order: each label moves to its name's place.
	order := slices.Clone(names)
	slices.Reverse(order)
	o, err := LoadWith(spec, 1, Options{ClassOrder: order})
	if err != nil || !slices.Equal(o.Classes, order) {
		t.Fatalf("ClassOrder: %v %v", o.Classes, err)
	}
	for i, y := range d.Test.Y {
		if o.Classes[o.Test.Y[i]] != names[y] {
			t.Fatalf("image %d: label %s became %s", i, names[y], o.Classes[o.Test.Y[i]])
		}
	}
	if _, err := LoadWith(spec, 1, Options{ClassOrder: []string{"x"}}); err == nil {
		t.Errorf("an order that names none of the classes accepted")
	}
	// The stored shape is kept when the images are converted.
	if c, err := LoadWith(spec, 1, Options{ImageSize: 14, Channels: 3}); err != nil || c.NativeC != 1 || c.NativeH != 28 || c.C != 3 || c.H != 14 {
		t.Errorf("native shape %d %d after conversion to %d %d: %v", c.NativeC, c.NativeH, c.C, c.H, err)
	}
}
