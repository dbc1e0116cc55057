package export

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vitc/export/hw"
	"vitc/export/sim"
	"vitc/vit"
)

func writeTestBundle(t *testing.T, cfg vit.Config, sparse bool) (string, *QModel) {
	t.Helper()
	m := testModel(t, cfg, sparse)
	qm, err := Quantize(m, randomImages(cfg, 16, 1), 16)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "bundle")
	golden := randomImages(cfg, 1, 9)
	if _, err := WriteBundle(dir, m, qm, golden, Options{HW: hw.Default(), Meta: vit.Meta{Dataset: "synthetic"}, CalibImages: 16}); err != nil {
		t.Fatal(err)
	}
	return dir, qm
}

func TestBundleReproducesItsGoldenVectors(t *testing.T) {
	cfg := pruned(withAttention(vit.Config{Image: 8, Channels: 1, Patch: 2, Dim: 64, Depth: 3, Heads: 4, MLPRatio: 2, Classes: 10}, "taylor"))
	dir, qm := writeTestBundle(t, cfg, true)
	lb, err := OpenBundle(dir, hw.Default())
	if err != nil {
		t.Fatal(err)
	}
	if d := qm.Reference(lb.Golden).Diff(lb.Expected); d != "" {
		t.Fatalf("golden files against the reference: %s", d)
	}
	r, err := sim.NewRunner(lb.Program)
	if err != nil {
		t.Fatal(err)
	}
	got, stats, err := r.Run(lb.Golden)
	if err != nil {
		t.Fatal(err)
	}
	if d := got.Diff(lb.Expected); d != "" {
		t.Fatalf("simulated bundle against its golden vectors: %s", d)
	}
	var sum int64
	for _, l := range stats.Layers {
		sum += l.Cycles
	}
	if sum != stats.Cycles || stats.Cycles <= 0 || len(stats.Layers) != cfg.Depth+2 {
		t.Fatalf("%d layers' cycles sum to %d, total %d", len(stats.Layers), sum, stats.Cycles)
	}
	m, _, err := lb.FloatModel()
	if err != nil || m.Config.Attention != "taylor" {
		t.Fatalf("float model: %v", err)
	}
}

func TestBundleRefusesOtherHardware(t *testing.T) {
	cfg := withAttention(vit.Config{Image: 8, Channels: 1, Patch: 4, Dim: 32, Depth: 1, Heads: 2, MLPRatio: 2, Classes: 3}, "softmax")
	dir, _ := writeTestBundle(t, cfg, false)
	other := hw.Default()
	other.DRAMBytesPerCycle *= 2
	_, err := OpenBundle(dir, other)
	if err == nil || !strings.Contains(err.Error(), "compiled for hardware") {
		t.Fatalf("a bundle ran on other hardware: %v", err)
	}
}

func TestBundleRefusesAnyFlippedByte(t *testing.T) {
	cfg := withAttention(vit.Config{Image: 8, Channels: 1, Patch: 4, Dim: 32, Depth: 1, Heads: 2, MLPRatio: 2, Classes: 3}, "softmax")
	dir, _ := writeTestBundle(t, cfg, false)
	var files []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) < 10 {
		t.Fatalf("bundle has %d files", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// First, last and a middle byte of every file (export/bundle's own
		// test flips every byte of a smaller bundle).
		for _, i := range []int{0, len(data) / 2, len(data) - 1} {
			flipped := []byte(string(data))
			flipped[i] ^= 0x20
			os.WriteFile(f, flipped, 0o644)
			if _, err := OpenBundle(dir, hw.Default()); err == nil {
				t.Errorf("%s: byte %d flipped and the bundle still opened", f, i)
			}
			os.WriteFile(f, data, 0o644)
		}
	}
	if _, err := OpenBundle(dir, hw.Default()); err != nil {
		t.Fatalf("restored bundle: %v", err)
	}
}

// The calibration graph is the model's own forward pass.
func TestFloatGraphMatchesModel(t *testing.T) {
	for _, att := range []string{"softmax", "taylor"} {
		cfg := pruned(withAttention(vit.Config{Image: 8, Channels: 1, Patch: 2, Dim: 64, Depth: 3, Heads: 4, MLPRatio: 2, Classes: 10}, att))
		m := testModel(t, cfg, true)
		imgs := randomImages(cfg, 4, 5)
		want := vit.Predict(m, imgs, 4, 4)
		f := newFloatModel(m)
		chw := cfg.Channels * cfg.Image * cfg.Image
		for i := 0; i < 4; i++ {
			got := f.forward(imgs[i*chw : (i+1)*chw])
			for k, v := range got {
				if d := math.Abs(float64(v - want[i*cfg.Classes+k])); d > 1e-3*(1+math.Abs(float64(v))) {
					t.Fatalf("%s image %d logit %d: %g against the model's %g", att, i, k, v, want[i*cfg.Classes+k])
				}
			}
		}
	}
}

// The cycle model rewards what pruning removes.
func TestPrunedModelTakesFewerCycles(t *testing.T) {
	base := vit.Config{Image: 16, Channels: 1, Patch: 2, Dim: 64, Depth: 3, Heads: 4, MLPRatio: 2, Classes: 10}
	cycles := func(cfg vit.Config, sparse bool) int64 {
		qm, _, r := compileForTest(t, testModel(t, cfg, sparse), 4)
		_, s, err := r.Run(qm.QuantizeInput(randomImages(cfg, 1, 2)))
		if err != nil {
			t.Fatal(err)
		}
		return s.Cycles
	}
	dense := cycles(withAttention(base, "softmax"), false)
	prunedTaylor := cycles(pruned(withAttention(base, "taylor")), true)
	if !(prunedTaylor < dense) {
		t.Fatalf("pruned Taylor model %d cycles, dense softmax %d", prunedTaylor, dense)
	}
	t.Logf("dense softmax %d cycles, pruned Taylor %d: %.2f×", dense, prunedTaylor, float64(dense)/float64(prunedTaylor))
}
