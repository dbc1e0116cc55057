package blockprune

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"vitc/vit"
)

// ExtensionKey names block pruning's entry in a checkpoint's
// Meta.Extensions.
const ExtensionKey = "blockprune"

// Extension is what a compacted checkpoint records for the exporter: the
// block size and, per pruned matrix of the compacted model, its block mask.
type Extension struct {
	Block int                  `json:"block"`
	Masks map[string]BlockMask `json:"masks"`
}

// BlockMask is a (Rows, Cols) grid of b×b blocks, row-major; Keep[i] is
// '1' for a kept block and '0' for a pruned (all-zero) one.
type BlockMask struct {
	Rows int    `json:"rows"`
	Cols int    `json:"cols"`
	Keep string `json:"keep"`
}

// Kept reports whether block (r, c) is kept.
func (m BlockMask) Kept(r, c int) bool { return m.Keep[r*m.Cols+c] == '1' }

// Density is the kept fraction of the grid.
func (m BlockMask) Density() float64 {
	return float64(strings.Count(m.Keep, "1")) / float64(len(m.Keep))
}

// ReadExtension returns the block masks recorded in a checkpoint's
// metadata, if any.
func ReadExtension(meta vit.Meta) (*Extension, bool, error) {
	raw, ok := meta.Extensions[ExtensionKey]
	if !ok {
		return nil, false, nil
	}
	var e Extension
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, false, fmt.Errorf("bad %s metadata: %v", ExtensionKey, err)
	}
	return &e, true, nil
}

// layerGroups returns layer i's qkv, proj and neuron groups.
func (p *Pruner) layerGroups(i int) (qkv, proj, mlp *group) {
	return p.groups[3*i], p.groups[3*i+1], p.groups[3*i+2]
}

// headBlocks counts, per head of layer i, its kept qkv blocks (the rows of
// its q, k and v) and its kept proj blocks (the columns reading its output).
// A head with none of either is dead: with no qkv blocks its output is the
// constant value bias, with no proj blocks its output is unused.
func (p *Pruner) headBlocks(i int) (qkvKept, projKept []int) {
	qkv, proj, _ := p.layerGroups(i)
	b, hd, d := p.opts.Block, p.model.HeadDim(), p.model.Dim
	per := hd / b // block rows (of qkv) or columns (of proj) per head
	qkvKept, projKept = make([]int, p.model.Heads), make([]int, p.model.Heads)
	for h := range qkvKept {
		for part := 0; part < 3; part++ {
			first := (part*d + h*hd) / b
			for r := first; r < first+per; r++ {
				for c := 0; c < qkv.cols; c++ {
					if qkv.keep[r*qkv.cols+c] {
						qkvKept[h]++
					}
				}
			}
		}
		for r := 0; r < proj.rows; r++ {
			for c := h * per; c < (h+1)*per; c++ {
				if proj.keep[r*proj.cols+c] {
					projKept[h]++
				}
			}
		}
	}
	return qkvKept, projKept
}

// LiveHeads is m.LiveHeads: the heads of layer i that compaction keeps.
// Dead heads are removed, except that a layer keeps at least one head (the
// one with the most kept blocks), because a kept dead head still computes
// exactly what the masked model does.
func (p *Pruner) LiveHeads(i int) []bool {
	qkvKept, projKept := p.headBlocks(i)
	live := make([]bool, len(qkvKept))
	best := 0
	for h := range live {
		live[h] = qkvKept[h] > 0 && projKept[h] > 0
		if qkvKept[h]+projKept[h] > qkvKept[best]+projKept[best] {
			best = h
		}
	}
	if !slices.Contains(live, true) {
		live[best] = true
	}
	return live
}

// Compact returns a new model holding only what the current masks keep:
// per layer, the live heads (their qkv rows and proj columns) and the kept
// MLP neurons, with every pruned block stored as zeros, and the value bias
// of each removed head folded into attn.proj's bias. It gives the same
// logits as the masked model. The returned extension records the block
// masks of the compacted qkv and proj matrices.
func (p *Pruner) Compact() (*vit.Model, *Extension, error) {
	src := p.model
	cfg := src.Config
	cfg.LayerHeads = make([]int, cfg.Depth)
	cfg.LayerHidden = make([]int, cfg.Depth)
	lives := make([][]bool, cfg.Depth)
	for i := 0; i < cfg.Depth; i++ {
		lives[i] = p.LiveHeads(i)
		for _, l := range lives[i] {
			if l {
				cfg.LayerHeads[i]++
			}
		}
		_, _, mlp := p.layerGroups(i)
		for _, k := range mlp.keep {
			if k {
				cfg.LayerHidden[i]++
			}
		}
	}
	dst, err := vit.New(cfg, 0)
	if err != nil {
		return nil, nil, err
	}
	ext := &Extension{Block: p.opts.Block, Masks: map[string]BlockMask{}}
	for _, dp := range dst.Params.List() {
		sp, ok := src.Params.Get(dp.Name)
		if !ok {
			return nil, nil, fmt.Errorf("blockprune: compacted model has %s, the source does not", dp.Name)
		}
		copy(dp.Data, sp.Data) // shapes that compaction does not change
	}
	for i := 0; i < cfg.Depth; i++ {
		if err := p.compactLayer(dst, i, lives[i], ext); err != nil {
			return nil, nil, err
		}
	}
	return dst, ext, nil
}

