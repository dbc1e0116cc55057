package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vitc/export/hw"
)

// One tiny trained model serves every export and sim test.
func TestExportAndSim(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := vitcRun(t, "train", "--out", dir, "--epochs", "1", "--dim", "32", "--depth", "2", "--heads", "2", "--batch", "64"); code != 0 {
		t.Fatalf("train: %s", errOut)
	}
	ckpt := filepath.Join(dir, "model.safetensors")
	bundleDir := filepath.Join(t.TempDir(), "bundle")
	code, stdout, errOut := vitcRun(t, "export", "--checkpoint", ckpt, "--out", bundleDir, "--calib-images", "64", "--json")
	if code != 0 {
		t.Fatalf("export exit %d: %s", code, errOut)
	}
	var ex exportReport
	if err := json.Unmarshal([]byte(stdout), &ex); err != nil {
		t.Fatalf("export report %q: %v", stdout, err)
	}
	if ex.Instructions == 0 || ex.CalibImages != 64 || ex.HWFingerprint != hw.Default().Fingerprint() {
		t.Fatalf("export report %+v", ex)
	}
	t.Run("sim", func(t *testing.T) { testSim(t, bundleDir) })
	t.Run("sim layers", func(t *testing.T) { testSimLayers(t, bundleDir) })
	t.Run("inspect", func(t *testing.T) { testInspectBundle(t, bundleDir) })
	t.Run("bad input", func(t *testing.T) { testExportBadInput(t, ckpt, bundleDir) })
	t.Run("batch", func(t *testing.T) { testExportBatch(t, ckpt, bundleDir) })
	t.Run("act bits 16", func(t *testing.T) { testExportActBits16(t, ckpt, bundleDir) })
	t.Run("act bits auto", func(t *testing.T) { testExportActBitsAuto(t, ckpt) })
}

// --act-bits auto measures int8's agreement on the calibration images,
// picks the width by the 99.5 % threshold, and records both.
func testExportActBitsAuto(t *testing.T, ckpt string) {
	dir := filepath.Join(t.TempDir(), "auto")
	code, stdout, errOut := vitcRun(t, "export", "--checkpoint", ckpt, "--out", dir, "--calib-images", "64", "--act-bits", "auto", "--json")
	if code != 0 {
		t.Fatalf("export --act-bits auto exit %d: %s", code, errOut)
	}
	var ex exportReport
	if err := json.Unmarshal([]byte(stdout), &ex); err != nil || ex.AutoInt8Agreement == nil {
		t.Fatalf("export report %q: %v", stdout, err)
	}
	a := *ex.AutoInt8Agreement
	if want := map[bool]int{true: 8, false: 16}[a >= 0.995]; ex.ActBits != want || a < 0 || a > 1 || a*64 != float64(int(a*64)) {
		t.Fatalf("int8 agreement %g on 64 images chose %d bits", a, ex.ActBits)
	}
	man, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil || !strings.Contains(string(man), `"act_bits_auto"`) {
		t.Fatalf("manifest without act_bits_auto: %v", err)
	}
	if code, _, errOut := vitcRun(t, "sim", "--bundle", dir, "--limit", "4"); code != 0 {
		t.Fatalf("sim exit %d: %s", code, errOut)
	}
}

