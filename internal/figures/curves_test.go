package figures

import (
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func samplePoints(n int) []Point {
	pts := make([]Point, n)
	for i := range pts {
		e := float64(i + 1)
		pts[i] = Point{
			Epoch:     i + 1,
			TrainLoss: 2.3*math.Exp(-e/4) + 0.05,
			TestLoss:  2.3*math.Exp(-e/5) + 0.2 + 0.01*e,
			TrainAcc:  1 - 0.9*math.Exp(-e/3),
			TestAcc:   0.95 - 0.85*math.Exp(-e/3.5),
		}
	}
	return pts
}

// writeAndCheck writes pts to a fresh directory and checks that the result is
// a 900x700 PNG and that the directory holds nothing else.
func writeAndCheck(t *testing.T, title string, pts []Point) image.Image {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "curves.png")
	if err := WriteCurves(path, title, pts); err != nil {
		t.Fatalf("WritePNG: %v", err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 900 || b.Dy() != 700 {
		t.Errorf("image size %dx%d, want 900x700", b.Dx(), b.Dy())
	}
	assertOnlyFiles(t, dir, "curves.png")
	return img
}

func assertOnlyFiles(t *testing.T, dir string, want ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if len(got) != len(want) {
		t.Fatalf("directory holds %q, want %q", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("directory holds %q, want %q", got, want)
		}
	}
}

// countColored counts pixels close to c, to check that a series was drawn.
func countColored(img image.Image, r, g, b uint8) int {
	n := 0
	bd := img.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			pr, pg, pb, _ := img.At(x, y).RGBA()
			if absDiff(pr>>8, r) < 24 && absDiff(pg>>8, g) < 24 && absDiff(pb>>8, b) < 24 {
				n++
			}
		}
	}
	return n
}

func absDiff(a uint32, b uint8) uint32 {
	if a > uint32(b) {
		return a - uint32(b)
	}
	return uint32(b) - a
}

func TestWriteCurves(t *testing.T) {
	img := writeAndCheck(t, "ViT-Tiny on MNIST", samplePoints(30))
	if countColored(img, 0x1f, 0x77, 0xb4) == 0 || countColored(img, 0xff, 0x7f, 0x0e) == 0 {
		t.Error("train or test series not drawn")
	}
	if os.Getenv("CURVES_SAMPLE_DIR") != "" {
		// Handy for looking at the output by eye.
		dir := os.Getenv("CURVES_SAMPLE_DIR")
		pts := samplePoints(30)
		pts[7].TestLoss, pts[7].TestAcc = math.NaN(), math.NaN()
		for name, p := range map[string][]Point{"many.png": pts, "one.png": samplePoints(1), "big.png": samplePoints(300)} {
			if err := WriteCurves(filepath.Join(dir, name), "ViT-Tiny on MNIST", p); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestWritePNGSingleEpoch(t *testing.T) {
	img := writeAndCheck(t, "one epoch", samplePoints(1))
	// The single point must be visible as a marker in both colours, in both
	// panels (legend thumbnails alone give a few pixels; markers add more).
	twoPts := samplePoints(1)
	twoPts[0].TrainLoss, twoPts[0].TestLoss = math.NaN(), math.NaN()
	twoPts[0].TrainAcc, twoPts[0].TestAcc = math.NaN(), math.NaN()
	blank := writeAndCheck(t, "one epoch", twoPts)
	for _, c := range [][3]uint8{{0x1f, 0x77, 0xb4}, {0xff, 0x7f, 0x0e}} {
		with, without := countColored(img, c[0], c[1], c[2]), countColored(blank, c[0], c[1], c[2])
		if with <= without {
			t.Errorf("colour %v: %d pixels with the point, %d without: point not drawn", c, with, without)
		}
	}
}

func TestWritePNGNaNAndOrder(t *testing.T) {
	pts := samplePoints(10)
	pts[0].TestLoss = math.NaN()
	pts[3].TrainAcc = math.NaN()
	pts[4].TrainLoss = math.Inf(1)
	pts[9].TestAcc = math.NaN()
	pts[2], pts[7] = pts[7], pts[2] // out of order
	writeAndCheck(t, "with gaps", pts)
}

func TestWritePNGAllNaN(t *testing.T) {
	nan := math.NaN()
	writeAndCheck(t, "", []Point{{Epoch: 0, TrainLoss: nan, TestLoss: nan, TrainAcc: nan, TestAcc: nan}})
	writeAndCheck(t, "", []Point{
		{Epoch: 1, TrainLoss: nan, TestLoss: nan, TrainAcc: 1, TestAcc: 1},
		{Epoch: 2, TrainLoss: 0, TestLoss: 0, TrainAcc: 1, TestAcc: 1},
	})
}

func TestWritePNGEmpty(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "curves.png")
	for _, pts := range [][]Point{nil, {}} {
		if err := WriteCurves(path, "empty", pts); err == nil {
			t.Errorf("WriteCurves(%v) succeeded, want an error", pts)
		}
	}
	assertOnlyFiles(t, dir)
}

func TestWritePNGReplacesAndBadDir(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "curves.png")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteCurves(path, "replace", samplePoints(3)); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("replaced file is not a PNG: %v", err)
	}
	assertOnlyFiles(t, dir, "curves.png")

	if err := WriteCurves(filepath.Join(dir, "missing", "c.png"), "x", samplePoints(3)); err == nil {
		t.Error("WritePNG into a missing directory succeeded")
	}
}

