//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"vitc/internal/rss"
	"vitc/vit"
)

// compressArgs is a seconds-long compress of the PyTorch-written digits
// ViT, read once with the flags it needs.
func compressArgs(fx publishedFixture, out string) []string {
	args := []string{"compress", "--from", fx.path, "--data", fx.data, "--target-flops", "2", "--taylor-epochs", "1", "--prune-epochs", "3",
		"--batch", "8", "--class-names", digitNames, "--out", out}
	return append(args, fx.flags...)
}

const digitNames = "zero,one,two,three,four,five,six,seven,eight,nine"

// TestCompressPublished: one command from the bare PyTorch file to a
// verified bundle, with the facts of the file intact at every stage.
func TestCompressPublished(t *testing.T) {
	fx := published(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "run")
	stdout, errOut := runOK(t, append(compressArgs(fx, out), "--json")...)
	var rep compressReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("compress --json %q: %v", stdout, err)
	}
	if !sameAccuracy(rep.SourceAccuracy, fx.acc) {
		t.Errorf("source accuracy %.4f, PyTorch's %.4f", rep.SourceAccuracy, fx.acc)
	}
	names := []string{}
	for _, s := range rep.Stages {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, []string{"source", "taylor", "prune", "export", "sim"}) {
		t.Errorf("stages %v", names)
	}
	if rep.FLOPsReduction < 2 || rep.ModelledSpeedup <= 0 || rep.Top1Agreement <= 0.5 || rep.Batch != 8 || rep.HW == "" || rep.Bundle == "" {
		t.Errorf("report %+v", rep)
	}
	for i, s := range rep.Stages {
		// Each stage's own peak memory, where /proc lets it be reset.
		if rss.ResetPeak() && !(s.PeakRSSBytes > 1<<20) {
			t.Errorf("stage %s: peak RSS %d bytes, want its own measured peak", s.Name, s.PeakRSSBytes)
		}
		if !strings.HasPrefix(s.Command, "vitc ") || !strings.Contains(errOut, "stage "+string(rune('1'+i))+"/5 "+s.Name+": "+s.Command) {
			t.Errorf("stage %s: command %q not printed as run", s.Name, s.Command)
		}
	}
	// The bare file's facts travel: every stage's model has its heads, eps
	// and normalisation, and the data.
	for _, p := range []string{"source/model.safetensors", "taylor/model.safetensors", "prune/model.safetensors", "export/bundle/reference/model.safetensors"} {
		ck, err := vit.Open(filepath.Join(out, p), vit.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ck.Bare || ck.Config.Heads != 4 || ck.Config.LNEps != 1e-5 || !slices.Equal(ck.Meta.NormMean, []float32{0.305}) || ck.Meta.Dataset != fx.data ||
			strings.Join(ck.Meta.ClassNames, ",") != digitNames {
			t.Errorf("%s: config %+v meta %+v", p, ck.Config, ck.Meta)
		}
	}
	// The compressed model classifies a photo by name, saying what the
	// photo went through.
	photo := filepath.Join(dir, "photo.png")
	writeRGBPNG(t, photo, 30, 20)
	pout, perr := runOK(t, "predict", "--checkpoint", filepath.Join(out, "prune", "model.safetensors"), "--input", photo, "--topk", "10")
	if !strings.Contains(perr, "colour photo turned grey") || !strings.Contains(pout, "seven") {
		t.Errorf("predict: stdout %q stderr %q", pout, perr)
	}
	f, err := os.Open(filepath.Join(out, "compress.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if im, err := png.Decode(f); err != nil || im.Bounds().Dx() < 600 {
		t.Errorf("compress.png: %v", err)
	}
	// The gate.
	code, _, _ := vitcRun(t, "compress", "--resume", "--out", out)
	if code != 0 {
		t.Errorf("resuming a finished run: exit %d", code)
	}
	if rep.AccuracyDrop > -50 {
		cfg, _ := readCompressOptions(out)
		cfg.MaxDrop = rep.AccuracyDrop - 1
		js, _ := json.Marshal(cfg)
		if err := os.WriteFile(filepath.Join(out, compressFile), js, 0o644); err != nil {
			t.Fatal(err)
		}
		if code, _, errOut := vitcRun(t, "compress", "--resume", "--out", out); code != exitGate || !strings.Contains(errOut, "exceeds --max-drop") {
			t.Errorf("--max-drop below the drop: exit %d, %q", code, errOut)
		}
	}
	// Bad input: one line, nothing written.
	runBad(t, []string{"compress", "--from", fx.path, "--target-flops", "2", "--out", filepath.Join(dir, "x"), "--data", fx.data}, "head count was assumed")
	if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
		t.Errorf("a refused compress left its directory")
	}
	// Right heads, the wrong normalisation and eps: near chance.
	runBad(t, []string{"compress", "--from", fx.path, "--heads", "4", "--mean", "0.9", "--std", "0.1", "--target-flops", "2", "--out", filepath.Join(dir, "x"), "--data", fx.data}, "near chance")
	runBad(t, []string{"compress", "--from", fx.path, "--out", filepath.Join(dir, "y")}, "give one target")
	runBad(t, []string{"compress", "--from", fx.path, "--target-flops", "2", "--out", out}, "holds a compress run already")
}

