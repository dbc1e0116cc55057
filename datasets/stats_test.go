package datasets

import (
	"math"
	"testing"
)

func TestComputeStatsUsesTrainOnly(t *testing.T) {
	d := &Dataset{C: 2, H: 1, W: 2}
	// Channel 0 values 0,1,0,1 (mean .5, std .5); channel 1 constant .25.
	d.Train = Split{X: []float32{0, 1, .25, .25, 1, 0, .25, .25}, Y: []int{0, 0}}
	d.Test = Split{X: []float32{9, 9, 9, 9}, Y: []int{0}}
	st := ComputeStats(d)
	if math.Abs(float64(st.Mean[0])-.5) > 1e-7 || math.Abs(float64(st.Std[0])-.5) > 1e-7 {
		t.Errorf("channel 0: mean %v std %v, want .5 .5", st.Mean[0], st.Std[0])
	}
	if st.Mean[1] != .25 || st.Std[1] != minStd {
		t.Errorf("constant channel: mean %v std %v, want .25 %v", st.Mean[1], st.Std[1], float32(minStd))
	}
}

func TestNormalize(t *testing.T) {
	st := Stats{Mean: []float32{.5, 1}, Std: []float32{.5, 2}}
	x := []float32{0, 1, 1, 3, 1, .5, 5, -1}
	st.Normalize(x, 2, 1, 2)
	want := []float32{-1, 1, 0, 1, 1, 0, 2, -1}
	for i := range x {
		if math.Abs(float64(x[i]-want[i])) > 1e-6 {
			t.Fatalf("got %v, want %v", x, want)
		}
	}
	// Empty stats mean "no normalisation".
	y := []float32{.3}
	Stats{}.Normalize(y, 1, 1, 1)
	if y[0] != .3 {
		t.Fatal("empty Stats changed the data")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Normalize accepted a partial image")
		}
	}()
	st.Normalize(make([]float32, 3), 2, 1, 2)
}