func (p *Pruner) compactLayer(dst *vit.Model, i int, live []bool, ext *Extension) error {
	src := p.model
	d, hd, b := src.Dim, src.HeadDim(), p.opts.Block
	pre := fmt.Sprintf("blocks.%d.", i)
	get := func(m *vit.Model, name string) []float32 { return mustParam(m, pre+name).Data }
	qkvG, projG, mlpG := p.layerGroups(i)
	masked := func(g *group, wi int) []float32 {
		w := g.weights[wi].Data
		out := make([]float32, len(w))
		for e, bl := range g.blockOf[wi] {
			if g.keep[bl] {
				out[e] = w[e]
			}
		}
		return out
	}
	var heads []int
	for h, l := range live {
		if l {
			heads = append(heads, h)
		}
	}
	a := len(heads) * hd // compacted attention width

	// attn.qkv: (3·D, D) → (3·A, D), rows of the live heads of q, k and v.
	qkvW, qkvB := masked(qkvG, 0), get(src, "attn.qkv.bias")
	dqW, dqB := get(dst, "attn.qkv.weight"), get(dst, "attn.qkv.bias")
	for part := 0; part < 3; part++ {
		for j, h := range heads {
			for r := 0; r < hd; r++ {
				from, to := part*d+h*hd+r, part*a+j*hd+r
				copy(dqW[to*d:(to+1)*d], qkvW[from*d:(from+1)*d])
				dqB[to] = qkvB[from]
			}
		}
	}
	// attn.proj: (D, D) → (D, A), the live heads' columns; a removed head's
	// output is its value bias b_v (all its qkv blocks gone: every token's
	// v is b_v, and attention averages) or unused (its proj columns gone),
	// so W_proj[:, head]·b_v joins the bias.
	projW, projB := masked(projG, 0), get(src, "attn.proj.bias")
	dpW, dpB := get(dst, "attn.proj.weight"), get(dst, "attn.proj.bias")
	for r := 0; r < d; r++ {
		bias := float64(projB[r])
		for h, l := range live {
			for c := h * hd; c < (h+1)*hd; c++ {
				if !l {
					bias += float64(projW[r*d+c]) * float64(qkvB[2*d+c])
				}
			}
		}
		dpB[r] = float32(bias)
		for j, h := range heads {
			copy(dpW[r*a+j*hd:r*a+(j+1)*hd], projW[r*d+h*hd:r*d+(h+1)*hd])
		}
	}
	// Block masks of the compacted matrices, for the exporter.
	qm := BlockMask{Rows: 3 * a / b, Cols: d / b}
	var keep strings.Builder
	for part := 0; part < 3; part++ {
		for _, h := range heads {
			for r := (part*d + h*hd) / b; r < (part*d+h*hd+hd)/b; r++ {
				for c := 0; c < qkvG.cols; c++ {
					keep.WriteByte(bit(qkvG.keep[r*qkvG.cols+c]))
				}
			}
		}
	}
	qm.Keep = keep.String()
	ext.Masks[pre+"attn.qkv.weight"] = qm
	pm := BlockMask{Rows: d / b, Cols: a / b}
	keep.Reset()
	for r := 0; r < projG.rows; r++ {
		for _, h := range heads {
			for c := h * hd / b; c < (h+1)*hd/b; c++ {
				keep.WriteByte(bit(projG.keep[r*projG.cols+c]))
			}
		}
	}
	pm.Keep = keep.String()
	ext.Masks[pre+"attn.proj.weight"] = pm

	// MLP: the kept neurons' fc1 rows (and bias) and fc2 columns.
	fc1W, fc1B, fc2W := get(src, "mlp.fc1.weight"), get(src, "mlp.fc1.bias"), get(src, "mlp.fc2.weight")
	hidden := len(fc1B)
	d1W, d1B, d2W := get(dst, "mlp.fc1.weight"), get(dst, "mlp.fc1.bias"), get(dst, "mlp.fc2.weight")
	kept := len(d1B)
	j := 0
	for n := 0; n < hidden; n++ {
		if !mlpG.keep[n] {
			continue
		}
		copy(d1W[j*d:(j+1)*d], fc1W[n*d:(n+1)*d])
		d1B[j] = fc1B[n]
		for r := 0; r < d; r++ {
			d2W[r*kept+j] = fc2W[r*hidden+n]
		}
		j++
	}
	return nil
}

