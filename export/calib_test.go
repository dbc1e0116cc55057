package export

import (
	"math"
	"strings"
	"testing"

	"vitc/export/hw"
	"vitc/export/sim"
	"vitc/vit"
)

// The histogram keeps every value through its range doublings, and its
// percentiles and MSE clip land where the distribution puts them.
func TestMagnitudeHistogram(t *testing.T) {
	var h magHist
	h.add([]float32{0.001})
	xs := make([]float32, 100000)
	for i := range xs {
		xs[i] = float32(i%1000) / 1000 // uniform on [0, 1)
		if i%2 == 1 {
			xs[i] = -xs[i]
		}
	}
	h.add(xs)
	h.add([]float32{1000}) // one outlier, 2^20 times the first value
	var total float64
	for _, c := range h.counts {
		total += c
	}
	if total != float64(len(xs)+2) || h.n != total || h.top <= 1000 || h.top > 2000 {
		t.Fatalf("count %g (n %g), top %g", total, h.n, h.top)
	}
	if p := h.percentile(50); math.Abs(p-0.5) > 0.07 { // bins are top/2^14 ≈ 0.06 wide now
		t.Errorf("median magnitude %g, want about 0.5", p)
	}
	if p := h.percentile(100); p < 999 {
		t.Errorf("100th percentile %g below the outlier", p)
	}
	// Rounding costs the bulk N·(c/127)²/12, clipping the outlier
	// (1000−c)²: the minimum is at c = 2000 / (N/(6·127²) + 2).
	n := float64(len(xs) + 1)
	if c, want := h.mseClip(1000, 127), 2000/(n/(6*127*127)+2); math.Abs(c-want) > 0.01*want {
		t.Errorf("MSE clip %g, want %g", c, want)
	}
	var empty magHist
	if empty.percentile(99) != 0 || empty.mseClip(3, 127) != 3 {
		t.Errorf("an empty histogram")
	}
}

// Every method changes only the scales: the simulator still matches the
// integer reference bit for bit, and percentile and MSE clip below absmax.
func TestCalibrationMethodsStayBitExact(t *testing.T) {
	base := vit.Config{Image: 8, Channels: 1, Patch: 2, Dim: 64, Depth: 2, Heads: 4, MLPRatio: 2, Classes: 10, Attention: "taylor"}
	m := testModel(t, pruned3(base), true)
	calib := randomImages(m.Config, 16, 1)
	scales := map[string]map[string]float64{}
	for _, method := range []string{CalibAbsmax, CalibPercentile, CalibMSE} {
		qm, err := QuantizeWith(m, calib, 16, CalibOptions{Method: method, Percentile: 99.9})
		if err != nil {
			t.Fatal(err)
		}
		if qm.Calib.Method != method {
			t.Fatalf("recorded method %q", qm.Calib.Method)
		}
		scales[method] = qm.Scales
		cp, err := Compile(qm, hw.Default())
		if err != nil {
			t.Fatal(err)
		}
		r, err := sim.NewRunner(cp.SimProgram(hw.Default()))
		if err != nil {
			t.Fatal(err)
		}
		imgs := randomImages(m.Config, 4, 5)
		chw := base.Channels * base.Image * base.Image
		for i := 0; i < 4; i++ {
			in := qm.QuantizeInput(imgs[i*chw : (i+1)*chw])
			got, _, err := r.Run(in)
			if err != nil {
				t.Fatal(err)
			}
			if d := got.Diff(qm.Reference(in)); d != "" {
				t.Fatalf("%s, image %d: %s", method, i, d)
			}
		}
	}
	for _, method := range []string{CalibPercentile, CalibMSE} {
		smaller := 0
		for name, s := range scales[method] {
			a := scales[CalibAbsmax][name]
			if s > a*(1+1e-12) {
				t.Errorf("%s: %s scale %g above absmax's %g", method, name, s, a)
			}
			if s < a {
				smaller++
			}
			if (strings.HasSuffix(name, ".fc1") || name == "logits") && s != a {
				t.Errorf("%s: wide tensor %s scale %g, absmax %g", method, name, s, a)
			}
		}
		if smaller == 0 {
			t.Errorf("%s clips nothing", method)
		}
	}
	if _, err := QuantizeWith(m, calib, 16, CalibOptions{Method: "kl"}); err == nil || !strings.Contains(err.Error(), "calibration method") {
		t.Errorf("method kl: %v", err)
	}
	if _, err := QuantizeWith(m, calib, 16, CalibOptions{Method: CalibPercentile, Percentile: 101}); err == nil || !strings.Contains(err.Error(), "calibration percentile") {
		t.Errorf("percentile 101: %v", err)
	}
}

