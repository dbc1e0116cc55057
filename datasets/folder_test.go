package datasets

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func pngBytes(t testing.TB, img image.Image) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func grayImage(w, h int, v uint8) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for i := range g.Pix {
		g.Pix[i] = v + uint8(i)
	}
	return g
}

// rgbImage stores colour (r, g, b+x) at column x in an RGBA image, so it
// is colour unless step is 0 and r == g == b.
func rgbImage(w, h int, r, g, b, step uint8) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.SetNRGBA(x, y, color.NRGBA{r, g, b + step*uint8(x), 255})
		}
	}
	return m
}

func writeFile(t *testing.T, path string, b []byte) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadFolderGray(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "train/zebra/1.png"), pngBytes(t, grayImage(3, 2, 10)))
	writeFile(t, filepath.Join(dir, "train/ant/a.PNG"), pngBytes(t, grayImage(3, 2, 20)))
	writeFile(t, filepath.Join(dir, "train/ant/b.png"), pngBytes(t, grayImage(3, 2, 30)))
	writeFile(t, filepath.Join(dir, "train/ant/notes.txt"), []byte("ignored"))
	writeFile(t, filepath.Join(dir, "train/ant/.hidden.png"), []byte("ignored"))
	// Grey content stored as RGB still counts as grey.
	writeFile(t, filepath.Join(dir, "test/zebra/x.png"), pngBytes(t, rgbImage(3, 2, 9, 9, 9, 0)))
	d, err := Load("folder:"+dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d.C != 1 || d.H != 2 || d.W != 3 || !slices.Equal(d.Classes, []string{"ant", "zebra"}) || d.FlipOK {
		t.Fatalf("got %dx%dx%d classes %v", d.C, d.H, d.W, d.Classes)
	}
	if !slices.Equal(d.Train.Y, []int{0, 0, 1}) || !slices.Equal(d.Test.Y, []int{1}) {
		t.Fatalf("labels %v / %v", d.Train.Y, d.Test.Y)
	}
	if pixels(d, &d.Train)[1] != 21.0/255 || pixels(d, &d.Train)[12] != 10.0/255 {
		t.Fatalf("pixels %v", pixels(d, &d.Train))
	}
}

func TestLoadFolderColour(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "train/a/1.png"), pngBytes(t, grayImage(4, 4, 0)))
	writeFile(t, filepath.Join(dir, "train/b/1.png"), pngBytes(t, rgbImage(4, 4, 255, 0, 0, 1)))
	var jb bytes.Buffer
	jpeg.Encode(&jb, rgbImage(4, 4, 0, 200, 0, 1), &jpeg.Options{Quality: 100})
	writeFile(t, filepath.Join(dir, "test/b/2.jpg"), jb.Bytes())
	d, err := LoadFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	if d.C != 3 || len(pixels(d, &d.Train)) != 2*3*16 || len(pixels(d, &d.Test)) != 3*16 {
		t.Fatalf("C=%d, %d/%d values", d.C, len(pixels(d, &d.Train)), len(pixels(d, &d.Test)))
	}
	// The grey image is replicated into all three planes.
	if pixels(d, &d.Train)[5] != pixels(d, &d.Train)[16+5] || pixels(d, &d.Train)[5] != 5.0/255 {
		t.Fatalf("grey image not replicated: %v", pixels(d, &d.Train)[:48])
	}
	// The red image: R plane 1, G plane 0.
	if pixels(d, &d.Train)[48] != 1 || pixels(d, &d.Train)[48+16] != 0 {
		t.Fatalf("red image planes %v %v", pixels(d, &d.Train)[48], pixels(d, &d.Train)[64])
	}
	// JPEG green survives within compression error.
	if g := pixels(d, &d.Test)[16]; math.Abs(float64(g)-200.0/255) > 0.05 {
		t.Fatalf("jpeg green %v", g)
	}
}

func TestLoadFolderErrors(t *testing.T) {
	good := pngBytes(t, grayImage(4, 4, 0))
	cases := []struct {
		name  string
		files map[string][]byte
		want  string
	}{
		{"size", map[string][]byte{"train/a/1.png": good, "train/a/2.png": pngBytes(t, grayImage(5, 4, 0)), "test/a/1.png": good},
			"train/a/2.png: image is 5x4 but "},
		{"test size", map[string][]byte{"train/a/1.png": good, "test/a/1.png": pngBytes(t, grayImage(4, 3, 0))}, "test/a/1.png: image is 4x3"},
		{"test class", map[string][]byte{"train/a/1.png": good, "test/b/1.png": good}, `test/b: class "b" has no training directory`},
		{"corrupt", map[string][]byte{"train/a/1.png": good[:30], "test/a/1.png": good}, "train/a/1.png: "},
		{"not an image", map[string][]byte{"train/a/1.jpg": []byte("hello"), "test/a/1.png": good}, "train/a/1.jpg: image: unknown format"},
		{"empty class", map[string][]byte{"train/a/1.png": good, "train/b/x.txt": nil, "test/a/1.png": good}, "train/b: no .png, .jpg or .jpeg images"},
		{"no test", map[string][]byte{"train/a/1.png": good, "test/a/x.txt": nil}, "no test images"},
		{"no test dir", map[string][]byte{"train/a/1.png": good}, "test"},
		{"no classes", map[string][]byte{"train/x.png": good, "test/a/1.png": good}, "no class subdirectories"},
	}
	for _, c := range cases {
		dir := t.TempDir()
		for name, b := range c.files {
			writeFile(t, filepath.Join(dir, name), b)
		}
		_, err := LoadFolder(dir)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "folder: ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
	}
}

