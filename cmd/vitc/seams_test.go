package main

// The seams between commands, tested with a ViT that PyTorch wrote
// (vit/testdata/published: tools/torchref/published.py, a bare timm file
// whose heads, LayerNorm eps and normalisation vitc's defaults get wrong),
// as a user who starts from a published checkpoint meets them.

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"vitc/vit"
	"vitc/vit/pipeline"
)

const publishedDir = "../../vit/testdata/published"

// publishedFixture is the PyTorch-written digits ViT and what it needs said.
type publishedFixture struct {
	path   string   // the bare .safetensors
	folder string   // the same weights with a timm config.json
	flags  []string // what its tensors cannot tell
	data   string   // digits:FILE, the split PyTorch was scored on
	acc    float64  // PyTorch's test accuracy (digits_vit.json)
}

func published(t *testing.T) publishedFixture {
	t.Helper()
	digits := os.Getenv("VITC_DIGITS")
	if digits == "" {
		t.Skip("VITC_DIGITS not set (make test sets it): the published fixture is a digits model")
	}
	b, err := os.ReadFile(filepath.Join(publishedDir, "digits_vit.json"))
	if err != nil {
		t.Fatal(err)
	}
	var js struct {
		Accuracy float64 `json:"test_accuracy"`
	}
	if err := json.Unmarshal(b, &js); err != nil || js.Accuracy == 0 {
		t.Fatalf("digits_vit.json: %v (accuracy %v)", err, js.Accuracy)
	}
	return publishedFixture{path: filepath.Join(publishedDir, "digits_vit.safetensors"), folder: filepath.Join(publishedDir, "digits_vit_config"),
		flags: []string{"--heads", "4", "--ln-eps", "1e-5", "--mean", "0.305", "--std", "0.376"}, data: "digits:" + digits, acc: js.Accuracy}
}

// runOK runs vitc and fails the test on a non-zero exit.
func runOK(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	code, out, errOut := vitcRun(t, args...)
	if code != 0 {
		t.Fatalf("vitc %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out, errOut
}

// runBad runs vitc, which must refuse its input: exit 2, one line on
// stderr containing every want, nothing on stdout.
func runBad(t *testing.T, args []string, want ...string) string {
	t.Helper()
	code, out, errOut := vitcRun(t, args...)
	if code != exitBadInput || out != "" || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("vitc %s: exit %d, stdout %q, stderr %q: want status 2 and one line", strings.Join(args, " "), code, out, errOut)
	}
	for _, w := range want {
		if !strings.Contains(errOut, w) {
			t.Errorf("vitc %s: %q does not say %q", strings.Join(args, " "), errOut, w)
		}
	}
	return errOut
}

func evalAccuracy(t *testing.T, args ...string) float64 {
	t.Helper()
	out, _ := runOK(t, append([]string{"eval", "--json"}, args...)...)
	var rep evalReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("eval --json %q: %v", out, err)
	}
	return rep.Accuracy
}

// sameAccuracy allows one test image of difference: float32 rounding on
// another CPU may move a borderline image.
func sameAccuracy(a, b float64) bool { return math.Abs(a-b) <= 1.0/360+1e-9 }