func bit(b bool) byte {
	if b {
		return '1'
	}
	return '0'
}

// Stats summarises the masks: kept fraction per pruned matrix (of its
// original block grid, or of the MLP's neurons), heads removed and MLP
// units kept per layer.
type Stats struct {
	Density      map[string]float64 `json:"density"`
	HeadsRemoved []int              `json:"heads_removed"`
	MLPKept      []int              `json:"mlp_units_kept"`
}

// Stats reports the current masks.
func (p *Pruner) Stats() Stats {
	s := Stats{Density: map[string]float64{}}
	for i := 0; i < p.model.Depth; i++ {
		qkv, proj, mlp := p.layerGroups(i)
		s.Density[qkv.name] = qkv.density()
		s.Density[proj.name] = proj.density()
		s.Density[fmt.Sprintf("blocks.%d.mlp", i)] = mlp.density()
		removed := 0
		for _, l := range p.LiveHeads(i) {
			if !l {
				removed++
			}
		}
		s.HeadsRemoved = append(s.HeadsRemoved, removed)
		kept := 0
		for _, k := range mlp.keep {
			if k {
				kept++
			}
		}
		s.MLPKept = append(s.MLPKept, kept)
	}
	return s
}

// MaskGrid is one mask as a picture would show it: Keep[r][c] reports
// whether block (r, c) is kept; an MLP's neuron mask is a single row.
type MaskGrid struct {
	Title string
	Keep  [][]bool
}

// MaskGrids are the masks, three per layer (qkv, proj, MLP).
func (p *Pruner) MaskGrids() []MaskGrid {
	var panels []MaskGrid
	for i := 0; i < p.model.Depth; i++ {
		for _, g := range []*group{p.groups[3*i], p.groups[3*i+1], p.groups[3*i+2]} {
			grid := make([][]bool, g.rows)
			for r := range grid {
				grid[r] = g.keep[r*g.cols : (r+1)*g.cols]
			}
			title := fmt.Sprintf("block %d %s", i, g.kindName())
			panels = append(panels, MaskGrid{Title: title, Keep: grid})
		}
	}
	return panels
}

// DensityOf is the kept block fraction of block layer's linear layer name
// ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2") in the compacted model,
// for vit.Config.SparseFLOPs; matrices without a mask count as dense.
func (e *Extension) DensityOf(layer int, name string) float64 {
	if m, ok := e.Masks[fmt.Sprintf("blocks.%d.%s.weight", layer, name)]; ok {
		return m.Density()
	}
	return 1
}

// PrunedValues is the number of stored weights inside pruned blocks (all
// zero).
func (e *Extension) PrunedValues() int {
	n := 0
	for _, m := range e.Masks {
		n += strings.Count(m.Keep, "0") * e.Block * e.Block
	}
	return n
}

// Structure is what the current masks leave of the model, per layer, as
// Compact would build it: the live heads, the kept MLP neurons, and the kept
// blocks of the compacted qkv and proj matrices (the live heads' rows and
// columns). It is cheap to compute, so a caller can tell whether the
// pruned structure changed without compacting.
type Structure struct {
	Heads      []int `json:"heads"`
	Hidden     []int `json:"hidden"`
	QKVBlocks  []int `json:"qkv_blocks"`
	ProjBlocks []int `json:"proj_blocks"`
}

// Structure reports the structure of the current masks.
func (p *Pruner) Structure() Structure {
	depth := p.model.Depth
	s := Structure{Heads: make([]int, depth), Hidden: make([]int, depth),
		QKVBlocks: make([]int, depth), ProjBlocks: make([]int, depth)}
	for i := 0; i < depth; i++ {
		qkvKept, projKept := p.headBlocks(i)
		for h, l := range p.LiveHeads(i) {
			if l {
				s.Heads[i]++
				s.QKVBlocks[i] += qkvKept[h]
				s.ProjBlocks[i] += projKept[h]
			}
		}
		_, _, mlp := p.layerGroups(i)
		for _, k := range mlp.keep {
			if k {
				s.Hidden[i]++
			}
		}
	}
	return s
}

// Config is c (the dense model being pruned) with the structure's heads and
// MLP units, and the kept block fraction of each compacted qkv and proj
// matrix for vit.Config.SparseFLOPs: what Compact's model and extension
// give, without compacting.
func (s Structure) Config(c vit.Config, block int) (vit.Config, func(int, string) float64) {
	c.LayerHeads, c.LayerHidden = slices.Clone(s.Heads), slices.Clone(s.Hidden)
	d, hd := c.Dim, c.HeadDim()
	return c, func(layer int, name string) float64 {
		a := s.Heads[layer] * hd // compacted attention width
		switch name {
		case "attn.qkv":
			return float64(s.QKVBlocks[layer]) / float64(3*a/block*(d/block))
		case "attn.proj":
			return float64(s.ProjBlocks[layer]) / float64(d/block*(a/block))
		}
		return 1
	}
}
