package export

import (
	"errors"
	"testing"

	"vitc/export/hw"
	"vitc/export/isa"
	"vitc/export/sim"
	"vitc/vit"
)

// digitsMicro is the digits pipeline's architecture (micro on the 8×8
// digits, patch 2: 17 tokens); prunedTaylor approximates its pruned Taylor model: half the
// weight tiles zeroed, tokens kept at 0.7 after blocks 1, 2 and 3 (the
// pruning command's 2, 6, 9 of 12 scaled to depth 4).
func digitsMicro(attention string) vit.Config {
	cfg, _ := vit.Preset("micro")
	cfg.Image, cfg.Patch, cfg.Attention = 8, 2, attention
	return cfg
}

func prunedTaylor() vit.Config {
	cfg := digitsMicro("taylor")
	cfg.TokenKeep, cfg.TokenLayers = 0.7, []int{1, 2, 3}
	return cfg
}

// A bundle compiled for a batch keeps every layer's weights in a place of
// its own: the first run loads them, later runs skip the loads and still
// match the integer reference bit for bit, and the amortised account moves
// fewer bytes and keeps the array busier than reloading per image.
func TestBatchKeepsWeightsResident(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg    vit.Config
		sparse bool
		bits   int
	}{
		"dense softmax":     {digitsMicro("softmax"), false, 8},
		"pruned taylor":     {prunedTaylor(), true, 8},
		"dense softmax/a16": {digitsMicro("softmax"), false, 16},
		"pruned taylor/a16": {prunedTaylor(), true, 16},
	} {
		t.Run(name, func(t *testing.T) {
			h := hw.Default()
			m := testModel(t, tc.cfg, tc.sparse)
			qm, err := QuantizeWith(m, randomImages(tc.cfg, 4, 1), 4, CalibOptions{ActBits: tc.bits})
			if err != nil {
				t.Fatal(err)
			}
			single, err := Compile(qm, h)
			if err != nil {
				t.Fatal(err)
			}
			const batch = 64
			cp, err := CompileWith(qm, h, CompileOptions{Batch: batch})
			if err != nil {
				t.Fatal(err)
			}
			if cp.Batch != batch || !equalBytes(cp.Weights, single.Weights) {
				t.Fatalf("batch %d; the weights section should not change", cp.Batch)
			}
			// Resident blobs never overlap in the weight buffer; what the
			// batch loads once is everything read from the weights section
			// (the blobs, and pos_embed and the cls row into the activation
			// buffer).
			end, once := 0, 0
			for _, in := range cp.Program {
				if in.Op == isa.OpLoad && in.Arg("space") == spaceWgt {
					if dst := int(in.Arg("dst")); dst < end {
						t.Fatalf("weight load to 0x%x overlaps the previous blob (ends 0x%x)", dst, end)
					}
					end = int(in.Arg("dst") + in.Arg("bytes"))
				}
				if in.Op == isa.OpLoad && int(in.Arg("src")) < len(cp.Weights) {
					once += int(in.Arg("bytes"))
				}
			}
			if cp.Lockstep < 2 || batch%cp.Lockstep != 0 {
				t.Fatalf("lockstep group %d for a batch of %d micro images", cp.Lockstep, batch)
			}
			r1, err := sim.NewRunner(single.SimProgram(h))
			if err != nil {
				t.Fatal(err)
			}
			rb, err := sim.NewRunner(cp.SimProgram(h))
			if err != nil {
				t.Fatal(err)
			}
			chw := tc.cfg.Channels * tc.cfg.Image * tc.cfg.Image
			imgs := randomImages(tc.cfg, 3, 5)
			var one, first, steady sim.Stats
			for i := 0; i < 3; i++ {
				in := qm.QuantizeInput(imgs[i*chw : (i+1)*chw])
				want := qm.Reference(in)
				got, st, err := rb.Run(in)
				if err != nil {
					t.Fatal(err)
				}
				if d := got.Diff(want); d != "" {
					t.Fatalf("image %d with the weights resident: %s", i, d)
				}
				if i == 0 {
					first = st
					if _, one, err = r1.Run(in); err != nil {
						t.Fatal(err)
					}
				} else {
					steady = st
				}
			}
			if got, want := first.BytesMoved-steady.BytesMoved, int64(once); got != want {
				t.Fatalf("the steady group moves %d fewer bytes; the batch loads %d once", got, want)
			}
			if steady.Group != cp.Lockstep || one.Group != 0 || first.MACs != int64(cp.Lockstep)*one.MACs {
				t.Fatalf("a lockstep group of %d accounts for %d images and %d MACs; one image %d", cp.Lockstep, steady.Group, first.MACs, one.MACs)
			}
			if steady.MACs != first.MACs || steady.Cycles >= first.Cycles {
				t.Fatalf("steady image %d cycles %d MACs, first %d cycles %d MACs", steady.Cycles, steady.MACs, first.Cycles, first.MACs)
			}
			// The loads really are skipped: a weight changed in DRAM after
			// the first run does not reach the resident runner.
			in := qm.QuantizeInput(imgs[:chw])
			for _, tn := range cp.Tensors {
				if tn.Name == "blocks.1.mlp.fc1.bias" {
					cp.Weights[tn.Offset+1] ^= 0x40
				}
			}
			got, _, err := rb.Run(in)
			if err != nil {
				t.Fatal(err)
			}
			if d := got.Diff(qm.Reference(in)); d != "" {
				t.Fatalf("the resident runner reloaded a weight: %s", d)
			}
			a := sim.Amortise(h, first, steady, batch)
			var sum int64
			for _, l := range a.Layers {
				sum += l.Cycles
			}
			if sum != a.Cycles || a.Batch != batch || a.FirstImageCycles != first.Cycles {
				t.Fatalf("amortised: layers sum to %d of %d cycles, batch %d", sum, a.Cycles, a.Batch)
			}
			if runs := int64(batch / cp.Lockstep); a.Cycles != (first.Cycles+(runs-1)*steady.Cycles+batch-1)/batch || a.MACs != one.MACs {
				t.Fatalf("amortised %d cycles and %d MACs per image; first group %d, steady %d, one image %d MACs", a.Cycles, a.MACs, first.Cycles, steady.Cycles, one.MACs)
			}
			if a.Utilisation <= 2*one.Utilisation || a.Cycles >= one.Cycles/2 {
				t.Fatalf("%d cycles and PE utilisation %.3f per image in lockstep, %d and %.3f one by one", a.Cycles, a.Utilisation, one.Cycles, one.Utilisation)
			}
			t.Logf("%s: lockstep group %d: per image %d → %d cycles (first group %d), PE utilisation %.1f%% → %.1f%%, %.0f → %.0f images/s at %g MHz, roofline %.2f× → %.2f×",
				name, cp.Lockstep, one.Cycles, a.Cycles, first.Cycles, 100*one.Utilisation, 100*a.Utilisation, 1/one.Seconds, 1/a.Seconds, h.ClockMHz,
				float64(one.Cycles)/float64(one.Roofline), float64(a.Cycles)/float64(a.Roofline))
		})
	}
}