// TestPublishedEveryReader: every command and option that reads a
// checkpoint reads the bare PyTorch file the same way, with the flags once,
// and says what it assumed without them.
func TestPublishedEveryReader(t *testing.T) {
	fx := published(t)
	dir := t.TempDir()
	right := evalAccuracy(t, append([]string{"--checkpoint", fx.path, "--data", fx.data}, fx.flags...)...)
	if !sameAccuracy(right, fx.acc) {
		t.Fatalf("eval with the flags: %.4f, PyTorch %.4f", right, fx.acc)
	}
	// The defaults are wrong for this file: the test would prove nothing
	// if they were not. The head count it cannot tell, its accuracy can:
	// the assumed one is refused, naming the one that scores.
	runBad(t, []string{"eval", "--checkpoint", fx.path, "--data", fx.data}, "head count was assumed (1, timm's dim/64)", "scores clearly worse", "4 heads ", "--heads")
	// The other defaults (eps, normalisation) cost points too, and the one
	// line says they were assumed.
	_, errOut := runOK(t, "eval", "--checkpoint", fx.path, "--data", fx.data, "--heads", "4")
	wrong := evalAccuracy(t, "--checkpoint", fx.path, "--data", fx.data, "--heads", "4")
	if wrong > right-0.05 {
		t.Fatalf("the default eps and normalisation score %.4f against %.4f: the fixture does not test those flags", wrong, right)
	}
	for _, w := range []string{"assumed:", "LayerNorm eps 1e-06 (timm's; set --ln-eps)", "normalisation mean 0.5 std 0.5 (timm's for 1 channels; set --mean/--std)"} {
		if !strings.Contains(errOut, w) || strings.Count(errOut, "vitc: checkpoint") != 1 {
			t.Errorf("eval of a bare file without flags: stderr %q does not say %q in one line", errOut, w)
		}
	}

	// A folder with a timm config.json needs only the eps, which timm's
	// configs do not carry.
	if acc := evalAccuracy(t, "--checkpoint", fx.folder, "--data", fx.data, "--ln-eps", "1e-5"); !sameAccuracy(acc, right) {
		t.Errorf("the config.json folder: %.4f, want %.4f", acc, right)
	}

	out, _ := runOK(t, "inspect", fx.folder, "--json")
	var folder inspectReport
	if err := json.Unmarshal([]byte(out), &folder); err != nil || folder.Config.Heads != 4 || !hasFact(folder.Facts, vit.FactNorm, vit.FromConfig) {
		t.Errorf("inspect of the config.json folder: %+v %v", folder, err)
	}
	runBad(t, append([]string{"train", "--init", fx.path, "--epochs", "0"}, fx.flags...), "use vitc import")

	// inspect: the facts and where they came from.
	out, _ = runOK(t, append([]string{"inspect", fx.path, "--json"}, fx.flags...)...)
	var ins inspectReport
	if err := json.Unmarshal([]byte(out), &ins); err != nil {
		t.Fatal(err)
	}
	if ins.Config.Heads != 4 || ins.Config.LNEps != 1e-5 || !hasFact(ins.Facts, vit.FactHeads, vit.FromOption) || !hasFact(ins.Facts, vit.FactNorm, vit.FromOption) {
		t.Errorf("inspect with the flags: config %+v, facts %+v", ins.Config, ins.Facts)
	}
	out, _ = runOK(t, "inspect", fx.path, "--json")
	if err := json.Unmarshal([]byte(out), &ins); err != nil {
		t.Fatal(err)
	}
	if ins.Config.Heads != 1 || !hasFact(ins.Facts, vit.FactHeads, vit.FromDefault) || !hasFact(ins.Facts, vit.FactLNEps, vit.FromDefault) {
		t.Errorf("inspect without flags: config %+v, facts %+v", ins.Config, ins.Facts)
	}

	// predict: the same logits as the model eval scored.
	want, err := vit.Open(fx.path, vit.LoadOptions{Heads: 4, LNEps: 1e-5, Mean: []float32{0.305}, Std: []float32{0.376}})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := want.Model()
	x := make([]float32, 2*64)
	for i := range x {
		x[i] = float32(i%7) / 7
	}
	in := filepath.Join(dir, "x.npy")
	writeNpy(t, in, x, []int{2, 1, 8, 8})
	logits := filepath.Join(dir, "logits.npy")
	runOK(t, append([]string{"predict", "--checkpoint", fx.path, "--input", in, "--output", logits, "--topk", "0"}, fx.flags...)...)
	got, _ := readNpy(t, logits)
	if !slices.Equal(got, vit.Predict(m, x, 2, 2)) {
		t.Errorf("predict's logits are not the flags' model's")
	}

	// bench: times the checkpoint's architecture.
	out, _ = runOK(t, append([]string{"bench", "--checkpoint", fx.path, "--steps", "1", "--warmup", "0", "--batch", "4", "--json"}, fx.flags...)...)
	var br benchReport
	if err := json.Unmarshal([]byte(out), &br); err != nil {
		t.Fatal(err)
	}
	if br.Config.Heads != 4 || br.Config.Depth != 3 || br.Config.Image != 8 {
		t.Errorf("bench --checkpoint timed %+v", br.Config)
	}

	// import: once, then no flags anywhere.
	imported := filepath.Join(dir, "imported.safetensors")
	runOK(t, append([]string{"import", fx.path, "--data", fx.data, "--out", imported}, fx.flags...)...)
	if acc := evalAccuracy(t, "--checkpoint", imported); !sameAccuracy(acc, right) {
		t.Errorf("the imported checkpoint scores %.4f without flags, want %.4f", acc, right)
	}

	// export: the bundle's float model is the flags' model.
	bundle := filepath.Join(dir, "a", "b", "bundle") // parents made as needed
	runOK(t, append([]string{"export", "--checkpoint", fx.path, "--data", fx.data, "--out", bundle, "--calib-images", "64"}, fx.flags...)...)
	out, _ = runOK(t, "sim", "--bundle", bundle, "--json")
	var sr simReport
	if err := json.Unmarshal([]byte(out), &sr); err != nil {
		t.Fatal(err)
	}
	if !sameAccuracy(sr.AccuracyFloat, right) {
		t.Errorf("the bundle's float model scores %.4f, want %.4f", sr.AccuracyFloat, right)
	}

	// train --init with --teacher: the same file is read the same way, and
	// the teacher is scored before anything trains; another copy of it is
	// read with the same flags.
	other := filepath.Join(dir, "copy.safetensors")
	copyFile(t, fx.path, other)
	for _, teacher := range []string{fx.path, other} {
		_, errOut := runOK(t, append([]string{"train", "--init", fx.path, "--teacher", teacher, "--attention", "taylor", "--data", fx.data,
			"--epochs", "1", "--out", filepath.Join(dir, "taylor-"+filepath.Base(teacher))}, fx.flags...)...)
		if !strings.Contains(errOut, "teacher "+teacher+": "+pct(right)+" on the test split") {
			t.Errorf("train --teacher %s: stderr %q does not score the teacher at %s", teacher, errOut, pct(right))
		}
	}

	// prune --teacher (and --init, the same file by default).
	out, errOut = runOK(t, append([]string{"prune", "--teacher", fx.path, "--data", fx.data, "--epochs", "1", "--density", "0.5", "--token-keep", "1",
		"--out", filepath.Join(dir, "pruned"), "--json"}, fx.flags...)...)
	var pr pipeline.PruneReport
	if err := json.Unmarshal([]byte(out), &pr); err != nil {
		t.Fatal(err)
	}
	if !sameAccuracy(pr.TeacherAccuracy, right) || !strings.Contains(errOut, "teacher "+fx.path+": "+pct(right)) {
		t.Errorf("prune's teacher scores %.4f, want %.4f (stderr %q)", pr.TeacherAccuracy, right, errOut)
	}
}

