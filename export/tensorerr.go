package export

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"

	"vitc/export/intmath"
	"vitc/export/sim"
	"vitc/vit"
)

// LayerProbe measures, image by image, how far every quantized tensor of a
// bundle is from its float value: the float calibration graph and the
// integer reference (which the simulator matches bit for bit) run side by
// side with taps on every tensor that has an activation scale.
type LayerProbe struct {
	m  *vit.Model
	qm *QModel
}

// LayerProbe rebuilds the bundle's integer model from the float checkpoint
// m and the manifest's activation scales.
func (lb *LoadedBundle) LayerProbe(m *vit.Model) (*LayerProbe, error) {
	bits := lb.Quant.Bits()
	q := &quantizer{f: newFloatModel(m), scales: maps.Clone(lb.Quant.Scales), calib: CalibOptions{ActBits: bits}, top: intmath.Top(bits)}
	qm, err := q.model(m)
	if qm != nil {
		qm.ActBits = bits
	}
	if err != nil {
		return nil, fmt.Errorf("rebuilding the integer model from the bundle's scales: %w", err)
	}
	return &LayerProbe{m: m, qm: qm}, nil
}

// TensorSums accumulates one tensor's agreement over images: Σf², Σ(f−q)²,
// Σf·q and Σq² over its elements, f the float value and q the int value
// times its scale.
type TensorSums struct {
	Name           string
	Elems          int64
	FF, EE, FQ, QQ float64
}

// KeptSums counts, for one token-pruning block, how many of the tokens
// the float scores would keep the int8 model keeps, both choosing among
// the same tokens (those int8 kept at earlier blocks).
type KeptSums struct {
	Block      int
	Same, Kept int64
}

// LayerSums is every tapped tensor's sums, in the order the forward pass
// produces them, and the kept-token agreement of each pruning block.
type LayerSums struct {
	Tensors []TensorSums
	Kept    []KeptSums
}

// Image runs one normalised image (C, H, W) through the float graph and its
// quantized input through the integer reference, checks that the reference
// reproduces the simulator's trace got, and returns each tensor's sums.
//
// At each token-pruning block the float graph keeps the tokens the integer
// model kept, so that every tensor compares the same tokens on both sides:
// left to choose, float and int8 part ways at a near-tie, and from then on
// whole tokens differ, an error that says nothing about the tensor's
// arithmetic and buries it (a block at 4 dB while the logits are at 28).
// How often the choice itself differs is the kept agreement, measured at
// each block on the same tokens: the share of the tokens the float scores
// would keep there that int8 keeps.
func (p *LayerProbe) Image(img []float32, input []int16, got *sim.Trace) (LayerSums, error) {
	ints := map[string][][]int32{}
	tr := p.qm.reference(input, func(name string, q []int32) { ints[name] = append(ints[name], slices.Clone(q)) })
	if got != nil {
		if d := tr.Diff(got); d != "" {
			return LayerSums{}, fmt.Errorf("the integer model rebuilt from the bundle's scales does not reproduce the simulator: %s", d)
		}
	}
	intKept := map[int][]int{} // block → the integer model's kept indices
	stage := 0
	for l, b := range p.qm.Blocks {
		if !b.Prune {
			continue
		}
		if stage >= len(tr.Kept) {
			return LayerSums{}, fmt.Errorf("block %d prunes tokens but the trace has %d kept lists", l, len(tr.Kept))
		}
		all := tr.Kept[stage] // kept first, then dropped
		k := intmath.KeepCount(len(all)+1, b.KeepNum, b.KeepDen)
		kept := make([]int, k)
		for i, j := range all[:k] {
			kept[i] = int(j)
		}
		intKept[l] = kept
		stage++
	}

	floats := map[string][][]float32{}
	var order []string
	f := newFloatModel(p.m)
	f.tap = func(name string, xs []float32) {
		if _, ok := floats[name]; !ok {
			order = append(order, name)
		}
		floats[name] = append(floats[name], slices.Clone(xs))
	}
	floatKept := map[int][]int{}
	f.keptTap = func(l int, kept []int) { floatKept[l] = slices.Clone(kept) }
	f.forceKept = func(l int) []int { return intKept[l] }
	f.forward(img)

	var sums LayerSums
	for l, b := range p.qm.Blocks {
		if !b.Prune {
			continue
		}
		fk := floatKept[l]
		if len(fk) != len(intKept[l]) {
			return LayerSums{}, fmt.Errorf("block %d: the float graph keeps %d tokens, the integer model %d", l, len(fk), len(intKept[l]))
		}
		k := KeptSums{Block: l, Kept: int64(len(fk))}
		for _, j := range fk {
			if _, ok := slices.BinarySearch(intKept[l], j); ok {
				k.Same++
			}
		}
		sums.Kept = append(sums.Kept, k)
	}
	for _, name := range order {
		fs, qs := floats[name], ints[name]
		s := p.qm.Scales[name]
		if len(fs) != len(qs) || s == 0 {
			return LayerSums{}, fmt.Errorf("tensor %s: %d float and %d integer values (scale %g)", name, len(fs), len(qs), s)
		}
		t := TensorSums{Name: name}
		for i := range fs {
			if len(fs[i]) != len(qs[i]) {
				return LayerSums{}, fmt.Errorf("tensor %s: %d float and %d integer elements", name, len(fs[i]), len(qs[i]))
			}
			for j, fv := range fs[i] {
				fv, qv := float64(fv), float64(qs[i][j])*s
				t.FF += fv * fv
				t.EE += (fv - qv) * (fv - qv)
				t.FQ += fv * qv
				t.QQ += qv * qv
			}
			t.Elems += int64(len(fs[i]))
		}
		sums.Tensors = append(sums.Tensors, t)
	}
	return sums, nil
}