// --act-bits 16: the report and manifest record it, mse is the default
// calibration, the golden vectors are int16 and reproduce (in a batch
// too), sim and --layers run, and the int16 program takes more cycles.
func testExportActBits16(t *testing.T, ckpt, int8Bundle string) {
	dir := filepath.Join(t.TempDir(), "a16")
	code, stdout, errOut := vitcRun(t, "export", "--checkpoint", ckpt, "--out", dir, "--calib-images", "64", "--act-bits", "16", "--batch", "8", "--json")
	if code != 0 {
		t.Fatalf("export --act-bits 16 exit %d: %s", code, errOut)
	}
	var ex exportReport
	if err := json.Unmarshal([]byte(stdout), &ex); err != nil || ex.ActBits != 16 || ex.CalibMethod != "mse" {
		t.Fatalf("export report %q: %v", stdout, err)
	}
	man, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil || !strings.Contains(string(man), `"act_bits": 16`) || !strings.Contains(string(man), `"dtype": "int16"`) {
		t.Fatalf("manifest without act_bits 16 and int16 golden vectors: %v", err)
	}
	code, stdout, errOut = vitcRun(t, "sim", "--bundle", dir, "--limit", "20", "--layers", "--compare", int8Bundle, "--json")
	if code != 0 {
		t.Fatalf("sim exit %d: %s", code, errOut)
	}
	var rep simReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || !rep.GoldenOK || rep.ActBits != 16 || len(rep.TensorErrors) == 0 {
		t.Fatalf("sim report %q: %v", stdout, err)
	}
	code, stdout, errOut = vitcRun(t, "sim", "--bundle", dir, "--limit", "4")
	if code != 0 || !strings.Contains(stdout, "accuracy: int16") {
		t.Fatalf("sim exit %d: %s%s", code, stdout, errOut)
	}
	code, stdout, errOut = vitcRun(t, "inspect", dir, "--json")
	var ins bundleReport
	if code != 0 || json.Unmarshal([]byte(stdout), &ins) != nil || ins.ActBits != 16 || ins.CalibMethod != "mse" {
		t.Fatalf("inspect exit %d: %s%s", code, stdout, errOut)
	}
}

// --batch keeps the weights resident: the manifest records it, sim checks
// the golden vectors with the weights resident too, and the amortised
// account per image takes fewer cycles than the per-image bundle's.
func testExportBatch(t *testing.T, ckpt, single string) {
	dir := filepath.Join(t.TempDir(), "batched")
	code, stdout, errOut := vitcRun(t, "export", "--checkpoint", ckpt, "--out", dir, "--calib-images", "64", "--batch", "32", "--json")
	if code != 0 {
		t.Fatalf("export --batch exit %d: %s", code, errOut)
	}
	var ex exportReport
	if err := json.Unmarshal([]byte(stdout), &ex); err != nil || ex.Batch != 32 || ex.Lockstep < 2 || 32%ex.Lockstep != 0 {
		t.Fatalf("export report %q: %v", stdout, err)
	}
	code, stdout, errOut = vitcRun(t, "inspect", dir, "--json")
	var ins bundleReport
	if code != 0 || json.Unmarshal([]byte(stdout), &ins) != nil || ins.Batch != 32 || ins.Lockstep != ex.Lockstep {
		t.Fatalf("inspect exit %d: %s%s", code, stdout, errOut)
	}
	code, stdout, errOut = vitcRun(t, "sim", "--bundle", dir, "--limit", "20", "--workers", "2", "--compare", single, "--json")
	if code != 0 {
		t.Fatalf("sim exit %d: %s", code, errOut)
	}
	var rep simReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("sim report %q: %v", stdout, err)
	}
	var sum int64
	for _, l := range rep.Layers {
		sum += l.Cycles
	}
	if rep.Batch != 32 || rep.Group != ex.Lockstep || rep.FirstImageCycles <= rep.Cycles || sum != rep.Cycles || rep.SpeedupVsOther <= 1 || rep.ImagesPerSec != 1/rep.Seconds {
		t.Fatalf("batched sim report %+v", rep)
	}
	code, stdout, errOut = vitcRun(t, "sim", "--bundle", dir, "--limit", "4")
	if code != 0 || !strings.Contains(stdout, "batch of 32 images, weights loaded once") {
		t.Fatalf("sim exit %d: %s%s", code, stdout, errOut)
	}
}

