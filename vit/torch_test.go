package vit_test

// Cross-checks between vitc and the independent PyTorch reference
// (tools/torchref/torchref.py), in both directions:
//
//   - testdata/torch/ holds checkpoints, inputs and logits written by PyTorch;
//     vitc must reproduce the logits (TestTorchReferenceLogits).
//   - testdata/vitc/ holds a checkpoint, input and logits written by vitc;
//     vitc must keep reproducing them (TestVitcFixtureLogits) and, where
//     /usr/bin/python3 has torch, PyTorch must agree with them
//     (TestVitcFixtureTorchCheck). Regenerate with
//     VITC_UPDATE_FIXTURES=1 go test ./vit -run TestUpdateVitcFixtures
//
// Neither direction needs PyTorch to run: the torch outputs are committed.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"vitc/autograd"
	"vitc/internal/npy"
	"vitc/vit"
)

const (
	torchFixtureDir = "testdata/torch"
	vitcFixtureDir  = "testdata/vitc"

	// torchRefTol bounds max|vitc − torch| / max|torch| for a float32 forward
	// pass against the float64 reference. testdata/torch/README.md measures
	// float32 rounding at ~6e-7 and the subtlest listed mistake (tanh GELU)
	// at 1e-4 to 1.7e-4, so 1e-5 keeps >10x margin on both sides, where the
	// torchref check tolerance of 1e-4 would only just catch it.
	torchRefTol = 1e-5

	// vitcFixtureTol bounds drift of vitc's own committed logits.
	vitcFixtureTol = 1e-5
)

// readNpy reads a float32 .npy fixture.
func readNpy(t *testing.T, path string) ([]float32, []int) {
	t.Helper()
	data, shape, err := npy.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data, shape
}

// maxRelErr is max|got − want| / max|want|, the measure torchref check uses.
func maxRelErr(got, want []float32) float64 {
	var diff, scale float64
	for i := range want {
		diff = math.Max(diff, math.Abs(float64(got[i])-float64(want[i])))
		scale = math.Max(scale, math.Abs(float64(want[i])))
	}
	if math.IsNaN(diff) || scale == 0 {
		return math.Inf(1)
	}
	return diff / scale
}

// rowArgmax is the argmax of each row of a (rows, cols) matrix.
func rowArgmax(x []float32, cols int) []int {
	var out []int
	for lo := 0; lo+cols <= len(x); lo += cols {
		best := lo
		for i := lo; i < lo+cols; i++ {
			if x[i] > x[best] {
				best = i
			}
		}
		out = append(out, best-lo)
	}
	return out
}

// hasNonFinite reports a NaN or ±Inf in x.
func hasNonFinite(x []float32) bool {
	for _, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return true
		}
	}
	return false
}

// attentionAvailable reports whether this build can make a model with the
// given attention kind (vit.New fails for a kind it does not know). Softmax
// and Taylor are both built into vit now; TestTorchReferenceLogits still
// skips, rather than fails, a non-softmax fixture whose kind is missing.
func attentionAvailable(kind string) error {
	cfg, err := vit.Preset("micro")
	if err != nil {
		return err
	}
	cfg.Attention = kind
	_, err = vit.New(cfg, 0)
	return err
}

// torchManifest is the part of testdata/torch/fixtures.json the tests use.
type torchManifest struct {
	Fixtures []torchManifestEntry `json:"fixtures"`
	SHA256   map[string]string    `json:"sha256"`
}

type torchManifestEntry struct {
	Name        string     `json:"name"`
	Preset      string     `json:"preset"`
	Attention   string     `json:"attention"`
	Checkpoint  string     `json:"checkpoint"`
	Input       string     `json:"input"`
	Logits      string     `json:"logits"`
	LogitsShape []int      `json:"logits_shape"`
	Argmax      []int      `json:"argmax"`
	Config      vit.Config `json:"config"` // torchref's keys are vit.Config's JSON names
}