// TestCompressKillResume kills the real binary with SIGKILL in each stage;
// --resume must end with the report of an uninterrupted run and a
// byte-identical bundle.
func TestCompressKillResume(t *testing.T) {
	fx := published(t)
	if testing.Short() {
		t.Skip("builds the binary and runs six compressions")
	}
	bin := buildVitcBinary(t)
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref")
	if code, _, errOut := runBin(t, bin, compressArgs(fx, ref)...); code != 0 {
		t.Fatalf("uninterrupted compress: exit %d: %s", code, errOut)
	}
	want := comparableCompress(t, ref)
	for _, stage := range []string{"source", "taylor", "prune", "export", "sim"} {
		out := filepath.Join(dir, stage)
		killed := killInStage(t, bin, compressArgs(fx, out), out, stage)
		if !killed {
			t.Errorf("stage %s: the run finished before it could be killed", stage)
		}
		if code, _, errOut := runBin(t, bin, "compress", "--resume", "--out", out); code != 0 {
			t.Fatalf("resume after a kill in %s: exit %d: %s", stage, code, errOut)
		}
		if got := comparableCompress(t, out); got.report != want.report {
			t.Errorf("killed in %s: report\n%s\nwant\n%s", stage, got.report, want.report)
		} else if !bytes.Equal(got.bundle, want.bundle) {
			t.Errorf("killed in %s: the bundle differs from the uninterrupted run's", stage)
		}
	}
}

// killInStage starts compress and kills it with SIGKILL once stage has
// started: for the training stages, once its first state is saved (an epoch
// done), else as soon as it is announced. It reports whether it killed.
func killInStage(t *testing.T, bin string, args []string, out, stage string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	if stage == "source" {
		// The source stage prints nothing until it has passed its checks
		// (refused input gets one line): its directory says it started.
		go func() {
			for ctx.Err() == nil {
				if _, err := os.Stat(filepath.Join(out, "source")); err == nil {
					close(started)
					return
				}
				time.Sleep(100 * time.Microsecond)
			}
		}()
		go func() { _, _ = io.Copy(io.Discard, stderr) }()
	} else {
		go func() {
			sc := bufio.NewScanner(stderr)
			sc.Split(scanLinesOrCR)
			once := false
			for sc.Scan() {
				if !once && strings.HasPrefix(sc.Text(), "stage ") && strings.Contains(sc.Text(), " "+stage+": ") {
					once = true
					close(started)
				}
			}
		}()
	}
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatalf("stage %s never started", stage)
	}
	if stage == "taylor" || stage == "prune" {
		state := filepath.Join(out, stage, "train_state.safetensors")
		for {
			if _, err := os.Stat(state); err == nil {
				break
			}
			if ctx.Err() != nil {
				return false
			}
			time.Sleep(time.Millisecond)
		}
	}
	killed := cmd.Process.Signal(syscall.SIGKILL) == nil
	err = cmd.Wait()
	return killed && err != nil
}

// scanLinesOrCR splits on \n and on the progress bar's \r.
func scanLinesOrCR(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

type comparableRun struct {
	report string
	bundle []byte // every file of the bundle, in name order
}

// comparableCompress reads a finished run: its report without the times
// and the run directory's name, and its bundle's bytes.
func comparableCompress(t *testing.T, out string) comparableRun {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep compressReport
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	rep.TotalSeconds = 0
	for i := range rep.Stages {
		rep.Stages[i].Seconds, rep.Stages[i].PeakRSSBytes = 0, 0 // measured, not computed
	}
	js, _ := json.MarshalIndent(rep, "", " ")
	report := strings.ReplaceAll(string(js), out, "OUT")
	var bundle []byte
	root := filepath.Join(out, "export", "bundle")
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		bundle = append(append(bundle, p[len(root):]...), data...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return comparableRun{report: report, bundle: bundle}
}