func equalBytes(a, b []byte) bool { return string(a) == string(b) }

// A batch whose weights do not fit the weight buffer is refused with the
// bytes needed and available; the per-image schedule still compiles.
func TestBatchRefusesWeightsThatDoNotFit(t *testing.T) {
	cfg := digitsMicro("softmax")
	qm, err := Quantize(testModel(t, cfg, false), randomImages(cfg, 2, 1), 2)
	if err != nil {
		t.Fatal(err)
	}
	h := hw.Default()
	h.WgtBufferBytes = 96 << 10
	if _, err := Compile(qm, h); err != nil {
		t.Fatalf("per image: %v", err)
	}
	_, err = CompileWith(qm, h, CompileOptions{Batch: 8})
	var fit *WeightsFitError
	if !errors.As(err, &fit) || fit.Have != h.WgtBufferBytes || fit.Need <= fit.Have || fit.Batch != 8 {
		t.Fatalf("got %v", err)
	}
	if _, err := CompileWith(qm, h, CompileOptions{Batch: -1}); err == nil {
		t.Fatal("batch -1 compiled")
	}
}

// The batch is recorded in the manifest and comes back with the program.
func TestBundleRecordsBatch(t *testing.T) {
	cfg := vit.Config{Image: 8, Channels: 1, Patch: 2, Dim: 32, Depth: 2, Heads: 2, MLPRatio: 2, Classes: 10, Attention: "softmax"}
	m := testModel(t, cfg, false)
	x := randomImages(cfg, 4, 1)
	qm, err := Quantize(m, x, 4)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	h := hw.Default()
	if _, err := WriteBundle(dir, m, qm, x[:cfg.Image*cfg.Image], Options{HW: h, Batch: 16}); err != nil {
		t.Fatal(err)
	}
	lb, err := OpenBundle(dir, h)
	if err != nil {
		t.Fatal(err)
	}
	if lb.Manifest.Program.Batch != 16 || lb.Program.Batch != 16 {
		t.Fatalf("manifest batch %d, program batch %d", lb.Manifest.Program.Batch, lb.Program.Batch)
	}
	r, err := sim.NewRunner(lb.Program)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		tr, _, err := r.Run(lb.Golden)
		if err != nil {
			t.Fatal(err)
		}
		if d := tr.Diff(lb.Expected); d != "" {
			t.Fatalf("run %d: %s", i, d)
		}
	}
}

