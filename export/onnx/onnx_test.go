package onnx

import (
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"vitc/autograd"
	"vitc/internal/npy"
	"vitc/vit"
)

// testModels are the kinds the export must carry: dense softmax, Taylor,
// a distilled DeiT, and pruned ones (compacted heads and MLP widths, block-pruned weights
// stored as zeros, token pruning), softmax and Taylor.
func testModels(t *testing.T) map[string]*vit.Model {
	base := vit.Config{Image: 16, Channels: 3, Patch: 4, Dim: 32, Depth: 3, Heads: 4, MLPRatio: 2, Classes: 6, Attention: "softmax", LNEps: 1e-6}
	out := map[string]*vit.Model{}
	for name, edit := range map[string]func(*vit.Config){
		"softmax": func(*vit.Config) {},
		"taylor":  func(c *vit.Config) { c.Attention = "taylor" },
		// A distilled DeiT: the distillation token and the mean of two heads.
		"deit distilled": func(c *vit.Config) { c.DistToken, c.DistHead = true, true },
		"pruned softmax": func(c *vit.Config) {
			c.LayerHeads, c.LayerHidden = []int{4, 2, 3}, []int{64, 40, 24}
			c.TokenKeep, c.TokenLayers = 0.5, []int{0, 1}
		},
		"pruned taylor": func(c *vit.Config) {
			c.Attention = "taylor"
			c.LayerHeads, c.LayerHidden = []int{3, 1, 2}, []int{48, 16, 64}
			c.TokenKeep, c.TokenLayers = 0.7, []int{1}
		},
	} {
		cfg := base
		edit(&cfg)
		m, err := vit.New(cfg, 5)
		if err != nil {
			t.Fatal(err)
		}
		rng := autograd.NewRNG(int64(len(name)), 9)
		for _, p := range m.Params.List() {
			scale := 0.3
			if len(p.Shape) == 1 {
				scale = 0.1
			}
			for i := range p.Data {
				p.Data[i] += float32(scale * rng.Normal())
			}
		}
		if cfg.LayerHeads != nil {
			// Block pruning as vitc stores it: pruned blocks are zeros.
			for _, p := range m.Params.List() {
				if len(p.Shape) == 2 && p.Shape[0]%8 == 0 {
					for r := 0; r < p.Shape[0]; r += 16 {
						clear(p.Data[r*p.Shape[1] : (r+8)*p.Shape[1]])
					}
				}
			}
		}
		out[name] = m
	}
	return out
}

func input(m *vit.Model, n int, seed int64) []float32 {
	rng := autograd.NewRNG(seed, 3)
	x := make([]float32, n*m.Channels*m.Image*m.Image)
	for i := range x {
		x[i] = float32(rng.Normal())
	}
	return x
}

// TestGraphStructure decodes the written ModelProto: opset 17 of the
// default domain, the input and output, only the ops the package means to
// use, and an initializer for every parameter. It needs no runtime.
func TestGraphStructure(t *testing.T) {
	allowed := []string{"Reshape", "Transpose", "MatMul", "Add", "Sub", "Mul", "Div", "LayerNormalization", "Slice", "Shape",
		"Concat", "Expand", "Squeeze", "Unsqueeze", "Softmax", "ReduceMean", "ReduceSum", "TopK", "Neg", "GatherElements",
		"ScatterElements", "Erf", "Identity"}
	for name, m := range testModels(t) {
		b, err := Encode(m, "test")
		if err != nil {
			t.Fatal(err)
		}
		var opset int64
		var ops []string
		var inits, inputs, outputs int
		walk(t, b, func(f protowire.Number, v []byte) {
			switch f {
			case 7: // graph
				walk(t, v, func(f protowire.Number, v []byte) {
					switch f {
					case 1:
						walk(t, v, func(f protowire.Number, v []byte) {
							if f == 4 {
								ops = append(ops, string(v))
							}
						})
					case 5:
						inits++
					case 11:
						inputs++
					case 12:
						outputs++
					}
				})
			case 8:
				walk(t, v, func(f protowire.Number, v []byte) {
					if f == 2 {
						opset = int64(v[0])
					}
				})
			}
		})
		if opset != Opset || inputs != 1 || outputs != 1 {
			t.Errorf("%s: opset %d, %d inputs, %d outputs", name, opset, inputs, outputs)
		}
		for _, op := range ops {
			if !slices.Contains(allowed, op) {
				t.Errorf("%s: op %s", name, op)
			}
		}
		if inits < len(m.Params.List()) {
			t.Errorf("%s: %d initializers for %d parameters", name, inits, len(m.Params.List()))
		}
		prunes := m.TokenKeep > 0 && m.TokenKeep < 1
		if slices.Contains(ops, "TopK") != prunes {
			t.Errorf("%s: TopK present %v, token pruning %v", name, slices.Contains(ops, "TopK"), prunes)
		}
	}
}

