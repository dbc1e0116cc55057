package export

import (
	"fmt"
	"math"
)

// Calibration methods: how an int8 activation tensor's clipping range is
// chosen from the values the float model produced on the calibration
// images. Only the scales change; the integer program is the same.
const (
	CalibAbsmax     = "absmax"     // the largest magnitude: nothing clips
	CalibPercentile = "percentile" // that percentile of the magnitudes
	CalibMSE        = "mse"        // the clip minimising the int8 quantisation MSE
)

// DefaultCalibMethod is chosen by measurement (docs/quantization.md), for
// int8 activations; DefaultCalibMethod16 for int16 ones, whose rounding is
// 256× finer, so that clipping the rarest 0.01 % of values (percentile)
// costs more than it saves: mse, which weighs the two at the tensor's own
// bit width, then hardly clips.
const (
	DefaultCalibMethod   = CalibPercentile
	DefaultCalibMethod16 = CalibMSE
)

// DefaultMethodFor is the default calibration method for bits-bit
// activations.
func DefaultMethodFor(bits int) string {
	if bits == 16 {
		return DefaultCalibMethod16
	}
	return DefaultCalibMethod
}

// DefaultCalibPercentile is the percentile method's default, in percent.
const DefaultCalibPercentile = 99.99

// CalibOptions choose the calibration method; the zero value is the
// default method.
type CalibOptions struct {
	Method     string  // CalibAbsmax, CalibPercentile or CalibMSE ("": DefaultMethodFor(ActBits))
	Percentile float64 // in (0, 100], for CalibPercentile (0: default)
	// ActBits is the width of the activation tensors, 8 or 16 (0: 8): with
	// 16 each tensor's calibrated clip maps to 32767 instead of 127.
	ActBits int
}

func (o CalibOptions) resolved() (CalibOptions, error) {
	if o.ActBits == 0 {
		o.ActBits = 8
	}
	if o.Method == "" {
		o.Method = DefaultMethodFor(o.ActBits)
	}
	if o.Percentile == 0 {
		o.Percentile = DefaultCalibPercentile
	}
	if o.ActBits != 8 && o.ActBits != 16 {
		return o, fmt.Errorf("activation bits %d: want 8 or 16", o.ActBits)
	}
	switch o.Method {
	case CalibAbsmax, CalibPercentile, CalibMSE:
	default:
		return o, fmt.Errorf("calibration method %q: want %s, %s or %s", o.Method, CalibAbsmax, CalibPercentile, CalibMSE)
	}
	if !(o.Percentile > 0 && o.Percentile <= 100) {
		return o, fmt.Errorf("calibration percentile %g: want a value in (0, 100]", o.Percentile)
	}
	return o, nil
}

// histBins is the resolution of the magnitude histograms: the range is
// [0, top) with top at most twice the largest magnitude, so a bin is at
// most absmax/2^13.
const histBins = 1 << 14

// magHist is a histogram of |x| built in one pass: when a value reaches
// top, neighbouring bins merge pairwise and top doubles.
type magHist struct {
	top    float64
	counts []float64
	n      float64
}

func (h *magHist) add(xs []float32) {
	if h.counts == nil {
		h.counts = make([]float64, histBins)
	}
	for _, v := range xs {
		a := math.Abs(float64(v))
		if math.IsNaN(a) || math.IsInf(a, 0) {
			continue
		}
		switch {
		case a == 0: // bin 0 whatever the range (which zeros cannot set)
			h.counts[0]++
			h.n++
			continue
		case a >= h.top:
			h.grow(a)
		}
		h.counts[min(int(a/h.top*histBins), histBins-1)]++
		h.n++
	}
}

// grow makes a < top: the first time by taking the next power of two above
// a, then by doubling.
func (h *magHist) grow(a float64) {
	if h.top == 0 {
		h.top = math.Ldexp(1, math.Ilogb(a)+1)
		return
	}
	for a >= h.top {
		for i := 0; i < histBins/2; i++ {
			h.counts[i] = h.counts[2*i] + h.counts[2*i+1]
		}
		clear(h.counts[histBins/2:])
		h.top *= 2
	}
}

// percentile is the magnitude below which p percent of the values lie,
// interpolated within its bin; 0 for an empty histogram.
func (h *magHist) percentile(p float64) float64 {
	if h.n == 0 {
		return 0
	}
	target := p / 100 * h.n
	w := h.top / histBins
	var cum float64
	for i, c := range h.counts {
		if c > 0 && cum+c >= target {
			return (float64(i) + (target-cum)/c) * w
		}
		cum += c
	}
	return h.top
}

// mseClip is the clip c ≤ hi minimising the expected squared error of
// symmetric int8 quantisation with step Δ = c/levels: Δ²/12 per value
// inside the range (rounding), (|x| − c)² per value beyond it (clipping).
// Candidates are the bin edges up to hi; prefix sums make each O(1).
func (h *magHist) mseClip(hi, levels float64) float64 {
	if h.n == 0 || hi <= 0 {
		return hi
	}
	w := h.top / histBins
	// Above-c totals, accumulated from the top bin down: count, Σv, Σv².
	var n1, s1, s2 float64
	best, bestErr := hi, math.Inf(1)
	last := min(histBins, int(math.Ceil(hi/w)))
	for i := histBins - 1; i >= 0; i-- {
		v := (float64(i) + 0.5) * w
		c := float64(i+1) * w // the candidate at the bin's upper edge
		if i < last {
			c = min(c, hi)
			d := c / levels
			below := h.n - n1
			e := below*d*d/12 + s2 - 2*c*s1 + c*c*n1
			if e < bestErr {
				best, bestErr = c, e
			}
		}
		n1 += h.counts[i]
		s1 += h.counts[i] * v
		s2 += h.counts[i] * v * v
	}
	return best
}
