//go:build unix

package main

// The crash acceptance check: a real `vitc train` process is killed with
// SIGKILL at several moments (fixed times, and moments found by watching the
// run directory: before any state exists, while the state file is being
// written, just after it was renamed into place at an epoch boundary and
// mid-epoch, just after the final "done" state). Each time the directory must
// hold only complete files, `vitc train --resume` must finish the run with
// the planned epoch count, and the result must be bit-identical to an
// uninterrupted run with the same seed.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"vitc/internal/safetensors"
	"vitc/vit/pipeline"
	"vitc/vit/training"
)

const crashEpochs = 4

// crashTrainArgs is a ~3 s, 4-epoch run that checkpoints every 200 ms.
var crashTrainArgs = []string{"train", "--data", "synthetic", "--epochs", fmt.Sprint(crashEpochs),
	"--dim", "16", "--depth", "1", "--heads", "2", "--patch", "7", "--batch", "32",
	"--checkpoint-every", "200ms", "--seed", "3"}

func crashArgs(dir string) []string {
	return append(slices.Clip(crashTrainArgs), "--out", dir)
}

// tmpFileRE matches atomicfile's temporary files (".NAME.tmp-RANDOM").
var tmpFileRE = regexp.MustCompile(`^\..+\.tmp-[0-9]+$`)

// How often the watcher looks at the run directory: a rename is followed by
// the next file's write within a millisecond or two.
const (
	crashPollEvery = time.Millisecond
	crashPollFine  = 250 * time.Microsecond
)

// buildVitcBinary builds the real command once per test, with the tags in
// $VITC_BUILD_TAGS (none by default: the pure-Go build).
func buildVitcBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vitc")
	args := []string{"build"}
	if tags := strings.TrimSpace(os.Getenv("VITC_BUILD_TAGS")); tags != "" {
		args = append(args, "-tags", tags)
	}
	args = append(args, "-o", bin, ".")
	goBin := "go"
	if _, err := exec.LookPath(goBin); err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	start := time.Now()
	out, err := exec.Command(goBin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("built %s in %.1fs", bin, time.Since(start).Seconds())
	return bin
}

// runBin runs the binary to completion and returns its exit status and output.
func runBin(t *testing.T, bin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode(), out.String(), errb.String()
	default:
		t.Fatalf("vitc %s: %v (stderr %q)", strings.Join(args, " "), err, errb.String())
		return -1, "", ""
	}
}

// statePeek is the progress recorded in a state file's metadata, read from
// the header only so the watcher can react within a millisecond.
type statePeek struct {
	Epoch     int               `json:"epoch"`
	NextBatch int               `json:"next_batch"`
	Done      bool              `json:"done"`
	History   []json.RawMessage `json:"history"`
}

func (p *statePeek) String() string {
	if p == nil {
		return "no state"
	}
	return fmt.Sprintf("epoch %d batch %d, %d epochs in history, done=%v", p.Epoch+1, p.NextBatch, len(p.History), p.Done)
}