// In lockstep every weight GEMM streams the whole group's token rows
// through its tiles, and a PE done with its own tiles takes rows of a busier
// one's, so each GEMM of a micro model, dense or block-sparse, runs within
// 1.25× of its MACs on the whole array (the array fill aside), and does the
// group's MACs: exactly the group size times one image's.
func TestLockstepKeepsTheArrayBusy(t *testing.T) {
	h := hw.Default()
	cfg := prunedTaylor()
	qm, err := Quantize(testModel(t, cfg, true), randomImages(cfg, 4, 1), 4)
	if err != nil {
		t.Fatal(err)
	}
	in := qm.QuantizeInput(randomImages(cfg, 1, 7))
	macs := func(batch int) (*Compiled, *sim.Runner, []int64) {
		cp, err := CompileWith(qm, h, CompileOptions{Batch: batch})
		if err != nil {
			t.Fatal(err)
		}
		r, err := sim.NewRunner(cp.SimProgram(h))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := r.Run(in); err != nil {
			t.Fatal(err)
		}
		var out []int64
		for pc, ins := range cp.Program {
			if ins.Op == isa.OpGemm || ins.Op == isa.OpSpgemm || ins.Op == isa.OpMatmul {
				out = append(out, r.Cost(pc).MACs)
			}
		}
		return cp, r, out
	}
	_, _, one := macs(1)
	cp, r, group := macs(64)
	g := int64(cp.Lockstep)
	if g != 64 || len(one) != len(group) {
		t.Fatalf("lockstep group %d, %d and %d array instructions", g, len(one), len(group))
	}
	for i := range one {
		if group[i] != g*one[i] {
			t.Fatalf("array instruction %d: %d MACs for the group, %d for one image", i, group[i], one[i])
		}
	}
	peak := int64(h.PEs() * h.MACsPerPE())
	fill := int64(h.ArrayRows + h.ArrayCols)
	sparse := 0
	for pc, ins := range cp.Program {
		if ins.Op != isa.OpGemm && ins.Op != isa.OpSpgemm {
			continue
		}
		if ins.Op == isa.OpSpgemm {
			sparse++
		}
		c := r.Cost(pc)
		bound := (c.MACs + peak - 1) / peak
		if float64(c.Cycles-fill) > 1.25*float64(bound) {
			t.Errorf("instruction %d (%s): %d cycles for %d MACs, bound %d", pc, ins.Op, c.Cycles, c.MACs, bound)
		}
	}
	if sparse == 0 {
		t.Fatal("no block-sparse GEMM to check")
	}
}
