package datasets

import (
	"slices"
	"testing"
)

func TestSyntheticDeterministic(t *testing.T) {
	a, b, c := Synthetic(7), Synthetic(7), Synthetic(8)
	if !slices.Equal(a.Train.X, b.Train.X) || !slices.Equal(a.Train.Y, b.Train.Y) ||
		!slices.Equal(a.Test.X, b.Test.X) || !slices.Equal(a.Test.Y, b.Test.Y) {
		t.Fatal("same seed gave different data")
	}
	if slices.Equal(a.Train.X, c.Train.X) || slices.Equal(a.Test.X, c.Test.X) {
		t.Fatal("different seeds gave the same images")
	}
	if slices.Equal(a.Train.X[:784*100], a.Test.X[:784*100]) {
		t.Fatal("train and test splits share images")
	}
}

func TestSyntheticShapeBalanceRange(t *testing.T) {
	d := Synthetic(1)
	if d.Name != "synthetic" || d.C != 1 || d.H != 28 || d.W != 28 {
		t.Fatalf("got %s %dx%dx%d", d.Name, d.C, d.H, d.W)
	}
	if len(d.Classes) < 10 {
		t.Fatalf("%d classes, want at least 10", len(d.Classes))
	}
	for _, sp := range []struct {
		name string
		s    Split
		n    int
	}{{"train", d.Train, 6000}, {"test", d.Test, 1000}} {
		if sp.s.Len() != sp.n || len(sp.s.X) != sp.n*784 {
			t.Fatalf("%s: %d labels, %d values", sp.name, sp.s.Len(), len(sp.s.X))
		}
		count := make([]int, len(d.Classes))
		for _, y := range sp.s.Y {
			if y < 0 || y >= len(d.Classes) {
				t.Fatalf("%s: label %d out of range", sp.name, y)
			}
			count[y]++
		}
		for c, k := range count {
			if k != sp.n/len(d.Classes) {
				t.Errorf("%s: class %s has %d images, want %d", sp.name, d.Classes[c], k, sp.n/len(d.Classes))
			}
		}
		for _, v := range sp.s.X {
			if !(v >= 0 && v <= 1) {
				t.Fatalf("%s: value %v outside [0,1]", sp.name, v)
			}
		}
	}
	// Labels arrive shuffled, not cycling through the classes.
	if slices.Equal(d.Train.Y[:20], []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
		t.Error("labels are in class order")
	}
}

// FlipOK is claimed for the synthetic set; every class but "pair" must be
// mirror-symmetric instance by instance (pair is symmetric through the
// uniform distribution of its angle).
func TestSyntheticShapesMirrorSymmetric(t *testing.T) {
	if !Synthetic(1).FlipOK {
		t.Skip("FlipOK is false; nothing to check")
	}
	for label, name := range SyntheticClasses {
		if name == "pair" {
			continue
		}
		for inst := range 20 {
			r := newRNG(99, uint64(label), uint64(inst))
			sh, ex, ey := synthShape(label, &r)
			if ex > 13.5 || ey > 13.5 {
				t.Fatalf("%s: extent %.1fx%.1f does not fit 28x28", name, ex, ey)
			}
			for dy := -14.0; dy <= 14; dy += 0.75 {
				for dx := 0.25; dx <= 14; dx += 0.75 {
					if a, b := sh(dx, dy), sh(-dx, dy); a != b && (a < 0.5 || b < 0.5) {
						t.Fatalf("%s: sd(%v,%v)=%v but sd(%v,%v)=%v", name, dx, dy, a, -dx, dy, b)
					}
				}
			}
		}
	}
}

// Shapes sit at random positions and sizes, so a per-pixel template should
// do poorly; if nearest-centroid classification did well, the set would be
// too easy to tell a ViT from a lookup table.
func TestSyntheticNotPixelSeparable(t *testing.T) {
	d := synthetic(3, 2000, 500)
	k, px := len(d.Classes), d.C*d.H*d.W
	cent := make([]float64, k*px)
	cnt := make([]float64, k)
	for i, y := range d.Train.Y {
		cnt[y]++
		for j, v := range d.Train.X[i*px : (i+1)*px] {
			cent[y*px+j] += float64(v)
		}
	}
	for c := range k {
		for j := range px {
			cent[c*px+j] /= cnt[c]
		}
	}
	right := 0
	for i, y := range d.Test.Y {
		best, bestD := -1, 0.0
		for c := range k {
			dist := 0.0
			for j, v := range d.Test.X[i*px : (i+1)*px] {
				e := float64(v) - cent[c*px+j]
				dist += e * e
			}
			if best < 0 || dist < bestD {
				best, bestD = c, dist
			}
		}
		if best == y {
			right++
		}
	}
	acc := float64(right) / float64(d.Test.Len())
	t.Logf("nearest-centroid accuracy %.3f (chance %.3f)", acc, 1/float64(k))
	if acc > 0.6 {
		t.Errorf("nearest-centroid accuracy %.3f: classes are separable pixel by pixel", acc)
	}
}

func BenchmarkSynthetic(b *testing.B) {
	for i := range b.N {
		Synthetic(int64(i))
	}
}