func testSim(t *testing.T, bundleDir string) {
	code, stdout, errOut := vitcRun(t, "sim", "--bundle", bundleDir, "--limit", "40", "--compare", bundleDir, "--json")
	if code != 0 {
		t.Fatalf("sim exit %d: %s", code, errOut)
	}
	var rep simReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("sim report %q: %v", stdout, err)
	}
	if !rep.GoldenOK || rep.N != 40 || rep.Data != "synthetic" {
		t.Fatalf("sim report %+v", rep)
	}
	var sum int64
	for _, l := range rep.Layers {
		sum += l.Cycles
		// A layer may beat its own bound (its weight load can start while
		// the previous layer computes), but every layer has one.
		if l.MACs > 0 && l.Roofline == 0 {
			t.Errorf("layer %s: %d MACs, roofline %d", l.Name, l.MACs, l.Roofline)
		}
	}
	if rep.Roofline > rep.Cycles || rep.Roofline == 0 {
		t.Errorf("%d cycles, roofline %d", rep.Cycles, rep.Roofline)
	}
	if sum != rep.Cycles || len(rep.Layers) != 4 { // embed, two blocks, head
		t.Fatalf("%d layers sum to %d cycles, total %d", len(rep.Layers), sum, rep.Cycles)
	}
	if rep.SpeedupVsOther != 1 {
		t.Fatalf("a bundle against itself: speed-up %g", rep.SpeedupVsOther)
	}
	// One epoch leaves near-tied logits that rounding flips; trained models
	// agree on ≥ 99% (README). This catches a broken integer pipeline.
	if rep.Top1Agreement < 0.5 {
		t.Fatalf("int8 agrees with float on %.0f%% of images", 100*rep.Top1Agreement)
	}
}

// --layers reports every quantized tensor against float, worst flagged;
// the results do not depend on how many workers run the images.
func testSimLayers(t *testing.T, bundleDir string) {
	reports := map[string]simReport{}
	for _, workers := range []string{"1", "3"} {
		code, stdout, errOut := vitcRun(t, "sim", "--bundle", bundleDir, "--limit", "20", "--layers", "--workers", workers, "--json")
		if code != 0 {
			t.Fatalf("sim --layers exit %d: %s", code, errOut)
		}
		var rep simReport
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("sim report %q: %v", stdout, err)
		}
		reports[workers] = rep
	}
	rep := reports["1"]
	names, worst := map[string]bool{}, 0
	for _, e := range rep.TensorErrors {
		names[e.Name] = true
		if e.Worst {
			worst++
		}
		if !(e.Cosine > 0.5 && e.Cosine <= 1+1e-9) || !(e.SQNR > 0) || e.Scale <= 0 {
			t.Errorf("tensor %+v", e)
		}
	}
	for _, n := range []string{"input", "x0", "blocks.0.q", "blocks.0.fc1", "blocks.1.out", "norm", "logits"} {
		if !names[n] {
			t.Errorf("no %s among %v", n, names)
		}
	}
	if worst != 3 {
		t.Errorf("%d tensors flagged worst", worst)
	}
	other := reports["3"]
	if other.Top1Agreement != rep.Top1Agreement || len(other.TensorErrors) != len(rep.TensorErrors) {
		t.Fatalf("1 worker: %+v; 3 workers: %+v", rep, other)
	}
	for i, e := range rep.TensorErrors {
		if other.TensorErrors[i] != e {
			t.Fatalf("1 worker: %+v; 3 workers: %+v", e, other.TensorErrors[i])
		}
	}
	code, stdout, errOut := vitcRun(t, "sim", "--bundle", bundleDir, "--limit", "5", "--layers")
	if code != 0 || !strings.Contains(stdout, "SQNR dB") || !strings.Contains(stdout, "worst: ") {
		t.Fatalf("sim --layers exit %d: %s%s", code, stdout, errOut)
	}
}

func testInspectBundle(t *testing.T, bundleDir string) {
	code, stdout, errOut := vitcRun(t, "inspect", bundleDir)
	if code != 0 || !strings.Contains(stdout, "checksums verified") || !strings.Contains(stdout, "gemm×") ||
		!strings.Contains(stdout, "activations int8") {
		t.Fatalf("inspect exit %d: %s%s", code, stdout, errOut)
	}
}