// pct is an accuracy as the commands print it.
func pct(acc float64) string { return fmt.Sprintf("%.2f%%", 100*acc) }

func hasFact(facts []vit.Fact, name string, from vit.FactSource) bool {
	return slices.ContainsFunc(facts, func(f vit.Fact) bool { return f.Name == name && f.From == from })
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestTeacherCheck: a teacher read wrongly scores near chance, or far below
// what its checkpoint records, and the run stops before training.
func TestTeacherCheck(t *testing.T) {
	fx := published(t)
	dir := t.TempDir()
	imported := filepath.Join(dir, "imported.safetensors")
	runOK(t, append([]string{"import", fx.path, "--data", fx.data, "--out", imported}, fx.flags...)...)

	// The case: the right student, the teacher a bare file read
	// with the defaults.
	runBad(t, []string{"train", "--init", imported, "--teacher", fx.path, "--attention", "taylor", "--epochs", "1", "--out", filepath.Join(dir, "a")},
		"teacher "+fx.path+" scores", "near chance", "--allow-weak-teacher")
	if _, err := os.Stat(filepath.Join(dir, "a", "train_state.safetensors")); err == nil {
		t.Errorf("a refused run wrote a state")
	}
	// Far below what it records: the imported file records its accuracy on
	// the digits; read with another normalisation, it scores far less.
	runBad(t, []string{"prune", "--teacher", imported, "--mean", "0.6", "--std", "0.2", "--epochs", "1", "--out", filepath.Join(dir, "b")},
		"far below the "+pct(fx.acc)+" its checkpoint records")
	// The check can be overridden, and says what the teacher scored.
	_, errOut := runOK(t, "train", "--init", imported, "--teacher", fx.path, "--allow-weak-teacher", "--epochs", "1", "--out", filepath.Join(dir, "c"))
	if !strings.Contains(errOut, "teacher "+fx.path+": ") {
		t.Errorf("an allowed weak teacher is not reported: %q", errOut)
	}
}

// TestPrunePublished covers issue 30's rows 1-3 and 7: prune reads a bare
// teacher with the flags, keeps the checkpoint's normalisation, prints and
// records its recipe (augmentation overridable), and states FLOPs against
// the dense softmax model.
func TestPrunePublished(t *testing.T) {
	fx := published(t)
	dir := t.TempDir()
	imported := filepath.Join(dir, "imported.safetensors")
	runOK(t, append([]string{"import", fx.path, "--data", fx.data, "--out", imported}, fx.flags...)...)
	taylor := filepath.Join(dir, "taylor")
	runOK(t, "train", "--init", imported, "--teacher", imported, "--attention", "taylor", "--epochs", "1", "--out", taylor)

	out, errOut := runOK(t, "prune", "--teacher", filepath.Join(taylor, "model.safetensors"), "--epochs", "2", "--target-flops", "2",
		"--augment", "--augment-shift", "1", "--out", filepath.Join(dir, "p"), "--json")
	var pr pipeline.PruneReport
	if err := json.Unmarshal([]byte(out), &pr); err != nil {
		t.Fatal(err)
	}
	// Row 2: the student's normalisation is the checkpoint's, not the
	// training split's statistics (0.3053/0.3761 here).
	ck, err := vit.Open(filepath.Join(dir, "p", "model.safetensors"), vit.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ck.Meta.NormMean, []float32{0.305}) || !slices.Equal(ck.Meta.NormStd, []float32{0.376}) {
		t.Errorf("the pruned model's normalisation is %v/%v, the checkpoint's 0.305/0.376", ck.Meta.NormMean, ck.Meta.NormStd)
	}
	// Row 3: the recipe is printed and recorded; augmentation as asked.
	if !strings.Contains(errOut, "recipe prune: lr 0.001") || !strings.Contains(errOut, "augmentation: shifts of up to 1 px") {
		t.Errorf("prune does not print its recipe and augmentation: %q", errOut)
	}
	if !pr.Options.Augment || pr.Options.AugmentShift != 1 || pr.Options.Batch != 32 || pr.Distill == nil || pr.Distill.Teacher == "" || pr.Recipe != "prune" {
		t.Errorf("report options %+v, distill %+v, recipe %q", pr.Options, pr.Distill, pr.Recipe)
	}
	// Row 7: one baseline, the dense softmax model, named; a Taylor
	// teacher's own FLOPs are a second, labelled figure.
	dense := flopsOf(func() vit.Config { c := ck.Config; c.Attention = "softmax"; return c }())
	if pr.Baseline != pipeline.BaselineDenseSoftmax || pr.FLOPsReduction == pr.FLOPsReductionVsTeacher ||
		math.Abs(pr.FLOPsReduction-float64(pr.FLOPsBefore)/float64(pr.FLOPsAfter)) > 1e-9 || pr.FLOPsTeacher >= pr.FLOPsBefore {
		t.Errorf("baselines: %q, %.4f× (before %d), vs teacher %.4f× (%d); dense softmax has %d", pr.Baseline, pr.FLOPsReduction, pr.FLOPsBefore,
			pr.FLOPsReductionVsTeacher, pr.FLOPsTeacher, dense)
	}
	if pr.Plan != nil && pr.Plan.Held != nil && math.Abs(pr.FLOPsReduction-pr.Plan.Held.FLOPsReduction) > 0.02*pr.FLOPsReduction {
		t.Errorf("report %.3f× and the closed loop's hold %.3f× against different baselines", pr.FLOPsReduction, pr.Plan.Held.FLOPsReduction)
	}
	// --no-augment turns it off.
	out, _ = runOK(t, "prune", "--teacher", imported, "--epochs", "1", "--density", "0.6", "--no-augment", "--out", filepath.Join(dir, "q"), "--json")
	if err := json.Unmarshal([]byte(out), &pr); err != nil {
		t.Fatal(err)
	}
	if pr.Options.Augment {
		t.Errorf("--no-augment: options %+v", pr.Options)
	}
}

// TestFineTuneKeepsData covers rows 4 and 5: train --init takes the
// checkpoint's data and class names.
func TestFineTuneKeepsData(t *testing.T) {
	fx := published(t)
	dir := t.TempDir()
	names := "zero,one,two,three,four,five,six,seven,eight,nine"
	imported := filepath.Join(dir, "named.safetensors")
	runOK(t, append([]string{"import", fx.path, "--data", fx.data, "--class-names", names, "--out", imported}, fx.flags...)...)
	out, errOut := runOK(t, "train", "--init", imported, "--epochs", "1", "--out", filepath.Join(dir, "ft"), "--json")
	var rep pipeline.TrainReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Data != fx.data || !strings.Contains(errOut, "data "+fx.data+" (the --init checkpoint's") {
		t.Errorf("train --init trained on %q, the checkpoint's data is %q (stderr %q)", rep.Data, fx.data, errOut)
	}
	ck, err := vit.Open(filepath.Join(dir, "ft", "model.safetensors"), vit.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(ck.Meta.ClassNames, ",") != names {
		t.Errorf("the fine-tuned model's classes are %v, the checkpoint's %s", ck.Meta.ClassNames, names)
	}
	// --class-names names the classes of data that names none.
	out, _ = runOK(t, "train", "--data", fx.data, "--class-names", names, "--epochs", "1", "--dim", "16", "--depth", "1", "--heads", "2", "--patch", "2",
		"--out", filepath.Join(dir, "named"), "--json")
	if ck, err = vit.Open(filepath.Join(dir, "named", "model.safetensors"), vit.LoadOptions{}); err != nil || strings.Join(ck.Meta.ClassNames, ",") != names {
		t.Errorf("train --class-names: %v %v", ck.Meta.ClassNames, err)
	}
	// predict says what a photo went through.
	photo := filepath.Join(dir, "cat.png")
	writeRGBPNG(t, photo, 40, 30)
	out, errOut = runOK(t, "predict", "--checkpoint", imported, "--input", photo, "--topk", "1")
	if !strings.Contains(errOut, "colour photo turned grey") || !strings.Contains(errOut, "resized from 40×30 to 8×8") || !strings.Contains(out, "%") {
		t.Errorf("predict on a colour photo: stdout %q, stderr %q", out, errOut)
	}
	for _, n := range strings.Split(names, ",") {
		if strings.Contains(out, n) {
			return
		}
	}
	t.Errorf("predict names no class: %q", out)
}

// TestDataMustFitModel covers row 6: data of other channels, size or
// classes stops with one line unless a flag adapts it.
func TestDataMustFitModel(t *testing.T) {
	fx := published(t)
	dir := t.TempDir()
	named := filepath.Join(dir, "named.safetensors")
	runOK(t, append([]string{"import", fx.path, "--data", fx.data, "--class-names", "zero,one,two,three,four,five,six,seven,eight,nine", "--out", named}, fx.flags...)...)

	// An RGB folder of another size and other classes.
	folder := filepath.Join(dir, "photos")
	for _, split := range []string{"train", "test"} {
		for _, c := range []string{"airplane", "truck"} {
			for i := range 3 {
				writeRGBPNG(t, filepath.Join(folder, split, c, string(rune('a'+i))+".png"), 12, 12)
			}
		}
	}
	runBad(t, []string{"eval", "--checkpoint", named, "--data", "folder:" + folder}, "3-channel images, the model takes 1", "--adapt-data")
	runBad(t, []string{"eval", "--checkpoint", named, "--data", "folder:" + folder, "--adapt-data"}, `class "airplane"`, "--class-names")
	// The same digits at another path: they name no classes, and are not
	// the data the model records.
	moved := filepath.Join(dir, "other.csv.gz")
	copyFile(t, strings.TrimPrefix(fx.data, "digits:"), moved)
	runBad(t, []string{"eval", "--checkpoint", named, "--data", "digits:" + moved}, "names no classes", "--class-names")
	acc := evalAccuracy(t, "--checkpoint", named, "--data", "digits:"+moved, "--class-names", "zero,one,two,three,four,five,six,seven,eight,nine")
	if !sameAccuracy(acc, fx.acc) {
		t.Errorf("the digits named as the model names them: %.4f, want %.4f", acc, fx.acc)
	}
	// Names are matched, not positions: data that calls its label 0 "one"
	// has it moved to the model's "one", so the zeros and ones (a fifth of
	// the test split) now count as wrong.
	swapped := evalAccuracy(t, "--checkpoint", named, "--data", "digits:"+moved, "--class-names", "one,zero,two,three,four,five,six,seven,eight,nine")
	if swapped > acc-0.15 {
		t.Errorf("labels named in another order score %.4f, as many as in the model's order (%.4f): they were not moved", swapped, acc)
	}
	// sim refuses the same way.
	bundle := filepath.Join(dir, "bundle")
	runOK(t, "export", "--checkpoint", named, "--out", bundle, "--calib-images", "32")
	runBad(t, []string{"sim", "--bundle", bundle, "--data", "digits:" + moved}, "names no classes")
}

func writeRGBPNG(t *testing.T, path string, w, h int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	im := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			im.Set(x, y, color.RGBA{R: uint8(7 * x), G: uint8(11 * y), B: uint8(x * y), A: 255})
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, im); err != nil {
		t.Fatal(err)
	}
}
