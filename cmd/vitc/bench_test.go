package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

func TestBenchAttentionJSON(t *testing.T) {
	var out bytes.Buffer
	o := &benchAttentionOptions{Tokens: []int{16, 32}, HeadDim: 8, Heads: 2, Batch: 1, Repeats: 2, JSON: true}
	if err := runBenchAttention(context.Background(), o, &out); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Results []map[string]float64 `json:"results"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if len(rep.Results) != 2 {
		t.Fatalf("%d results, want 2: %s", len(rep.Results), out.String())
	}
	for i, r := range rep.Results {
		if len(r) != 4 {
			t.Errorf("result %d has keys %v, want exactly tokens, softmax_s, taylor_s, speedup", i, r)
		}
		if r["tokens"] != float64(o.Tokens[i]) {
			t.Errorf("result %d: tokens %v, want %d", i, r["tokens"], o.Tokens[i])
		}
		for _, k := range []string{"softmax_s", "taylor_s", "speedup"} {
			if !(r[k] > 0) {
				t.Errorf("result %d: %s = %v, want positive", i, k, r[k])
			}
		}
	}
}

func TestBenchAttentionTable(t *testing.T) {
	code, out, errOut := vitcRun(t, "bench", "attention", "--tokens", "8,24", "--head-dim", "4", "--repeats", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "speed-up") || !strings.Contains(out, "24") {
		t.Errorf("table lacks a header or a row:\n%s", out)
	}
}

func TestBenchModelJSON(t *testing.T) {
	for _, attn := range []string{"softmax", "taylor"} {
		t.Run(attn, func(t *testing.T) {
			code, out, errOut := vitcRun(t, "bench", "--model", "micro", "--dim", "16", "--depth", "1", "--heads", "2",
				"--batch", "2", "--steps", "1", "--warmup", "1", "--attention", attn, "--json")
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var rep map[string]any
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("output %q: %v", out, err)
			}
			for _, k := range []string{"train_img_s", "infer_img_s", "peak_rss_bytes", "train_gflops", "infer_gflops", "batch"} {
				if v, ok := rep[k].(float64); !ok || !(v > 0) {
					t.Errorf("%s = %v, want a positive number", k, rep[k])
				}
			}
			for k, want := range map[string]string{"model": "micro", "attention": attn} {
				if rep[k] != want {
					t.Errorf("%s = %v, want %q", k, rep[k], want)
				}
			}
			if s, _ := rep["blas"].(string); s == "" {
				t.Errorf("blas = %v, want a name", rep["blas"])
			}
		})
	}
}

func TestBenchModelTable(t *testing.T) {
	for _, engine := range []string{"", "gorgonia"} {
		var out bytes.Buffer
		o := &benchOptions{architectureFlags: architectureFlags{Model: "micro", Depth: 1}, Batch: 2, Steps: 1, Engine: engine}
		if err := runBench(context.Background(), o, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		want := []string{"train", "inference", "peak RSS", "GFLOPS"}
		if engine != "" { // side by side with the native engine
			want = append(want, "train (gorgonia)", "the native engine is", "train CPU")
		}
		for _, s := range want {
			if !strings.Contains(out.String(), s) {
				t.Errorf("output lacks %q:\n%s", s, out.String())
			}
		}
	}
}

func TestBenchRejectsBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "--model", "nope"},
		{"bench", "--attention", "nope"},
		{"bench", "--batch", "0"},
		{"bench", "--steps", "0"},
		{"bench", "stray"},
		{"bench", "attention", "--tokens", "0"},
		{"bench", "attention", "--tokens", "x"},
		{"bench", "attention", "--head-dim", "0"},
		{"bench", "attention", "--repeats", "0"},
	} {
		code, _, errOut := vitcRun(t, args...)
		if code != exitBadInput || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and one line", args, code, errOut, exitBadInput)
		}
	}
}

func TestBenchStopsWhenInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := runBenchAttention(ctx, &benchAttentionOptions{Tokens: []int{8}, HeadDim: 4, Heads: 1, Batch: 1, Repeats: 1}, &bytes.Buffer{})
	if ee, ok := err.(*exitError); !ok || ee.code != exitInterrupted {
		t.Errorf("got %v, want exit %d", err, exitInterrupted)
	}
}

// --recompute trains the same steps with less activation memory.
func TestBenchRecompute(t *testing.T) {
	pass := map[bool]float64{}
	for _, re := range []bool{false, true} {
		args := []string{"bench", "--model", "micro", "--depth", "4", "--batch", "8", "--steps", "1", "--warmup", "0", "--json"}
		if re {
			args = append(args, "--recompute")
		}
		code, out, errOut := vitcRun(t, args...)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		var rep map[string]any
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		if rep["recompute"] != re || !(rep["train_peak_rss_bytes"].(float64) > 0) {
			t.Errorf("recompute %v: report %v", re, rep)
		}
		pass[re] = rep["train_pass_peak_bytes"].(float64)
	}
	if !(pass[true] > 0 && pass[true] < pass[false]/2) {
		t.Errorf("a training step's activations and gradients held %v bytes with --recompute, %v without", pass[true], pass[false])
	}
	if code, _, errOut := vitcRun(t, "bench", "--model", "micro", "--recompute", "--engine", "gorgonia"); code != exitBadInput {
		t.Errorf("--recompute with the Gorgonia engine: exit %d (%s)", code, errOut)
	}
}

// --token-keep times the model a token-pruned checkpoint is: fewer FLOPs
// per image than the same preset without it, at the layers prune plans.
func TestBenchTokenKeep(t *testing.T) {
	run := func(extra ...string) map[string]any {
		args := append([]string{"bench", "--model", "micro", "--dim", "16", "--depth", "4", "--heads", "2",
			"--batch", "2", "--steps", "1", "--warmup", "0", "--attention", "taylor", "--json"}, extra...)
		code, out, errOut := vitcRun(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", extra, code, errOut)
		}
		var rep map[string]any
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("output %q: %v", out, err)
		}
		return rep
	}
	dense, pruned := run(), run("--token-keep", "0.5")
	if !(pruned["flops_per_image"].(float64) < dense["flops_per_image"].(float64)) {
		t.Errorf("flops per image %v with --token-keep 0.5, %v without: want fewer", pruned["flops_per_image"], dense["flops_per_image"])
	}
	cfg := pruned["config"].(map[string]any)
	if cfg["token_keep"] != 0.5 || len(cfg["token_layers"].([]any)) == 0 {
		t.Errorf("config %v: want token_keep 0.5 at the default layers", cfg)
	}
	own := run("--token-keep", "0.5", "--token-layers", "2")
	if got := own["config"].(map[string]any)["token_layers"].([]any); len(got) != 1 || got[0] != 2.0 {
		t.Errorf("--token-layers 2: config token_layers %v", got)
	}
	for _, bad := range [][]string{{"--token-keep", "1"}, {"--token-keep", "0.5", "--token-layers", "4"}} {
		code, _, errOut := vitcRun(t, append([]string{"bench", "--model", "micro", "--depth", "4", "--steps", "1"}, bad...)...)
		if code != 2 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "--token-") {
			t.Errorf("%v: exit %d, stderr %q: want 2 and one line naming the flag", bad, code, errOut)
		}
	}
}