func testExportBadInput(t *testing.T, ckpt, bundleDir string) {
	// A copy of the bundle to damage.
	damaged := filepath.Join(t.TempDir(), "damaged")
	copyDir(t, bundleDir, damaged)
	w := filepath.Join(damaged, "weights.bin")
	data, _ := os.ReadFile(w)
	data[len(data)/3] ^= 1
	os.WriteFile(w, data, 0o644)

	otherHW := filepath.Join(t.TempDir(), "hw.json")
	h := hw.Default()
	h.DRAMBytesPerCycle = 64
	js, _ := json.Marshal(h)
	os.WriteFile(otherHW, js, 0o644)

	notBundle := t.TempDir()
	os.WriteFile(filepath.Join(notBundle, "notes.txt"), []byte("keep me"), 0o644)

	for name, c := range map[string]struct {
		args []string
		want string
	}{
		"flipped byte":     {[]string{"sim", "--bundle", damaged}, "weights.bin"},
		"inspect flipped":  {[]string{"inspect", damaged}, "weights.bin"},
		"other hardware":   {[]string{"sim", "--bundle", bundleDir, "--hw", otherHW}, "compiled for hardware"},
		"no bundle":        {[]string{"sim", "--bundle", filepath.Join(t.TempDir(), "none")}, "none"},
		"golden index":     {[]string{"export", "--checkpoint", ckpt, "--out", filepath.Join(t.TempDir(), "b"), "--golden-index", "100000"}, "golden-index"},
		"over other files": {[]string{"export", "--checkpoint", ckpt, "--out", notBundle, "--calib-images", "8"}, notBundle},
		"bad hw file":      {[]string{"export", "--checkpoint", ckpt, "--out", filepath.Join(t.TempDir(), "b"), "--hw", ckpt}, "hardware config"},
		"batch zero":       {[]string{"export", "--checkpoint", ckpt, "--out", filepath.Join(t.TempDir(), "b"), "--batch", "0"}, "--batch"},
		"batch too big":    {[]string{"export", "--checkpoint", ckpt, "--out", filepath.Join(t.TempDir(), "b"), "--batch", "4", "--hw", smallWgtHW(t)}, "--batch 4: the weights need"},
		"negative workers": {[]string{"sim", "--bundle", bundleDir, "--workers", "-1"}, "--workers"},
		"calib method":     {[]string{"export", "--checkpoint", ckpt, "--out", filepath.Join(t.TempDir(), "b"), "--calib-method", "kl"}, "--calib-method"},
		"act bits":         {[]string{"export", "--checkpoint", ckpt, "--out", filepath.Join(t.TempDir(), "b"), "--act-bits", "12"}, "--act-bits"},
		"calib percentile": {[]string{"export", "--checkpoint", ckpt, "--out", filepath.Join(t.TempDir(), "b"), "--calib-method", "percentile", "--calib-percentile", "0"}, "--calib-percentile"},
	} {
		code, stdout, errOut := vitcRun(t, c.args...)
		if code != 2 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, c.want) || strings.Contains(errOut, "goroutine") {
			t.Errorf("%s: exit %d, stderr %q (want status 2, one line naming %q), stdout %q", name, code, errOut, c.want, stdout)
		}
	}
	if b, err := os.ReadFile(filepath.Join(notBundle, "notes.txt")); err != nil || string(b) != "keep me" {
		t.Errorf("export over a directory of other files changed it")
	}
}

// smallWgtHW is a hw.json whose weight buffer holds one layer at a time
// but not the whole test model.
func smallWgtHW(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "small.json")
	h := hw.Default()
	h.Name, h.WgtBufferBytes = "small-wgt", 16<<10
	js, _ := json.Marshal(h)
	if err := os.WriteFile(p, js, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