// walk calls fn with each length-delimited field of a message (varints
// come as their single byte, enough for opset numbers).
func walk(t *testing.T, b []byte, fn func(protowire.Number, []byte)) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatal("bad tag")
		}
		b = b[n:]
		var v []byte
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			var x uint64
			x, n = protowire.ConsumeVarint(b)
			v = []byte{byte(x)}
		case protowire.Fixed32Type:
			_, n = protowire.ConsumeFixed32(b)
		case protowire.Fixed64Type:
			_, n = protowire.ConsumeFixed64(b)
		default:
			t.Fatalf("wire type %d", typ)
		}
		if n < 0 {
			t.Fatal("bad field")
		}
		b = b[n:]
		fn(num, v)
	}
}

// ortRunner finds node and onnxruntime-node (ORT_NODE, else the
// repository's .cache/ort, where `make ort` installs it).
func ortRunner(t *testing.T) (node, pkg string) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the ONNX export is not run by onnxruntime (install Node.js, then `make ort`)")
	}
	pkg = os.Getenv("ORT_NODE")
	if pkg == "" {
		pkg, _ = filepath.Abs("../../.cache/ort/node_modules/onnxruntime-node")
	}
	if _, err := os.Stat(filepath.Join(pkg, "package.json")); err != nil {
		t.Skipf("onnxruntime-node is not at %s: `make ort` installs it (npm install --ignore-scripts onnxruntime-node@1.30.0 into .cache/ort), or set ORT_NODE", pkg)
	}
	return node, pkg
}

// runORT runs the ONNX file on x (n images) with onnxruntime.
func runORT(t *testing.T, node, pkg, model string, m *vit.Model, x []float32, n int) []float32 {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "x.f32"), filepath.Join(dir, "y.f32")
	raw := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	if err := os.WriteFile(in, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "testdata/ort_logits.js", pkg, model, in, itoa(n), itoa(m.Channels), itoa(m.Image), itoa(m.Image), out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("onnxruntime: %v: %s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	y := make([]float32, len(b)/4)
	for i := range y {
		y[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return y
}

func itoa(i int) string { return strconv.Itoa(i) }

func maxErr(got, want []float32) (abs, rel float64) {
	var scale float64
	for i := range want {
		abs = math.Max(abs, math.Abs(float64(got[i]-want[i])))
		scale = math.Max(scale, math.Abs(float64(want[i])))
	}
	return abs, abs / scale
}

// TestOnnxRuntimeMatchesVitc: onnxruntime (CPU) runs each exported model
// with logits within 1e-4 of vitc's own (issue 29).
func TestOnnxRuntimeMatchesVitc(t *testing.T) {
	node, pkg := ortRunner(t)
	models := testModels(t)
	// Pruned models as `vitc prune` wrote them (the exporter's fixtures):
	// compacted heads and MLPs, zero blocks, token pruning at two blocks.
	for _, kind := range []string{"softmax", "taylor"} {
		m, _, err := vit.Load("../testdata/int8-"+kind+"-pruned/reference/model.safetensors", vit.LoadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		models["vitc prune, "+kind] = m
	}
	for name, m := range models {
		path := filepath.Join(t.TempDir(), "model.onnx")
		if err := Write(path, m, "test"); err != nil {
			t.Fatal(err)
		}
		const n = 5
		x := input(m, n, 1)
		want := vit.Predict(m, x, n, n)
		got := runORT(t, node, pkg, path, m, x, n)
		if len(got) != len(want) {
			t.Fatalf("%s: %d logits from onnxruntime, vitc has %d", name, len(got), len(want))
		}
		abs, rel := maxErr(got, want)
		t.Logf("%s: onnxruntime vs vitc: max abs error %.3g, relative %.3g", name, abs, rel)
		if !(abs < 1e-4) {
			t.Errorf("%s: onnxruntime's logits are %.3g from vitc's, want < 1e-4", name, abs)
		}
		if m.TokenKeep > 0 {
			// The pruning must matter, or the test would not test it.
			dense := *m
			dense.TokenKeep = 0
			if d, _ := maxErr(vit.Predict(&dense, x, n, n), want); d < 100*abs || d < 1e-2 {
				t.Errorf("%s: token pruning moves the logits by only %.3g", name, d)
			}
		}
	}
}

// TestOnnxRuntimeMatchesPyTorch: the Hugging Face ViT PyTorch wrote
// (vit/testdata/formats/hf_vit), read by vitc and exported, gives PyTorch's
// logits under onnxruntime.
func TestOnnxRuntimeMatchesPyTorch(t *testing.T) {
	node, pkg := ortRunner(t)
	dir := "../../vit/testdata/formats/hf_vit"
	m, _, err := vit.Load(dir, vit.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.onnx")
	if err := Write(path, m, "test"); err != nil {
		t.Fatal(err)
	}
	x, xs, err := npy.ReadFile(filepath.Join(dir, "input.npy"))
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := npy.ReadFile(filepath.Join(dir, "logits.npy"))
	if err != nil {
		t.Fatal(err)
	}
	abs, rel := maxErr(runORT(t, node, pkg, path, m, x, xs[0]), want)
	t.Logf("Hugging Face ViT fixture: onnxruntime vs PyTorch: max abs error %.3g, relative %.3g", abs, rel)
	if !(rel < 1e-5) {
		t.Errorf("relative error %.3g vs PyTorch, want < 1e-5", rel)
	}
}
