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
//
// The images are made (resized, converted) in blocks on worker goroutines
// and summed in order, image by image, so the sums are those of one pass
// over the split whatever the core count.
func ComputeStats(d *Dataset) Stats {
	st := Stats{Mean: make([]float32, d.C), Std: make([]float32, d.C)}
	plane := d.H * d.W
	n := d.Train.Len()
	sum, sq := make([]float64, d.C), make([]float64, d.C)
	const block = 64
	imgs := make([][]float32, min(block, n))
	scratch := make([]imageScratch, imageWorkers)
	for lo := 0; lo < n; lo += block {
		hi := min(lo+block, n)
		parallelImages(hi-lo, d.C*plane, func(w, k int) {
			imgs[k] = append(imgs[k][:0], d.image(&d.Train, lo+k, &scratch[w])...)
		})
		for c := range d.C {
			for k := range hi - lo {
				for _, v := range imgs[k][c*plane : (c+1)*plane] {
					sum[c] += float64(v)
					sq[c] += float64(v) * float64(v)
				}
			}
		}
	}
	for c := range d.C {
		sum, sq := sum[c], sq[c]
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