func peekState(path string) (*statePeek, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var n uint64
	if err := binary.Read(f, binary.LittleEndian, &n); err != nil {
		return nil, err
	}
	if n > 1<<24 {
		return nil, fmt.Errorf("header length %d", n)
	}
	hdr := make([]byte, n)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return nil, err
	}
	var h struct {
		Meta map[string]string `json:"__metadata__"`
	}
	if err := json.Unmarshal(hdr, &h); err != nil {
		return nil, err
	}
	var p statePeek
	if err := json.Unmarshal([]byte(h.Meta["vitc_state"]), &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// watchView is what a kill trigger sees at each poll.
type watchView struct {
	elapsed      time.Duration // since the process started
	dirExists    bool
	stateChanges int        // renames of the state file seen since the start
	state        *statePeek // latest state file, nil if none
	stateTmp     bool       // a temporary state file is being written
}

type killPoint struct {
	name string
	fire func(v watchView) bool
	fine bool // poll every crashPollFine instead of crashPollEvery
}

func afterTime(d time.Duration) func(watchView) bool {
	return func(v watchView) bool { return v.elapsed >= d }
}

// crashKillPoints are the moments at which a fresh run is killed.
var crashKillPoints = []killPoint{
	// Almost always before the first checkpoint: resume must refuse.
	{name: "dir-created", fire: func(v watchView) bool { return v.dirExists }},
	{name: "0.7s", fire: afterTime(700 * time.Millisecond)},
	{name: "1.5s", fire: afterTime(1500 * time.Millisecond)},
	{name: "2.6s", fire: afterTime(2600 * time.Millisecond)},
	// Just after a mid-epoch state was saved (--checkpoint-every), in the
	// first epoch and in a later one: the timed points above hit such
	// states only when the machine's speed happens to line up.
	{name: "mid-epoch-1", fire: func(v watchView) bool { return v.state != nil && !v.state.Done && v.state.NextBatch > 0 }},
	{name: "mid-epoch-3", fire: func(v watchView) bool {
		return v.state != nil && !v.state.Done && v.state.NextBatch > 0 && len(v.state.History) >= 2
	}},
	// While a new state is being written, after one already exists.
	{name: "writing-state", fire: func(v watchView) bool { return v.state != nil && v.state.Epoch >= 1 && v.stateTmp }, fine: true},
	// Just after the epoch-2 state was renamed into place (model and
	// metrics for it not yet written).
	{name: "epoch2-boundary-renamed", fire: func(v watchView) bool {
		return v.state != nil && len(v.state.History) == 2 && v.state.NextBatch == 0
	}},
	// Just after the final state (done) was renamed into place, before the
	// final model, metrics and report are written.
	{name: "final-state-renamed", fire: func(v watchView) bool { return v.state != nil && v.state.Done }},
}

type killResult struct {
	killed  bool // false: the process exited by itself first
	at      time.Duration
	code    int // exit status when not killed
	stderr  string
	atState *statePeek
}

// startAndKill starts vitc with args and sends SIGKILL when fire says so.
func startAndKill(t *testing.T, bin, dir string, args []string, kp killPoint) killResult {
	t.Helper()
	var errb bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stderr = &errb
	statePath := filepath.Join(dir, training.StateFile)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	reaped := false
	defer func() {
		if !reaped { // t.Fatal on the way: leave no process behind
			cmd.Process.Kill()
			<-waited
		}
	}()
	v := watchView{}
	var lastStat os.FileInfo
	if fi, err := os.Stat(statePath); err == nil {
		lastStat = fi // a resumed run: changes count from here
		v.state, _ = peekState(statePath)
	}
	for {
		select {
		case err := <-waited:
			reaped = true
			res := killResult{at: time.Since(start), stderr: errb.String(), atState: v.state}
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				res.code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			return res
		default:
		}
		v.elapsed = time.Since(start)
		if v.elapsed > time.Minute {
			t.Fatalf("vitc %v still running after a minute", args)
		}
		if ents, err := os.ReadDir(dir); err == nil {
			v.dirExists = true
			v.stateTmp = false
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), "."+training.StateFile+".tmp-") {
					v.stateTmp = true
				}
			}
		}
		if fi, err := os.Stat(statePath); err == nil && (lastStat == nil || !os.SameFile(fi, lastStat)) {
			// atomicfile renames a new inode into place on every save.
			if p, err := peekState(statePath); err == nil {
				lastStat = fi
				v.stateChanges++
				v.state = p
			}
		}
		if kp.fire(v) {
			at := time.Since(start)
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
				t.Fatal(err)
			}
			err := <-waited
			reaped = true
			res := killResult{at: at, stderr: errb.String(), atState: v.state}
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
					res.killed = true
					return res
				}
				res.code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			return res // exited by itself just before the signal
		}
		if kp.fine {
			time.Sleep(crashPollFine)
		} else {
			time.Sleep(crashPollEvery)
		}
	}
}

// dirCheck is what a killed run left behind.
type dirCheck struct {
	state       *training.Saved // nil: no state file
	modelExists bool
	metrics     int // lines in metrics.jsonl
	tmpFiles    []string
}