func TestEpochTicks(t *testing.T) {
	for _, tc := range []struct {
		min, max float64
		labels   []string
	}{
		{0.5, 1.5, []string{"1"}},
		{0.5, 10.5, []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}},
		{-0.5, 30.5, []string{"0", "5", "10", "15", "20", "25", "30"}},
		{-5, 300, []string{"0", "50", "100", "150", "200", "250", "300"}},
		{-3.5, 3.5, []string{"-3", "-2", "-1", "0", "1", "2", "3"}},
	} {
		var got []string
		for _, tk := range (epochTicks{}).Ticks(tc.min, tc.max) {
			if tk.Value != math.Trunc(tk.Value) {
				t.Errorf("[%v,%v]: non-integer tick %v", tc.min, tc.max, tk.Value)
			}
			if tk.Label != "" {
				got = append(got, tk.Label)
			}
		}
		if len(got) != len(tc.labels) {
			t.Errorf("[%v,%v]: labels %q, want %q", tc.min, tc.max, got, tc.labels)
			continue
		}
		for i := range got {
			if got[i] != tc.labels[i] {
				t.Errorf("[%v,%v]: labels %q, want %q", tc.min, tc.max, got, tc.labels)
				break
			}
		}
	}
}

// A reference accuracy (the teacher's, for a pruning run) is drawn across
// the accuracy panel and named in the legend; a non-finite one is not.
func TestCurvesDrawTheReference(t *testing.T) {
	dir := t.TempDir()
	count := func(refs ...Reference) int {
		path := filepath.Join(dir, "curves.png")
		if err := WriteCurves(path, "pruning", samplePoints(12), refs...); err != nil {
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
		return countColored(img, refColor.R, refColor.G, refColor.B)
	}
	// Dashes two thirds ink across some 780 px of panel give several
	// hundred pixels of the colour; the legend's sample alone some 40.
	if with, without := count(Reference{Label: "teacher", Accuracy: 0.975}), count(Reference{Label: "teacher", Accuracy: math.NaN()}); with < 300 || without != 0 {
		t.Errorf("%d reference-coloured pixels with the teacher line, %d without", with, without)
	}
	_, panels, err := layout("pruning", samplePoints(12), []Reference{{Label: "teacher", Accuracy: 0.975}})
	if err != nil {
		t.Fatal(err)
	}
	if acc := panels[1]; !slices.Contains(acc.names, "teacher (97.50%)") || acc.Y.Max < 97.5 {
		t.Errorf("accuracy legend %q, y up to %g", acc.names, acc.Y.Max)
	}
}

// The legend goes where it covers none of the lines: the corner the data
// leave free, or, where every corner is taken, to the right of the panels.
func TestLegendKeepsClearOfTheLines(t *testing.T) {
	// Accuracy falling from top left to bottom right, through the bottom
	// right corner where the accuracy legend used to sit.
	var falling, zigzag []Point
	for e := 1; e <= 12; e++ {
		f := float64(e)
		falling = append(falling, Point{Epoch: e, TrainLoss: 0.3 + 0.02*f, TestLoss: 0.35 + 0.015*f, TrainAcc: 0.99 - 0.005*f, TestAcc: 0.975 - 0.004*f})
	}
	for e := 1; e <= 20; e++ {
		v := 0.5 + 0.45*float64(e%2)
		zigzag = append(zigzag, Point{Epoch: e, TrainLoss: 1 - v, TestLoss: 1.1 - v, TrainAcc: v, TestAcc: v - 0.02})
	}
	for name, pts := range map[string][]Point{"falling": falling, "zigzag": zigzag} {
		_, panels, err := layout(name, pts, []Reference{{Label: "teacher", Accuracy: 0.9}})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range panels {
			b := p.legendBox
			for _, s := range p.samples(&p.data) {
				if s.X >= b.Min.X && s.X <= b.Max.X && s.Y >= b.Min.Y && s.Y <= b.Max.Y {
					t.Errorf("%s, %s panel: the legend %v covers its lines at %v", name, p.Title.Text, b, s)
					break
				}
			}
		}
		if acc := panels[1]; name == "falling" {
			covered := acc.legendRect(acc.data, false, false) // the bottom right
			hit := false
			for _, s := range acc.samples(&acc.data) {
				hit = hit || s.X >= covered.Min.X && s.X <= covered.Max.X && s.Y >= covered.Min.Y && s.Y <= covered.Max.Y
			}
			if !hit {
				t.Error("falling: the lines miss the bottom right corner; the case shows nothing")
			}
		} else if acc.legendBox.Min.X < acc.data.Max.X {
			t.Errorf("zigzag: every corner is taken, yet the legend is inside the data area (%v, data to %v)", acc.legendBox, acc.data.Max.X)
		}
	}
}
