package export

import (
	"errors"
	"fmt"
	"math/rand"
	"testing"

	"vitc/export/hw"
	"vitc/export/isa"
	"vitc/export/sim"
	"vitc/vit"
)

// testModel is a small randomly initialised model, its weights scaled up so
// that attention is far from uniform, with some weight tiles zeroed (as
// block pruning leaves them) when sparse.
func testModel(t testing.TB, cfg vit.Config, sparse bool) *vit.Model {
	t.Helper()
	m, err := vit.New(cfg, 7)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(3))
	for _, p := range m.Params.List() {
		if len(p.Shape) == 2 && p.Shape[0] > 1 {
			for i := range p.Data {
				p.Data[i] *= 8
			}
		}
		if p.Name == "cls_token" || p.Name == "pos_embed" {
			for i := range p.Data {
				p.Data[i] = float32(rng.NormFloat64() * 0.5)
			}
		}
		if sparse && len(p.Shape) == 2 && p.Name != "head.weight" {
			out, in := p.Shape[0], p.Shape[1]
			for r := 0; r+16 <= out; r += 16 {
				for c := 0; c+16 <= in; c += 16 {
					if rng.Intn(2) == 0 {
						for i := r; i < r+16; i++ {
							clear(p.Data[i*in+c : i*in+c+16])
						}
					}
				}
			}
		}
	}
	return m
}

