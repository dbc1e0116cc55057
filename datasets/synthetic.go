package datasets

import (
	"math"
	"runtime"
	"sync"
)

// The synthetic set is vitc's built-in default: it needs no download, and
// it is designed so that a ViT with 4x4 patches on 28x28 inputs has to
// relate patches to one another. Every class is a shape or an arrangement
// whose identity lies in its global outline (corners against curves, one
// blob against two, bars across against bars down) at a random position,
// size, stroke width and contrast, over a sloped background with noise, so
// no single pixel or patch position decides the label.
//
// Every class is mirror-symmetric in distribution (each shape is symmetric
// about a vertical axis, or its random orientation is), so a horizontal
// flip of an image is another image of the same class and FlipOK is true.
const (
	synthSide  = 28
	synthTrain = 6000
	synthTest  = 1000
)

// SyntheticClasses are the synthetic set's class names, in label order.
var SyntheticClasses = []string{
	"disc",     // filled circle
	"ring",     // circle outline
	"square",   // filled axis-aligned square
	"frame",    // square outline
	"triangle", // filled isosceles triangle, apex up or down
	"plus",     // upright cross
	"cross",    // diagonal cross (X)
	"hbars",    // 2-4 horizontal bars
	"vbars",    // 2-4 vertical bars
	"pair",     // two small discs at a random angle
}

const (
	tagSynthTrain = 0x73796e74 // "synt"
	tagSynthTest  = 0x73796e65 // "syne"
	tagSynthOrder = 0x73796e6f // "syno"
)

// Synthetic generates the default dataset: 6000 training and 1000 test
// images of 28x28x1, balanced over SyntheticClasses, a pure function of
// seed.
func Synthetic(seed int64) *Dataset {
	return synthetic(seed, synthTrain, synthTest)
}

func synthetic(seed int64, nTrain, nTest int) *Dataset {
	d := &Dataset{
		Named: true,
		Name:  "synthetic", C: 1, H: synthSide, W: synthSide,
		Classes: append([]string(nil), SyntheticClasses...),
		FlipOK:  true,
	}
	d.Train = synthSplit(uint64(seed), tagSynthTrain, nTrain)
	d.Test = synthSplit(uint64(seed), tagSynthTest, nTest)
	return d
}

// synthSplit draws n images with labels balanced to within one, in a
// shuffled order so that an unshuffled pass does not see the classes
// cycle. Each image comes from its own stream, so the work splits across
// cores without changing a single byte.
func synthSplit(seed, tag uint64, n int) Split {
	k := len(SyntheticClasses)
	s := Split{X: make([]float32, n*synthSide*synthSide), Y: make([]int, n)}
	for i := range s.Y {
		s.Y[i] = i % k
	}
	r := newRNG(seed, tag, tagSynthOrder)
	for i := n - 1; i > 0; i-- {
		j := r.intn(i + 1)
		s.Y[i], s.Y[j] = s.Y[j], s.Y[i]
	}
	workers := min(runtime.GOMAXPROCS(0), max(1, n/256))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				r := newRNG(seed, tag, uint64(i))
				drawSynth(s.X[i*synthSide*synthSide:(i+1)*synthSide*synthSide], s.Y[i], &r)
			}
		})
	}
	wg.Wait()
	return s
}

// shape is a signed distance in pixels (negative inside) from a point
// relative to the shape's centre.
type shape func(dx, dy float64) float64

// drawSynth renders one image of class label into img (synthSide^2).
func drawSynth(img []float32, label int, r *rng) {
	sh, ex, ey := synthShape(label, r)
	// Keep the whole shape (plus its antialiased edge) inside the frame.
	const margin = 0.5
	cx := r.uniform(ex+margin, synthSide-ex-margin)
	cy := r.uniform(ey+margin, synthSide-ey-margin)

	bg := r.uniform(0, 0.25)
	gx, gy := r.uniform(-0.1, 0.1), r.uniform(-0.1, 0.1)
	contrast := r.uniform(0.4, 0.75)
	sigma := r.uniform(0.02, 0.1)

	for y := range synthSide {
		py := float64(y) + 0.5
		for x := range synthSide {
			px := float64(x) + 0.5
			// One pixel of linear ramp across the boundary antialiases the
			// edge, so small shapes keep their outline.
			cover := min(max(0.5-sh(px-cx, py-cy), 0), 1)
			v := bg + gx*(px/synthSide-0.5) + gy*(py/synthSide-0.5) + contrast*cover + sigma*r.noise()
			img[y*synthSide+x] = float32(min(max(v, 0), 1))
		}
	}
}