func readTorchManifest(t *testing.T) torchManifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(torchFixtureDir, "fixtures.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m torchManifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("fixtures.json: %v", err)
	}
	return m
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestTorchFixturesIntact guards against fixtures changed by accident (or
// replaced by Git LFS pointers): every data file must match the SHA-256 that
// torchref recorded when it wrote it.
func TestTorchFixturesIntact(t *testing.T) {
	m := readTorchManifest(t)
	if len(m.SHA256) == 0 {
		t.Fatal("fixtures.json lists no sha256")
	}
	for name, want := range m.SHA256 {
		if got := sha256File(t, filepath.Join(torchFixtureDir, name)); got != want {
			t.Errorf("%s: sha256 %s, fixtures.json says %s (regenerate with torchref.py make-fixtures, see README.md)", name, got, want)
		}
	}
}

// TestTorchReferenceLogits loads each PyTorch-written checkpoint the way a
// user loads a timm checkpoint (no metadata; preset and attention given) and
// requires vitc's logits to match the float64 PyTorch reference.
func TestTorchReferenceLogits(t *testing.T) {
	manifest := readTorchManifest(t)
	for _, tc := range []struct {
		name       string
		checkpoint string
		preset     string
		attention  string
		input      string
		logits     string
	}{
		{"micro_softmax", "micro_softmax.safetensors", "micro", "softmax", "micro_input.npy", "micro_softmax_logits.npy"},
		{"micro_taylor", "micro_taylor.safetensors", "micro", "taylor", "micro_input.npy", "micro_taylor_logits.npy"},
		{"deit_tiny", "deit_tiny.safetensors", "deit-tiny", "softmax", "deit_tiny_input.npy", "deit_tiny_logits.npy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The table must describe the fixture torchref wrote.
			i := slices.IndexFunc(manifest.Fixtures, func(f torchManifestEntry) bool {
				return f.Name == tc.name
			})
			if i < 0 {
				t.Fatalf("fixture %s is not in fixtures.json", tc.name)
			}
			fx := manifest.Fixtures[i]
			if fx.Preset != tc.preset || fx.Attention != tc.attention || fx.Checkpoint != tc.checkpoint ||
				fx.Input != tc.input || fx.Logits != tc.logits {
				t.Fatalf("table entry %+v disagrees with fixtures.json %+v", tc, fx)
			}
			wantCfg, err := vit.Preset(tc.preset)
			if err != nil {
				t.Fatal(err)
			}
			wantCfg.Attention = tc.attention
			if !reflect.DeepEqual(fx.Config, wantCfg) {
				t.Fatalf("vitc preset %q with attention %s is %+v; torchref used %+v", tc.preset, tc.attention, wantCfg, fx.Config)
			}

			if err := attentionAvailable(tc.attention); err != nil {
				if tc.attention == "softmax" {
					t.Fatal(err)
				}
				t.Skipf("attention %q not available: %v", tc.attention, err)
			}

			m, meta, err := vit.Load(filepath.Join(torchFixtureDir, tc.checkpoint), vit.LoadOptions{Preset: tc.preset, Attention: tc.attention})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m.Config, wantCfg) {
				t.Errorf("loaded config %+v, want %+v", m.Config, wantCfg)
			}
			if mean, std := vit.DefaultNorm(wantCfg.Channels); !reflect.DeepEqual(meta, vit.Meta{NormMean: mean, NormStd: std}) {
				t.Errorf("checkpoint without metadata gave meta %+v", meta)
			}

			x, xShape := readNpy(t, filepath.Join(torchFixtureDir, tc.input))
			want, wantShape := readNpy(t, filepath.Join(torchFixtureDir, tc.logits))
			n := xShape[0]
			if !slices.Equal(xShape, []int{n, wantCfg.Channels, wantCfg.Image, wantCfg.Image}) {
				t.Fatalf("input shape %v does not fit %+v", xShape, wantCfg)
			}
			if !slices.Equal(wantShape, []int{n, wantCfg.Classes}) || !slices.Equal(wantShape, fx.LogitsShape) {
				t.Fatalf("logits shape %v, want [%d %d]", wantShape, n, wantCfg.Classes)
			}

			start := time.Now()
			got := vit.Predict(m, x, n, n)
			elapsed := time.Since(start)
			if len(got) != len(want) {
				t.Fatalf("Predict returned %d logits, want %d", len(got), len(want))
			}
			rel := maxRelErr(got, want)
			t.Logf("%s: max relative error %.3g vs PyTorch (forward %v)", tc.name, rel, elapsed.Round(time.Millisecond))
			if !(rel < torchRefTol) {
				t.Errorf("%s: max relative error %.3g vs PyTorch, want < %g", tc.name, rel, torchRefTol)
			}
			if am := rowArgmax(got, wantCfg.Classes); !slices.Equal(am, fx.Argmax) {
				t.Errorf("argmax %v, PyTorch %v", am, fx.Argmax)
			}
		})
	}
}

// The vitc-written fixtures, one per attention kind. They share the input,
// the weights (same seed, same perturbation) and the metadata; their configs
// differ only in Attention. The configuration is micro's except for heads and
// classes: the head count cannot be read from tensor shapes, so another tool
// reproduces these logits only if it reads vitc's metadata.
type vitcFixture struct {
	name      string // file stem: <name>.safetensors, <name>_logits.npy
	attention string
}