// pruned3 is pruned for a 2-block model: one pruning block.
func pruned3(c vit.Config) vit.Config {
	c.LayerHeads = []int{4, 3}
	c.LayerHidden = []int{128, 80}
	c.TokenKeep = 0.7
	c.TokenLayers = []int{0}
	return c
}

// The default method follows the activation width, 16-bit scales put the
// same clip on 32767, and an unsupported width is refused naming the option.
func TestActBitsCalibration(t *testing.T) {
	base := vit.Config{Image: 8, Channels: 1, Patch: 2, Dim: 32, Depth: 1, Heads: 2, MLPRatio: 2, Classes: 10, Attention: "softmax"}
	m := testModel(t, base, false)
	calib := randomImages(m.Config, 16, 1)
	q8, err := QuantizeWith(m, calib, 16, CalibOptions{})
	if err != nil {
		t.Fatal(err)
	}
	q16, err := QuantizeWith(m, calib, 16, CalibOptions{ActBits: 16})
	if err != nil {
		t.Fatal(err)
	}
	if q8.Calib.Method != CalibPercentile || q8.ActBits != 8 || q16.Calib.Method != CalibMSE || q16.ActBits != 16 {
		t.Fatalf("defaults: 8 bits %s/%d, 16 bits %s/%d", q8.Calib.Method, q8.ActBits, q16.Calib.Method, q16.ActBits)
	}
	a8, err := QuantizeWith(m, calib, 16, CalibOptions{Method: CalibAbsmax})
	if err != nil {
		t.Fatal(err)
	}
	a16, err := QuantizeWith(m, calib, 16, CalibOptions{Method: CalibAbsmax, ActBits: 16})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"input", "x0", "blocks.0.q", "blocks.0.gelu", "norm"} {
		if r := a8.Scales[name] / a16.Scales[name]; math.Abs(r-32767.0/127) > 1e-9*r {
			t.Errorf("%s: absmax scales 8/16 bits in ratio %g, want 32767/127", name, r)
		}
	}
	if _, err := QuantizeWith(m, calib, 16, CalibOptions{ActBits: 12}); err == nil || !strings.Contains(err.Error(), "activation bits 12") {
		t.Fatalf("12-bit activations: %v", err)
	}
}

// Agreement (run on every core) counts the images whose integer top-1 class
// is the float model's, at either activation width, as a serial count does.
func TestAgreementOnImages(t *testing.T) {
	base := vit.Config{Image: 8, Channels: 1, Patch: 2, Dim: 32, Depth: 2, Heads: 2, MLPRatio: 2, Classes: 10, Attention: "softmax"}
	m := testModel(t, base, false)
	const n = 24
	imgs := randomImages(m.Config, n, 5)
	logits := vit.Predict(m, imgs, n, 8)
	chw := base.Channels * base.Image * base.Image
	for _, bits := range []int{8, 16} {
		qm, err := QuantizeWith(m, imgs, n, CalibOptions{ActBits: bits})
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		for i := 0; i < n; i++ {
			tr := qm.Reference(qm.QuantizeInput(imgs[i*chw : (i+1)*chw]))
			if sim.Argmax(tr.Logits) == vit.Argmax(logits[i*base.Classes:(i+1)*base.Classes]) {
				want++
			}
		}
		if got := qm.Agreement(imgs, logits, n); got != float64(want)/n || want == 0 {
			t.Fatalf("%d bits: agreement %g, want %d of %d", bits, got, want, n)
		}
	}
}
