//go:build unix

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vitc/vit/pipeline"
)

// TestPruneKillResume kills a real `vitc prune` with SIGKILL in the middle
// of an epoch and just after an epoch boundary's state was saved, resumes
// each with `vitc prune --resume --out DIR`, and requires the uninterrupted
// run's pruned accuracy and a byte-identical pruned checkpoint: the block
// scores, masks, schedule positions and optimizer moments all survive.
func TestPruneKillResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds vitc and prunes digits three times")
	}
	digits := os.Getenv("VITC_DIGITS")
	if digits == "" {
		t.Skip("VITC_DIGITS not set (make test sets it): the test prunes a digits model to stay quick")
	}
	bin := buildVitcBinary(t)
	root := t.TempDir()
	teacherDir := filepath.Join(root, "teacher")
	if code, _, errOut := vitcRun(t, "train", "--data", "digits:"+digits, "--out", teacherDir, "--epochs", "2",
		"--patch", "2", "--dim", "16", "--depth", "2", "--heads", "2", "--batch", "64"); code != 0 {
		t.Fatalf("train teacher: %s", errOut)
	}
	teacher := filepath.Join(teacherDir, "model.safetensors")
	args := func(dir string) []string {
		return []string{"prune", "--teacher", teacher, "--out", dir, "--epochs", "4", "--block", "4", "--batch", "16",
			"--checkpoint-every", "100ms", "--seed", "3"}
	}
	type outcome struct {
		report pipeline.PruneReport
		model  []byte
	}
	read := func(dir string) outcome {
		t.Helper()
		var o outcome
		b, err := os.ReadFile(filepath.Join(dir, "report.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &o.report); err != nil {
			t.Fatal(err)
		}
		if o.model, err = os.ReadFile(filepath.Join(dir, "model.safetensors")); err != nil {
			t.Fatal(err)
		}
		return o
	}
	refDir := filepath.Join(root, "reference")
	if code, _, errOut := runBin(t, bin, args(refDir)...); code != 0 {
		t.Fatalf("uninterrupted prune: exit %d: %s", code, errOut)
	}
	ref := read(refDir)

	for _, kp := range []killPoint{
		{name: "mid-epoch", fire: func(v watchView) bool {
			return v.state != nil && len(v.state.History) == 0 && v.state.NextBatch > 0
		}},
		// After epoch 3 of 4 the density ramp (to 70 % of the steps) is
		// over: the masks are frozen and no longer follow the scores, so
		// only the pruner's saved state can bring them back.
		{name: "epoch-boundary", fire: func(v watchView) bool {
			return v.state != nil && len(v.state.History) == 3 && v.state.NextBatch == 0
		}},
	} {
		t.Run(kp.name, func(t *testing.T) {
			dir := filepath.Join(root, kp.name)
			kr := startAndKill(t, bin, dir, args(dir), kp)
			if !kr.killed {
				t.Fatalf("prune finished (exit %d) before the kill point; stderr %q", kr.code, kr.stderr)
			}
			if _, err := os.Stat(filepath.Join(dir, "model.safetensors")); err == nil {
				t.Error("a killed prune left a model.safetensors: only the compacted model at the end may be written")
			}
			code, _, errOut := runBin(t, bin, "prune", "--resume", "--out", dir)
			if code != 0 || !strings.Contains(errOut, "resuming "+dir) {
				t.Fatalf("prune --resume after SIGKILL at %s: exit %d: %s", kr.atState, code, errOut)
			}
			got := read(dir)
			if got.report.PrunedAccuracy != ref.report.PrunedAccuracy || got.report.FLOPsAfter != ref.report.FLOPsAfter {
				t.Errorf("resumed: pruned accuracy %v, %d FLOPs; uninterrupted %v, %d FLOPs",
					got.report.PrunedAccuracy, got.report.FLOPsAfter, ref.report.PrunedAccuracy, ref.report.FLOPsAfter)
			}
			if !bytes.Equal(got.model, ref.model) {
				t.Errorf("resumed pruned checkpoint differs from the uninterrupted run's: %s", diffSafetensors(got.model, ref.model))
			}
			t.Logf("killed at %s (%.2fs); resumed to pruned accuracy %v", kr.atState, kr.at.Seconds(), got.report.PrunedAccuracy)
		})
	}
}