var vitcFixtures = []vitcFixture{
	{name: "micro_softmax", attention: "softmax"},
	{name: "micro_taylor", attention: "taylor"},
}

func (f vitcFixture) checkpoint() string {
	return filepath.Join(vitcFixtureDir, f.name+".safetensors")
}

func (f vitcFixture) logits() string {
	return filepath.Join(vitcFixtureDir, f.name+"_logits.npy")
}

const (
	vitcFixtureInput = "micro_input.npy" // shared by every vitc fixture
	vitcFixtureSeed  = 20240601
	vitcFixtureBatch = 4
)

func vitcFixtureConfig(t *testing.T, attention string) vit.Config {
	t.Helper()
	cfg, err := vit.Preset("micro")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Heads = 2
	cfg.Classes = 7
	cfg.Attention = attention
	return cfg
}

func vitcFixtureMeta() vit.Meta {
	return vit.Meta{
		Dataset:    "synthetic (vit/torch_test.go fixture)",
		NormMean:   []float32{0.1307},
		NormStd:    []float32{0.3081},
		ClassNames: []string{"zero", "one", "two", "three", "four", "five", "six"},
		Extensions: map[string]json.RawMessage{
			"fixture": json.RawMessage(`{"generator":"vit/torch_test.go TestUpdateVitcFixtures","seed":20240601}`),
		},
	}
}

// perturbForFixture moves every parameter of a freshly initialised model to
// random values at torchref's fixture scales (random_state_dict), so that the
// logits depend visibly on every tensor: timm's init alone leaves attention
// nearly uniform, biases zero and LayerNorm gains one.
func perturbForFixture(m *vit.Model, seed int64) {
	rng := autograd.NewRNG(seed, 77)
	d := float64(m.Dim)
	fanPatch := float64(m.Channels * m.Patch * m.Patch)
	stds := map[string]float64{
		"cls_token":               0.03,
		"pos_embed":               0.03,
		"patch_embed.proj.weight": 0.1 / math.Sqrt(fanPatch),
		"patch_embed.proj.bias":   0.02,
		"attn.qkv.weight":         math.Sqrt(1.5 / d),
		"attn.qkv.bias":           0.05,
		"attn.proj.weight":        1 / math.Sqrt(d),
		"attn.proj.bias":          0.03,
		"mlp.fc1.weight":          1 / math.Sqrt(d),
		"mlp.fc1.bias":            0.05,
		"mlp.fc2.weight":          1 / math.Sqrt(float64(m.Hidden())),
		"mlp.fc2.bias":            0.03,
		"head.weight":             0.1,
		"head.bias":               0.05,
		"norm1.weight":            0.1, "norm2.weight": 0.1, "norm.weight": 0.1,
		"norm1.bias": 0.05, "norm2.bias": 0.05, "norm.bias": 0.05,
	}
	for _, p := range m.Params.List() {
		short := p.Name
		if strings.HasPrefix(short, "blocks.") {
			short = strings.SplitN(short, ".", 3)[2]
		}
		std, ok := stds[short]
		if !ok {
			panic("perturbForFixture: no scale for " + p.Name)
		}
		for i := range p.Data {
			p.Data[i] += float32(std * rng.Normal())
		}
	}
}

func vitcFixtureInputData(cfg vit.Config) []float32 {
	rng := autograd.NewRNG(vitcFixtureSeed, 78)
	x := make([]float32, vitcFixtureBatch*cfg.Channels*cfg.Image*cfg.Image)
	for i := range x {
		x[i] = float32(rng.Normal())
	}
	return x
}