// Add accumulates o (another image's sums, same tensors) into s; a nil s
// takes o.
func (s LayerSums) Add(o LayerSums) (LayerSums, error) {
	if s.Tensors == nil {
		return LayerSums{Tensors: slices.Clone(o.Tensors), Kept: slices.Clone(o.Kept)}, nil
	}
	if len(s.Tensors) != len(o.Tensors) || len(s.Kept) != len(o.Kept) {
		return s, fmt.Errorf("%d tensors against %d", len(s.Tensors), len(o.Tensors))
	}
	for i := range s.Tensors {
		t, u := &s.Tensors[i], o.Tensors[i]
		if t.Name != u.Name {
			return s, fmt.Errorf("tensor %s against %s", t.Name, u.Name)
		}
		t.Elems += u.Elems
		t.FF += u.FF
		t.EE += u.EE
		t.FQ += u.FQ
		t.QQ += u.QQ
	}
	for i := range s.Kept {
		s.Kept[i].Same += o.Kept[i].Same
		s.Kept[i].Kept += o.Kept[i].Kept
	}
	return s, nil
}

// KeptAgreement is one pruning block's share of float-kept tokens that
// int8 keeps too, over all images.
type KeptAgreement struct {
	Block     int     `json:"block"`
	Agreement float64 `json:"kept_agreement"`
}

// KeptAgreements reports every pruning block's kept-token agreement.
func (s LayerSums) KeptAgreements() []KeptAgreement {
	var out []KeptAgreement
	for _, k := range s.Kept {
		a := 1.0
		if k.Kept > 0 {
			a = float64(k.Same) / float64(k.Kept)
		}
		out = append(out, KeptAgreement{Block: k.Block, Agreement: a})
	}
	return out
}

// TensorError is one tensor's agreement: cosine similarity and SQNR of
// the dequantized int values against the float values over all images.
type TensorError struct {
	Name   string  `json:"name"`
	Scale  float64 `json:"scale"`
	Cosine float64 `json:"cosine"`
	// SQNR is 10·log10(Σf² / Σ(f−q)²) in dB, capped at MaxSQNR (exact).
	SQNR  float64 `json:"sqnr_db"`
	Worst bool    `json:"worst,omitempty"`
}

// MaxSQNR stands for an exactly represented tensor (no error at all).
const MaxSQNR = 200.0

// Errors reports every tensor, the worst ones (lowest SQNR) flagged.
func (s LayerSums) Errors(scales map[string]float64, worst int) []TensorError {
	out := make([]TensorError, len(s.Tensors))
	for i, t := range s.Tensors {
		e := TensorError{Name: t.Name, Scale: scales[t.Name], Cosine: 1, SQNR: MaxSQNR}
		if den := math.Sqrt(t.FF * t.QQ); den > 0 {
			e.Cosine = t.FQ / den
		}
		switch {
		case t.EE > 0 && t.FF > 0:
			e.SQNR = max(-MaxSQNR, min(MaxSQNR, 10*math.Log10(t.FF/t.EE)))
		case t.EE > 0: // a zero float tensor quantized to non-zero
			e.SQNR = -MaxSQNR
		}
		out[i] = e
	}
	idx := make([]int, len(out))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return out[idx[a]].SQNR < out[idx[b]].SQNR })
	for _, i := range idx[:min(worst, len(idx))] {
		out[i].Worst = true
	}
	return out
}