// checkKilledDir asserts that every file in dir is absent or complete and
// loadable, and returns what is there.
func checkKilledDir(t *testing.T, bin, dir string) dirCheck {
	t.Helper()
	var dc dirCheck
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return dc
	} else if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		name, path := e.Name(), filepath.Join(dir, e.Name())
		switch {
		case name == training.StateFile:
			rp, err := training.ReadSaved(dir)
			if err != nil {
				t.Errorf("state file does not load after SIGKILL: %v", err)
				continue
			}
			dc.state = rp
		case name == training.ModelFile:
			dc.modelExists = true
			code, out, errOut := runBin(t, bin, "inspect", "--json", path)
			var rep inspectReport
			if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Params == 0 {
				t.Errorf("model.safetensors does not load after SIGKILL: inspect exit %d %q %q", code, out, errOut)
			}
		case name == training.MetricsFile:
			ms, err := readMetrics(path)
			if err != nil {
				t.Errorf("metrics.jsonl after SIGKILL: %v", err)
			}
			dc.metrics = len(ms)
		case name == "report.json":
			var rep pipeline.TrainReport
			if b, err := os.ReadFile(path); err != nil || json.Unmarshal(b, &rep) != nil {
				t.Errorf("report.json after SIGKILL is not valid JSON: %v", err)
			}
		case name == "curves.png":
			f, err := os.Open(path)
			if err == nil {
				_, err = png.Decode(f)
				f.Close()
			}
			if err != nil {
				t.Errorf("curves.png after SIGKILL: %v", err)
			}
		case tmpFileRE.MatchString(name):
			dc.tmpFiles = append(dc.tmpFiles, name)
		default:
			t.Errorf("unexpected file %s in the run directory", name)
		}
	}
	if dc.state != nil {
		// metrics.jsonl is written after the state: it lags by at most one save.
		if h := len(dc.state.State.History); dc.metrics != h && dc.metrics != h-1 {
			t.Errorf("metrics.jsonl has %d epochs, the state %d", dc.metrics, h)
		}
		if !dc.modelExists {
			// The model follows the state within milliseconds; only a kill
			// right after the very first state may leave none yet.
			t.Logf("state without model.safetensors (killed right after the first save)")
		}
	} else if dc.modelExists || dc.metrics > 0 {
		t.Errorf("model or metrics without a state file")
	}
	return dc
}

func readMetrics(path string) ([]training.EpochMetrics, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ms []training.EpochMetrics
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var m training.EpochMetrics
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return ms, fmt.Errorf("line %d: %v", len(ms)+1, err)
		}
		if m.Epoch != len(ms)+1 {
			return ms, fmt.Errorf("line %d is epoch %d", len(ms)+1, m.Epoch)
		}
		ms = append(ms, m)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		return ms, errors.New("last line is not terminated")
	}
	return ms, nil
}

// finishedRun is a completed run directory's outcome.
type finishedRun struct {
	report  pipeline.TrainReport
	metrics []training.EpochMetrics
	model   []byte
}

func readFinished(t *testing.T, dir string) finishedRun {
	t.Helper()
	var fr finishedRun
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatalf("finished run: %v", err)
	}
	if err := json.Unmarshal(b, &fr.report); err != nil {
		t.Fatalf("report.json: %v", err)
	}
	if fr.metrics, err = readMetrics(filepath.Join(dir, training.MetricsFile)); err != nil {
		t.Errorf("metrics.jsonl: %v", err)
	}
	if fr.model, err = os.ReadFile(filepath.Join(dir, training.ModelFile)); err != nil {
		t.Fatal(err)
	}
	if fr.report.Epochs != crashEpochs {
		t.Errorf("report.json says %d epochs, want %d", fr.report.Epochs, crashEpochs)
	}
	if len(fr.metrics) != crashEpochs {
		t.Errorf("metrics.jsonl has %d lines, want %d", len(fr.metrics), crashEpochs)
	}
	rp, err := training.ReadSaved(dir)
	if err != nil {
		t.Errorf("final state: %v", err)
	} else if !rp.State.Done || len(rp.State.History) != crashEpochs {
		t.Errorf("final state: done=%v with %d epochs, want done with %d", rp.State.Done, len(rp.State.History), crashEpochs)
	}
	return fr
}