// TestUpdateVitcFixtures rewrites testdata/vitc/ when VITC_UPDATE_FIXTURES=1;
// otherwise it is skipped, so the committed files stay as they are.
func TestUpdateVitcFixtures(t *testing.T) {
	if os.Getenv("VITC_UPDATE_FIXTURES") != "1" {
		t.Skip("set VITC_UPDATE_FIXTURES=1 to regenerate testdata/vitc")
	}
	if err := os.MkdirAll(vitcFixtureDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The input depends only on the sizes, which all fixtures share.
	inCfg := vitcFixtureConfig(t, vitcFixtures[0].attention)
	x := vitcFixtureInputData(inCfg)
	if err := npy.WriteFile(filepath.Join(vitcFixtureDir, vitcFixtureInput), x, []int{vitcFixtureBatch, inCfg.Channels, inCfg.Image, inCfg.Image}); err != nil {
		t.Fatal(err)
	}
	for _, fx := range vitcFixtures {
		cfg := vitcFixtureConfig(t, fx.attention)
		m, err := vit.New(cfg, vitcFixtureSeed)
		if err != nil {
			t.Fatal(err)
		}
		perturbForFixture(m, vitcFixtureSeed)
		if err := m.Save(fx.checkpoint(), vitcFixtureMeta()); err != nil {
			t.Fatal(err)
		}
		// Logits of the model as stored, through the same path users take.
		loaded, _, err := vit.Load(fx.checkpoint(), vit.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		logits := vit.Predict(loaded, x, vitcFixtureBatch, vitcFixtureBatch)
		if err := npy.WriteFile(fx.logits(), logits, []int{vitcFixtureBatch, cfg.Classes}); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s: logits %v, argmax %v", fx.name, logits, rowArgmax(logits, cfg.Classes))
	}
}

// loadVitcFixture loads a committed vitc checkpoint as vitc users do: from
// its metadata alone.
func loadVitcFixture(t *testing.T, fx vitcFixture) (*vit.Model, []float32, []float32) {
	t.Helper()
	cfg := vitcFixtureConfig(t, fx.attention)
	m, meta, err := vit.Load(fx.checkpoint(), vit.LoadOptions{})
	if err != nil {
		t.Fatalf("%v (regenerate with VITC_UPDATE_FIXTURES=1 go test ./vit -run TestUpdateVitcFixtures)", err)
	}
	if !reflect.DeepEqual(m.Config, cfg) {
		t.Errorf("config %+v, want %+v", m.Config, cfg)
	}
	if want := vitcFixtureMeta(); !reflect.DeepEqual(meta, want) {
		t.Errorf("meta %+v, want %+v", meta, want)
	}
	x, xShape := readNpy(t, filepath.Join(vitcFixtureDir, vitcFixtureInput))
	if !slices.Equal(xShape, []int{vitcFixtureBatch, cfg.Channels, cfg.Image, cfg.Image}) {
		t.Fatalf("input shape %v", xShape)
	}
	want, wantShape := readNpy(t, fx.logits())
	if !slices.Equal(wantShape, []int{vitcFixtureBatch, cfg.Classes}) {
		t.Fatalf("logits shape %v", wantShape)
	}
	return m, x, want
}

// withConfig builds a model with cfg and m's weights.
func withConfig(t *testing.T, m *vit.Model, cfg vit.Config) *vit.Model {
	t.Helper()
	other, err := vit.New(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params.List() {
		q, ok := other.Params.Get(p.Name)
		if !ok || len(q.Data) != len(p.Data) {
			t.Fatalf("config %+v has no parameter %s of size %d", cfg, p.Name, len(p.Data))
		}
		copy(q.Data, p.Data)
	}
	return other
}

// TestVitcFixtureLogits: vitc still computes its committed logits from each
// committed checkpoint, and those logits are sensitive enough to be a test.
func TestVitcFixtureLogits(t *testing.T) {
	for _, fx := range vitcFixtures {
		t.Run(fx.name, func(t *testing.T) {
			m, x, want := loadVitcFixture(t, fx)
			got := vit.Predict(m, x, vitcFixtureBatch, vitcFixtureBatch)
			if hasNonFinite(got) {
				t.Fatalf("non-finite logits %v", got)
			}
			rel := maxRelErr(got, want)
			t.Logf("%s: max relative error %.3g vs committed vitc logits", fx.name, rel)
			if !(rel < vitcFixtureTol) {
				t.Errorf("max relative error %.3g vs committed logits, want < %g", rel, vitcFixtureTol)
			}
			// Batch size must not matter.
			if one := vit.Predict(m, x, vitcFixtureBatch, 1); maxRelErr(one, got) > 1e-6 {
				t.Errorf("batch 1 differs from batch %d by %.3g", vitcFixtureBatch, maxRelErr(one, got))
			}
			if am := rowArgmax(want, m.Classes); slices.Min(am) == slices.Max(am) {
				t.Errorf("committed logits predict one class for every input: %v", am)
			}

			// Sensitivity: the same weights split into the preset's 4 heads,
			// or run through each other attention kind, must move the logits
			// far beyond the tolerance.
			type variant struct {
				what string
				cfg  vit.Config
			}
			heads4 := m.Config
			heads4.Heads = 4
			variants := []variant{{"4 heads instead of 2", heads4}}
			for _, other := range vitcFixtures {
				if other.attention != fx.attention {
					cfg := m.Config
					cfg.Attention = other.attention
					variants = append(variants, variant{other.attention + " attention instead of " + fx.attention, cfg})
				}
			}
			for _, v := range variants {
				d := maxRelErr(vit.Predict(withConfig(t, m, v.cfg), x, vitcFixtureBatch, vitcFixtureBatch), want)
				t.Logf("%s: %s moves the logits by %.3g relative", fx.name, v.what, d)
				if d < 1e-2 {
					t.Errorf("%s changes the logits by only %.3g", v.what, d)
				}
			}
		})
	}
}

// TestVitcFixturesShareWeights: the committed fixtures hold identical
// tensors, so their committed logits differ only through the attention kind,
// and differ clearly.
func TestVitcFixturesShareWeights(t *testing.T) {
	base, _, baseLogits := loadVitcFixture(t, vitcFixtures[0])
	for _, fx := range vitcFixtures[1:] {
		m, _, logits := loadVitcFixture(t, fx)
		if n, nb := len(m.Params.List()), len(base.Params.List()); n != nb {
			t.Errorf("%s has %d tensors, %s has %d", fx.name, n, vitcFixtures[0].name, nb)
		}
		for _, p := range base.Params.List() {
			q, ok := m.Params.Get(p.Name)
			if !ok {
				t.Errorf("%s lacks %s", fx.name, p.Name)
				continue
			}
			if !slices.Equal(q.Data, p.Data) {
				t.Errorf("%s: %s differs from %s", fx.name, p.Name, vitcFixtures[0].name)
			}
		}
		d := maxRelErr(logits, baseLogits)
		t.Logf("committed %s vs %s logits: max relative difference %.3g", fx.name, vitcFixtures[0].name, d)
		if d < 1e-2 {
			t.Errorf("committed %s and %s logits differ by only %.3g", fx.name, vitcFixtures[0].name, d)
		}
	}
}

// python3WithTorch returns /usr/bin/python3 if it can import torch.
func python3WithTorch(t *testing.T) string {
	t.Helper()
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Skipf("no %s: %v", python, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, python, "-c", "import torch, numpy").CombinedOutput(); err != nil {
		t.Skipf("%s cannot import torch (%v): %s", python, err, bytes.TrimSpace(out))
	}
	return python
}

// torchrefCheck runs torchref.py check and returns its output; it fails the
// test unless the check passes.
func torchrefCheck(t *testing.T, python string, args ...string) string {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("..", "tools", "torchref", "torchref.py"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(script); err != nil {
		t.Skipf("torchref not found: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, append([]string{script, "check"}, args...)...)
	out, err := cmd.CombinedOutput()
	t.Logf("%s check %s\n%s", filepath.Base(script), strings.Join(args, " "), out)
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("torchref check failed (exit %d)", ee.ExitCode())
		}
		t.Fatalf("torchref check: %v", err)
	}
	if !strings.Contains(string(out), "PASS") {
		t.Fatalf("torchref check exited 0 without PASS")
	}
	return string(out)
}

// TestVitcFixtureTorchCheck hands each vitc checkpoint and its logits to the
// PyTorch reference: the committed logits, and the ones this build computes
// now. It needs /usr/bin/python3 with torch and is skipped without it.
func TestVitcFixtureTorchCheck(t *testing.T) {
	python := python3WithTorch(t)
	for _, fx := range vitcFixtures {
		t.Run(fx.name, func(t *testing.T) {
			m, x, want := loadVitcFixture(t, fx)
			in := filepath.Join(vitcFixtureDir, vitcFixtureInput)

			// No --preset/--heads/--classes/--attention: torchref must take
			// the architecture from the vitc metadata (its default preset has
			// 4 heads, 10 classes and softmax attention).
			tol := fmt.Sprint(torchRefTol)
			out := torchrefCheck(t, python, "--checkpoint", fx.checkpoint(), "--input", in, "--logits", fx.logits(), "--tol", tol)
			if !strings.Contains(out, "__metadata__['vitc']") {
				t.Errorf("torchref did not read the config from the vitc metadata")
			}
			if want := fmt.Sprintf(`"attention": %q`, fx.attention); !strings.Contains(out, want) {
				t.Errorf("torchref's config lacks %s", want)
			}

			// This build's logits, if they differ at all from the committed
			// ones (another BLAS, another summation order): each torch start
			// costs seconds.
			got := vit.Predict(m, x, vitcFixtureBatch, vitcFixtureBatch)
			if slices.Equal(got, want) {
				return
			}
			fresh := filepath.Join(t.TempDir(), "logits.npy")
			if err := npy.WriteFile(fresh, got, []int{vitcFixtureBatch, m.Classes}); err != nil {
				t.Fatal(err)
			}
			torchrefCheck(t, python, "--checkpoint", fx.checkpoint(), "--input", in, "--logits", fresh, "--tol", tol)
		})
	}
}
