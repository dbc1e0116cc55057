package datasets

import (
	"fmt"
	"math"
)

// Stats are per-channel normalisation constants. They travel with a trained
// model (in its checkpoint) because inputs at prediction time must be
// normalised exactly as the training data was.
type Stats struct{ Mean, Std []float32 }

// minStd keeps a constant channel (a blank synthetic border, say) from
// turning into a division by zero.
const minStd = 1e-6

// ComputeStats measures the training split only, so nothing about the test
// images leaks into training. Sums are in float64: a float32 running sum
// over 50k CIFAR images would lose most of its digits.
func ComputeStats(d *Dataset) Stats {
	st := Stats{Mean: make([]float32, d.C), Std: make([]float32, d.C)}
	plane := d.H * d.W
	n := d.Train.Len()
	for c := range d.C {
		var sum, sq float64
		for i := range n {
			for _, v := range d.Train.X[(i*d.C+c)*plane : (i*d.C+c+1)*plane] {
				sum += float64(v)
				sq += float64(v) * float64(v)
			}
		}
		cnt := float64(n * plane)
		if cnt == 0 {
			st.Mean[c], st.Std[c] = 0, 1
			continue
		}
		mean := sum / cnt
		std := math.Sqrt(max(sq/cnt-mean*mean, 0))
		st.Mean[c], st.Std[c] = float32(mean), float32(max(std, minStd))
	}
	return st
}

// Normalize maps raw [0,1] images to (x-mean)/std per channel, in place. x
// holds whole images of C*H*W values. Empty Stats leave x unchanged, which
// lets a caller disable normalisation without a special case.
func (s Stats) Normalize(x []float32, C, H, W int) {
	if len(s.Mean) == 0 {
		return
	}
	if len(s.Mean) != C || len(s.Std) != C {
		panic(fmt.Sprintf("datasets: Stats has %d means and %d stds for %d channels", len(s.Mean), len(s.Std), C))
	}
	plane := H * W
	if plane == 0 || len(x)%(C*plane) != 0 {
		panic(fmt.Sprintf("datasets: Normalize: %d values is not a whole number of %dx%dx%d images", len(x), C, H, W))
	}
	for i := 0; i < len(x); i += plane {
		c := (i / plane) % C
		m, inv := s.Mean[c], 1/s.Std[c]
		row := x[i : i+plane]
		for j, v := range row {
			row[j] = (v - m) * inv
		}
	}
}