func randomImages(cfg vit.Config, n int, seed int64) []float32 {
	rng := rand.New(rand.NewSource(seed))
	x := make([]float32, n*cfg.Channels*cfg.Image*cfg.Image)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

func TestSimulatorMatchesIntegerReference(t *testing.T) {
	base := vit.Config{Image: 8, Channels: 1, Patch: 2, Dim: 64, Depth: 3, Heads: 4, MLPRatio: 2, Classes: 10}
	cases := map[string]struct {
		cfg    vit.Config
		sparse bool
	}{
		"softmax dense":  {cfg: withAttention(base, "softmax"), sparse: false},
		"taylor pruned":  {cfg: pruned(withAttention(base, "taylor")), sparse: true},
		"softmax pruned": {cfg: pruned(withAttention(base, "softmax")), sparse: true},
		// 16 patches at keep 0.9375 keep 15: one token dropped and fused,
		// the token count unchanged.
		"taylor one token dropped": {cfg: keep(pruned(withAttention(base, "taylor")), 0.9375), sparse: true},
		// A rate with more decimals than a thousandth.
		"taylor keep 0.2501": {cfg: keep(pruned(withAttention(base, "taylor")), 0.2501), sparse: false},
	}
	for name, tc := range cases {
		for _, bits := range []int{8, 16} {
			t.Run(fmt.Sprintf("%s/a%d", name, bits), func(t *testing.T) {
				simMatchesReference(t, tc.cfg, tc.sparse, bits)
			})
		}
	}
}

func simMatchesReference(t *testing.T, cfg vit.Config, sparse bool, bits int) {
	tc := struct {
		cfg    vit.Config
		sparse bool
	}{cfg, sparse}
	{
		{
			qm, cp, r := compileForTestBits(t, testModel(t, tc.cfg, tc.sparse), 16, bits)
			if cp.ActBytes != bits/8 {
				t.Fatalf("%d-bit activations compiled with %d-byte elements", bits, cp.ActBytes)
			}
			ops := map[isa.Opcode]int{}
			for _, in := range cp.Program {
				ops[in.Op]++
			}
			if tc.sparse != (ops[isa.OpSpgemm] > 0) {
				t.Fatalf("sparse model %v compiled to %d spgemm", tc.sparse, ops[isa.OpSpgemm])
			}
			if want := len(tc.cfg.TokenLayers); ops[isa.OpTopk] != want {
				t.Fatalf("%d topk for %d pruning layers", ops[isa.OpTopk], want)
			}
			chw := tc.cfg.Channels * tc.cfg.Image * tc.cfg.Image
			imgs := randomImages(tc.cfg, 8, 2)
			logits := map[string]bool{}
			for i := 0; i < 8; i++ {
				in := qm.QuantizeInput(imgs[i*chw : (i+1)*chw])
				want := qm.Reference(in)
				got, _, err := r.Run(in)
				if err != nil {
					t.Fatal(err)
				}
				if d := got.Diff(want); d != "" {
					t.Fatalf("image %d: simulator against reference: %s", i, d)
				}
				logits[fmt.Sprint(got.Logits)] = true
				if len(got.Kept) != len(tc.cfg.TokenLayers) {
					t.Fatalf("%d kept lists", len(got.Kept))
				}
			}
			if len(logits) < 2 {
				t.Fatalf("every image gives the same logits: the test model is degenerate")
			}
			// The comparison is sensitive: one changed weight changes the run.
			for _, tn := range cp.Tensors {
				if tn.Name == "blocks.1.mlp.fc1.bias" {
					cp.Weights[tn.Offset+1] ^= 0x40
				}
			}
			in := qm.QuantizeInput(imgs[:chw])
			got, _, err := r.Run(in)
			if err == nil && got.Diff(qm.Reference(in)) == "" {
				t.Fatal("a corrupted weight went unnoticed")
			}
		}
	}
}

func keep(c vit.Config, rate float64) vit.Config { c.TokenKeep = rate; return c }

func withAttention(c vit.Config, a string) vit.Config { c.Attention = a; return c }

// pruned gives a compacted-looking model: fewer heads and MLP units in
// some blocks, and token pruning after blocks 0 and 1.
func pruned(c vit.Config) vit.Config {
	c.LayerHeads = []int{4, 3, 2}
	c.LayerHidden = []int{128, 80, 48}
	c.TokenKeep = 0.7
	c.TokenLayers = []int{0, 1}
	return c
}

// At deit-tiny scale (197 tokens, 12 blocks, dim 192) the simulator still
// matches the reference, and Taylor attention with token pruning takes
// fewer cycles than dense softmax.
func TestSimulatorAtDeiTTinyScale(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds of simulation")
	}
	cycles := map[string]int64{}
	for _, name := range []string{"softmax", "taylor+tokens"} {
		cfg, _ := vit.Preset("deit-tiny")
		if name != "softmax" {
			cfg.Attention, cfg.TokenKeep, cfg.TokenLayers = "taylor", 0.7, []int{2, 6, 9}
		}
		m, err := vit.New(cfg, 1)
		if err != nil {
			t.Fatal(err)
		}
		qm, cp, r := compileForTest(t, m, 1)
		h := hw.Default()
		in := qm.QuantizeInput(randomImages(cfg, 1, 2))
		got, st, err := r.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		if d := got.Diff(qm.Reference(in)); d != "" {
			t.Fatalf("%s: %s", name, d)
		}
		// Every GEMM of the patch embedding and the blocks is within 1.5× of
		// its roofline bound (its operands are on chip, so the bound is its
		// MACs at peak). The head's GEMM is the cls row alone: one row per
		// module, a cycle per tile pass, a few hundred cycles in all.
		peak := int64(h.PEs() * h.MACsPerPE())
		headFirst := cp.Layers[len(cp.Layers)-1].First
		var gemms, worstPC int
		worst := 0.0
		for pc, in := range cp.Program[:headFirst] {
			if in.Op != isa.OpGemm && in.Op != isa.OpSpgemm {
				continue
			}
			c := r.Cost(pc)
			if ratio := float64(c.Cycles) / float64((c.MACs+peak-1)/peak); ratio > worst {
				worst, worstPC = ratio, pc
			}
			gemms++
		}
		if gemms < 4*cfg.Depth || worst > 1.5 {
			t.Fatalf("%s: %d GEMMs, the worst (instruction %d) at %.2f× its roofline bound", name, gemms, worstPC, worst)
		}
		t.Logf("deit-tiny %s: %d GEMMs, the worst at %.3f× its roofline bound", name, gemms, worst)
		// 5.7 MB of int8 weights do not fit the 2 MB weight buffer: no batch.
		var fit *WeightsFitError
		if _, err := CompileWith(qm, h, CompileOptions{Batch: 8}); !errors.As(err, &fit) {
			t.Fatalf("%s: batch 8 on %s: %v", name, h.Name, err)
		}
		cycles[name] = st.Cycles
		t.Logf("deit-tiny %s: %d cycles (%.3f ms at %g MHz), PE utilisation %.1f%%, roofline %d cycles (%.2f×)", name, st.Cycles, 1e3*st.Seconds, h.ClockMHz, 100*st.Utilisation, st.Roofline, float64(st.Cycles)/float64(st.Roofline))
	}
	if cycles["taylor+tokens"] >= cycles["softmax"] {
		t.Fatalf("cycles %v", cycles)
	}
}