// synthShape draws the random parameters of one class instance and returns
// its distance function with its half-extents in x and y.
func synthShape(label int, r *rng) (sh shape, ex, ey float64) {
	switch SyntheticClasses[label] {
	case "disc":
		rad := r.uniform(5, 10)
		return func(dx, dy float64) float64 { return math.Sqrt(dx*dx+dy*dy) - rad }, rad, rad
	case "ring":
		rad, w := r.uniform(6, 11), r.uniform(1.5, 3)/2
		return func(dx, dy float64) float64 { return math.Abs(math.Sqrt(dx*dx+dy*dy)-rad) - w }, rad + w, rad + w
	case "square":
		h := r.uniform(4.5, 9.5)
		return func(dx, dy float64) float64 { return max(math.Abs(dx), math.Abs(dy)) - h }, h, h
	case "frame":
		h, w := r.uniform(5.5, 11), r.uniform(1.5, 3)/2
		return func(dx, dy float64) float64 { return math.Abs(max(math.Abs(dx), math.Abs(dy))-h) - w }, h + w, h + w
	case "triangle":
		hb, hh := r.uniform(5, 11), r.uniform(5, 10) // half base, half height
		up := 1.0
		if r.next()&1 == 0 {
			up = -1
		}
		// Slanted sides as lines through the apex (0, -up*hh) and the base
		// corners (+-hb, up*hh); nx, ny is their unit outward normal.
		l := math.Hypot(2*hh, hb)
		nx, ny := 2*hh/l, -up*hb/l
		return func(dx, dy float64) float64 {
			base := up*dy - hh
			side := math.Abs(dx)*nx + (dy+up*hh)*ny
			return max(base, side)
		}, hb, hh
	case "plus":
		arm, w := r.uniform(5, 11), r.uniform(1.8, 3.6)/2
		return func(dx, dy float64) float64 {
			ax, ay := math.Abs(dx), math.Abs(dy)
			return min(max(ax-arm, ay-w), max(ax-w, ay-arm))
		}, arm, arm
	case "cross":
		arm, w := r.uniform(6, 13), r.uniform(1.8, 3.6)/2
		e := (arm + w) / math.Sqrt2
		return func(dx, dy float64) float64 {
			u, v := math.Abs(dx+dy)/math.Sqrt2, math.Abs(dx-dy)/math.Sqrt2
			return min(max(u-arm, v-w), max(u-w, v-arm))
		}, e, e
	case "hbars", "vbars":
		bars := 2 + r.intn(3)
		w := r.uniform(1.8, 3.2) / 2
		gap := 2*w + r.uniform(1.5, 3.5) // centre to centre
		length := r.uniform(6, 11)       // half length
		span := float64(bars-1)/2*gap + w
		vertical := SyntheticClasses[label] == "vbars"
		sh := func(along, across float64) float64 {
			// Distance to the nearest bar centre line, bars at
			// (i - (bars-1)/2) * gap.
			k := math.Round(across/gap + float64(bars-1)/2)
			k = min(max(k, 0), float64(bars-1))
			d := math.Abs(across - (k-float64(bars-1)/2)*gap)
			return max(math.Abs(along)-length, d-w)
		}
		if vertical {
			return func(dx, dy float64) float64 { return sh(dy, dx) }, span, length
		}
		return sh, length, span
	case "pair":
		rad := r.uniform(2.5, 4)
		half := rad + r.uniform(1.5, 5) // half the centre distance
		s, c := math.Sincos(r.uniform(0, math.Pi))
		ox, oy := half*c, half*s
		return func(dx, dy float64) float64 {
			return min(math.Sqrt((dx-ox)*(dx-ox)+(dy-oy)*(dy-oy)), math.Sqrt((dx+ox)*(dx+ox)+(dy+oy)*(dy+oy))) - rad
		}, math.Abs(ox) + rad, math.Abs(oy) + rad
	}
	panic("datasets: no shape for synthetic class " + SyntheticClasses[label])
}