func TestDecodeImageRefusesHugeHeader(t *testing.T) {
	// A valid PNG header claiming 100000x100000 pixels, and nothing else.
	b := pngBytes(t, grayImage(1, 1, 0))
	hdr := append([]byte(nil), b[:33]...)
	copy(hdr[16:], []byte{0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0})
	_, err := DecodeImage(hdr)
	if err == nil {
		t.Fatal("accepted a 10^10-pixel header")
	}
}

func TestImageChannels(t *testing.T) {
	im := Image{C: 3, H: 1, W: 2, Pix: []float32{1, 0, 0, 1, 0, 0}}
	if g := im.Channels(1); math.Abs(float64(g[0])-0.299) > 1e-6 || math.Abs(float64(g[1])-0.587) > 1e-6 {
		t.Fatalf("luma %v", g)
	}
	gray := Image{C: 1, H: 1, W: 2, Pix: []float32{.5, .25}}
	if c := gray.Channels(3); !slices.Equal(c, []float32{.5, .25, .5, .25, .5, .25}) {
		t.Fatalf("replicated %v", c)
	}
}

func FuzzImageDecode(f *testing.F) {
	for _, b := range photoModes(f) {
		f.Add(b)
		if b[0] == 0xff {
			f.Add(withOrientation(b, 6))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		im, err := DecodeImage(data)
		if err != nil {
			return
		}
		if im.C != 1 && im.C != 3 || im.H <= 0 || im.W <= 0 || im.H*im.W > imageMaxPixels || len(im.Pix) != im.C*im.H*im.W {
			t.Fatalf("image %dx%dx%d with %d values", im.C, im.H, im.W, len(im.Pix))
		}
		for _, v := range im.Pix {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("value %v outside [0,1]", v)
			}
		}
		if len(im.Channels(1)) != im.H*im.W || len(im.Channels(3)) != 3*im.H*im.W {
			t.Fatal("channel conversion changed the image size")
		}
	})
}

// opaque hides an image's concrete type, forcing fromImage's generic path.
type opaque struct{ image.Image }

func TestFromImageFastPathsMatchGeneric(t *testing.T) {
	r := image.Rect(1, 2, 6, 5) // a non-zero origin catches offset mistakes
	nrgba, rgba, gray := image.NewNRGBA(r), image.NewRGBA(r), image.NewGray(r)
	ycc := image.NewYCbCr(r, image.YCbCrSubsampleRatio420)
	for i := range nrgba.Pix {
		nrgba.Pix[i] = uint8(i * 37)
		rgba.Pix[i] = uint8(i * 11)
	}
	for i := range rgba.Pix {
		if i%4 == 3 {
			rgba.Pix[i] = 255 // RGBA must stay premultiplied-valid
		}
	}
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 29)
	}
	for i := range ycc.Y {
		ycc.Y[i] = uint8(i * 13)
	}
	for i := range ycc.Cb {
		ycc.Cb[i], ycc.Cr[i] = uint8(100+i*7), uint8(90+i*5)
	}
	for _, img := range []image.Image{nrgba, rgba, gray, ycc} {
		fast, slow := fromImage(img), fromImage(opaque{img})
		if fast.C != slow.C || fast.H != 3 || fast.W != 5 || !slices.Equal(fast.Pix, slow.Pix) {
			t.Errorf("%T: fast path %dx%dx%d differs from generic %dx%dx%d", img, fast.C, fast.H, fast.W, slow.C, slow.H, slow.W)
		}
	}
}

// Folder photos are mirrored by default (3 channels), grey folders are not
// (handwriting, symbols), and Options.Flip overrides either way.
func TestLoadWithFlip(t *testing.T) {
	grey, colour := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(grey, "train/a/1.png"), pngBytes(t, grayImage(4, 4, 0)))
	writeFile(t, filepath.Join(colour, "train/a/1.png"), pngBytes(t, rgbImage(4, 4, 1, 2, 3, 4)))
	writeFile(t, filepath.Join(grey, "test/a/1.png"), pngBytes(t, grayImage(4, 4, 0)))
	writeFile(t, filepath.Join(colour, "test/a/1.png"), pngBytes(t, rgbImage(4, 4, 1, 2, 3, 4)))
	for _, c := range []struct {
		dir, flip string
		want      bool
	}{
		{grey, "", false}, {grey, "auto", false}, {grey, "on", true}, {grey, "off", false},
		{colour, "", true}, {colour, "auto", true}, {colour, "on", true}, {colour, "off", false},
	} {
		d, err := LoadWith("folder:"+c.dir, 0, Options{Flip: c.flip})
		if err != nil {
			t.Fatal(err)
		}
		if d.FlipOK != c.want {
			t.Errorf("%d channels, Flip %q: FlipOK %v, want %v", d.C, c.flip, d.FlipOK, c.want)
		}
	}
	// A colour folder read as grey keeps its photos' claim.
	if d, err := LoadWith("folder:"+colour, 0, Options{Channels: 1}); err != nil || !d.FlipOK || d.C != 1 {
		t.Fatalf("colour folder as grey: %v, err %v", d, err)
	}
	if _, err := LoadWith("folder:"+colour, 0, Options{Flip: "sometimes"}); err == nil || !strings.Contains(err.Error(), "Options.Flip") {
		t.Fatalf("bad Flip: %v", err)
	}
}