// compileForTest calibrates m on calib random images, compiles it for the
// default hardware and builds a simulator for it.
func compileForTest(t testing.TB, m *vit.Model, calib int) (*QModel, *Compiled, *sim.Runner) {
	t.Helper()
	return compileForTestBits(t, m, calib, 8)
}

// compileForTestBits is compileForTest with bits-bit activations.
func compileForTestBits(t testing.TB, m *vit.Model, calib, bits int) (*QModel, *Compiled, *sim.Runner) {
	t.Helper()
	qm, err := QuantizeWith(m, randomImages(m.Config, calib, 1), calib, CalibOptions{ActBits: bits})
	if err != nil {
		t.Fatal(err)
	}
	cp, err := Compile(qm, hw.Default())
	if err != nil {
		t.Fatal(err)
	}
	r, err := sim.NewRunner(cp.SimProgram(hw.Default()))
	if err != nil {
		t.Fatal(err)
	}
	return qm, cp, r
}

// The cycle model's GEMMs against ViTCoD's simulator (GATECH-EIC/ViTCoD,
// Hardware/Simulator), which puts DeiT-Tiny's FFN at 1,361,664 cycles and
// QKV plus projection at 681,492 on 512 MACs per cycle at full
// utilisation: one module of 4×2 PEs of 8×8 MACs is 512 MACs per cycle,
// and the dense GEMMs, whose tile counts divide evenly over the PEs, run
// at full utilisation but for the array fill.
func TestCycleModelMatchesViTCoDGEMMs(t *testing.T) {
	if testing.Short() {
		t.Skip("a deit-tiny simulation")
	}
	h := hw.Default()
	h.Name, h.ComputeModules, h.PERows, h.PECols = "vitcod-512", 1, 4, 2
	if macs := h.PEs() * h.MACsPerPE(); macs != 512 {
		t.Fatalf("%d MACs per cycle", macs)
	}
	cfg, _ := vit.Preset("deit-tiny")
	m, err := vit.New(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	qm, err := Quantize(m, randomImages(cfg, 1, 1), 1)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := Compile(qm, h)
	if err != nil {
		t.Fatal(err)
	}
	prog := cp.SimProgram(h)
	r, err := sim.NewRunner(prog)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Run(qm.QuantizeInput(randomImages(cfg, 1, 2))); err != nil {
		t.Fatal(err)
	}
	d, f := cfg.Dim, cfg.HiddenAt(0)
	var ffn, attn sim.Cost
	for pc, in := range cp.Program {
		// The patch embedding (k = 3·16·16 = 768, n = 192) looks like fc2.
		if pc <= prog.Layers[0].Last || (in.Op != isa.OpGemm && in.Op != isa.OpSpgemm) {
			continue
		}
		k, n := int(in.Arg("k")), int(in.Arg("n"))
		c := r.Cost(pc)
		switch {
		case k == d && n == f, k == f && n == d:
			ffn.Cycles, ffn.MACs = ffn.Cycles+c.Cycles, ffn.MACs+c.MACs
		case k == d && (n == 3*d || n == d):
			attn.Cycles, attn.MACs = attn.Cycles+c.Cycles, attn.MACs+c.MACs
		}
	}
	for _, c := range []struct {
		name   string
		got    sim.Cost
		vitcod int64
	}{{"FFN", ffn, 1361664}, {"QKV+projection", attn, 681492}} {
		bound := c.got.MACs / 512
		t.Logf("%s: %d cycles, roofline %d (%.4f×), ViTCoD %d (%.4f×)", c.name, c.got.Cycles, bound,
			float64(c.got.Cycles)/float64(bound), c.vitcod, float64(c.got.Cycles)/float64(c.vitcod))
		if c.got.Cycles > bound*3/2 || c.got.Cycles < bound {
			t.Errorf("%s: %d cycles against a bound of %d", c.name, c.got.Cycles, bound)
		}
		if diff := c.got.Cycles - c.vitcod; diff > c.vitcod/100 || -diff > c.vitcod/100 {
			t.Errorf("%s: %d cycles, ViTCoD %d", c.name, c.got.Cycles, c.vitcod)
		}
	}
}