// compareWithReference asserts that a killed-and-resumed run ended exactly
// where the uninterrupted one did.
func compareWithReference(t *testing.T, got, want finishedRun) {
	t.Helper()
	if got.report.TestAccuracy != want.report.TestAccuracy || got.report.TestTop5 != want.report.TestTop5 {
		t.Errorf("test accuracy %v (top-5 %v), uninterrupted run %v (top-5 %v)",
			got.report.TestAccuracy, got.report.TestTop5, want.report.TestAccuracy, want.report.TestTop5)
	}
	for i := range min(len(got.metrics), len(want.metrics)) {
		g, w := got.metrics[i], want.metrics[i]
		if g.TrainLoss != w.TrainLoss || g.TrainAcc != w.TrainAcc || g.TestLoss != w.TestLoss || g.TestAcc != w.TestAcc || g.LR != w.LR {
			t.Errorf("metrics epoch %d: got loss %v acc %v test %v/%v lr %v, uninterrupted %v %v %v/%v %v", i+1,
				g.TrainLoss, g.TrainAcc, g.TestLoss, g.TestAcc, g.LR, w.TrainLoss, w.TrainAcc, w.TestLoss, w.TestAcc, w.LR)
		}
	}
	if !bytes.Equal(got.model, want.model) {
		t.Errorf("model.safetensors differs from the uninterrupted run's: %s", diffSafetensors(got.model, want.model))
	}
}

// diffSafetensors names the first difference between two checkpoints.
func diffSafetensors(a, b []byte) string {
	fa, err := safetensors.Parse(a)
	if err != nil {
		return err.Error()
	}
	fb, err := safetensors.Parse(b)
	if err != nil {
		return err.Error()
	}
	var diffs []string
	for _, ta := range fa.Tensors {
		tb, ok := fb.Lookup(ta.Name)
		if !ok {
			diffs = append(diffs, ta.Name+" missing")
			continue
		}
		if bytes.Equal(ta.Data, tb.Data) {
			continue
		}
		va, _ := ta.Float32s()
		vb, _ := tb.Float32s()
		maxd := 0.0
		for i := range min(len(va), len(vb)) {
			maxd = math.Max(maxd, math.Abs(float64(va[i]-vb[i])))
		}
		diffs = append(diffs, fmt.Sprintf("%s (max |diff| %.3g)", ta.Name, maxd))
	}
	if len(diffs) == 0 {
		return "tensors equal, metadata differs"
	}
	return strings.Join(diffs, ", ")
}

func tmpFilesIn(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var tmp []string
	for _, e := range ents {
		if tmpFileRE.MatchString(e.Name()) {
			tmp = append(tmp, e.Name())
		}
	}
	return tmp
}

// resumeAfterKill continues a killed run (or, when it was killed before any
// state existed, checks that --resume refuses and starts afresh).
func resumeAfterKill(t *testing.T, bin, dir string, dc dirCheck) {
	t.Helper()
	code, _, errOut := runBin(t, bin, "train", "--resume", "--out", dir)
	if dc.state == nil {
		if code != 2 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "cannot resume") {
			t.Fatalf("--resume without a state: exit %d, stderr %q; want 2 and one \"cannot resume\" line", code, errOut)
		}
		if code, _, errOut = runBin(t, bin, crashArgs(dir)...); code != 0 {
			t.Fatalf("fresh start after a kill before any state: exit %d: %s", code, errOut)
		}
		return
	}
	if code != 0 {
		s := dc.state.State
		t.Fatalf("--resume from the state at epoch %d batch %d (done=%v): exit %d: %s", s.Epoch+1, s.NextBatch, s.Done, code, errOut)
	}
	want := fmt.Sprintf("resuming %s at epoch %d, batch %d", dir, dc.state.State.Epoch+1, dc.state.State.NextBatch)
	if !dc.state.State.Done && !strings.Contains(errOut, want) {
		t.Errorf("resume stderr %q lacks %q", errOut, want)
	}
}

func TestCrashKillResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds vitc and trains for ~30 s")
	}
	testStart := time.Now()
	bin := buildVitcBinary(t)
	root := t.TempDir()

	refDir := filepath.Join(root, "reference")
	start := time.Now()
	if code, _, errOut := runBin(t, bin, crashArgs(refDir)...); code != 0 {
		t.Fatalf("uninterrupted run: exit %d: %s", code, errOut)
	}
	ref := readFinished(t, refDir)
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("uninterrupted run: %.2fs, test accuracy %v", time.Since(start).Seconds(), ref.report.TestAccuracy)

	midRun := 0 // kills that left a mid-epoch state
	for _, kp := range crashKillPoints {
		t.Run(kp.name, func(t *testing.T) {
			dir := filepath.Join(root, kp.name)
			start := time.Now()
			kr := startAndKill(t, bin, dir, crashArgs(dir), kp)
			if !kr.killed {
				// A slow machine can finish before a late kill point; the run
				// must then simply be complete.
				t.Logf("finished (exit %d) before the kill at %.2fs", kr.code, kr.at.Seconds())
				if kr.code != 0 {
					t.Fatalf("run exited %d: %s", kr.code, kr.stderr)
				}
			} else {
				dc := checkKilledDir(t, bin, dir)
				if len(dc.tmpFiles) > 1 {
					t.Errorf("%d temporary files after one kill: %v", len(dc.tmpFiles), dc.tmpFiles)
				}
				desc := "no state"
				if s := dc.state; s != nil {
					desc = fmt.Sprintf("state at epoch %d batch %d (%d epochs done, done=%v)", s.State.Epoch+1, s.State.NextBatch, len(s.State.History), s.State.Done)
					if !s.State.Done && s.State.NextBatch > 0 {
						midRun++
					}
				}
				t.Logf("SIGKILL at %.3fs: %s; model %v, %d metrics lines, temp files %v",
					kr.at.Seconds(), desc, dc.modelExists, dc.metrics, dc.tmpFiles)
				resumeAfterKill(t, bin, dir, dc)
			}
			got := readFinished(t, dir)
			compareWithReference(t, got, ref)
			if tmp := tmpFilesIn(t, dir); len(tmp) > 1 {
				t.Errorf("temporary files after kill and resume: %v", tmp)
			} else if len(tmp) == 1 {
				t.Logf("left behind by the killed write (never read): %v", tmp)
			}
			t.Logf("kill + resume: %.2fs", time.Since(start).Seconds())
		})
	}

	// One directory killed again and again, each time just after the second
	// state save of the (re)started process, until a process finishes.
	t.Run("repeated", func(t *testing.T) {
		dir := filepath.Join(root, "repeated")
		start := time.Now()
		args := crashArgs(dir)
		kills, lastStep := 0, -1
		for {
			kr := startAndKill(t, bin, dir, args, killPoint{fire: func(v watchView) bool { return v.stateChanges >= 2 }})
			if !kr.killed {
				if kr.code != 0 {
					t.Fatalf("after %d kills: exit %d: %s", kills, kr.code, kr.stderr)
				}
				break
			}
			kills++
			dc := checkKilledDir(t, bin, dir)
			if t.Failed() {
				t.FailNow()
			}
			if dc.state == nil {
				t.Fatalf("kill %d left no state", kills)
			}
			if !dc.state.State.Done && dc.state.State.NextBatch > 0 {
				midRun++
			}
			if dc.state.State.Done {
				// Killed after the final save: resuming must still produce
				// the outputs.
				resumeAfterKill(t, bin, dir, dc)
				break
			}
			// Every process saves twice before it is killed, so every kill
			// must find the run further on; how many kills it takes depends
			// only on how fast the machine is.
			if st := dc.state.State.Step; st <= lastStep {
				t.Fatalf("kill %d made no progress: still at step %d (%s)", kills, st, kr.atState)
			} else {
				lastStep = st
			}
			if kills > 500 {
				t.Fatalf("still running after %d kills: %s", kills, kr.atState)
			}
			args = []string{"train", "--resume", "--out", dir}
		}
		got := readFinished(t, dir)
		compareWithReference(t, got, ref)
		tmp := tmpFilesIn(t, dir)
		if len(tmp) > kills {
			t.Errorf("%d temporary files after %d kills: %v", len(tmp), kills, tmp)
		}
		t.Logf("%d kills, %.2fs; %d stale temporary files accumulated: %v", kills, time.Since(start).Seconds(), len(tmp), tmp)
	})
	if midRun < 2 {
		t.Errorf("only %d kills hit a mid-epoch state, want at least 2", midRun)
	}
	t.Logf("total %.1fs; %d kills left a mid-epoch state", time.Since(testStart).Seconds(), midRun)
}
