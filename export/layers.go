package export

import (
	"fmt"

	"vitc/export/bundle"
	"vitc/export/intmath"
	"vitc/export/isa"
)

// linearRef locates a packed linear layer inside its blob.
type linearRef struct {
	l                     *QLinear
	sparse                bool
	wgt, bias, req, index int
}

// addLinear packs l into bl: tiled (or block-sparse) weights, bias and the
// per-channel requantisation table.
func (c *compiler) addLinear(bl *blob, l *QLinear) linearRef {
	p := packWeights(l.W, l.Out, l.In, c.hw)
	b := c.hw.Block
	r := linearRef{l: l, sparse: p.sparse}
	c.out.StoredTiles += p.tiles
	if p.sparse {
		c.out.SparseMatrices++
	}
	layout, note := "tiled", fmt.Sprintf("W (out %d, in %d) in %d×%d tiles, (row, col) order; %d of %d tiles", l.Out, l.In, b, b, p.tiles, p.total)
	if p.sparse {
		layout = "bsr"
		note = fmt.Sprintf("W (out %d, in %d): the %d non-zero of %d %d×%d tiles, grouped by PE as %s.index lists them", l.Out, l.In, p.tiles, p.total, b, b, l.Name)
	}
	r.wgt = bl.put(l.Name+".weight", "int8", []int{p.tiles, b, b}, layout, l.WScale, note, p.wgt)
	r.bias = bl.put(l.Name+".bias", "int32", []int{l.Out}, "row_major", nil, "at input scale × weight scale of each channel", le32(l.Bias))
	r.req = bl.put(l.Name+".requant", "int32", []int{l.Out, 2}, "row_major", nil, "per output channel (multiplier, shift)", multTable(l.Req))
	if p.sparse {
		r.index = bl.put(l.Name+".index", "uint32", []int{len(p.index) / 4}, "bsr_index", nil, "tiles, PEs, tiles per PE, then (row | col<<16) per tile", p.index)
	}
	return r
}

// gemm emits dst (rows, Out) int32 = src (rows, In) int8 · Wᵀ + bias.
func (c *compiler) gemm(base int, r linearRef, dst, src, srcStride int, rows uint64) {
	args := []uint64{u(dst), u(src), u(srcStride), rows, u(r.l.In), u(r.l.Out), u(base + r.wgt), u(base + r.bias)}
	if r.sparse {
		c.emit(isa.OpSpgemm, 0, append(args, u(base+r.index), c.act16)...)
		return
	}
	c.emit(isa.OpGemm, 0, append(args, c.act16)...)
}

// requant emits the per-channel requantisation of a linear layer's output
// to an activation (wide false) or to int32.
func (c *compiler) requant(dst, dstStride, src, srcStride int, rows uint64, cols, params int, wide bool) {
	out := uint64(intmath.OutI8)
	if wide {
		out = intmath.OutI32
	} else if c.es == 2 {
		out = intmath.OutI16
	}
	c.emit(isa.OpRequant, 0, u(dst), u(dstStride), u(src), u(srcStride), rows, u(cols), u(params), out)
}

// actType is the matmul operand type of an activation, typeI8 or typeI16.
func (c *compiler) actType() uint64 { return c.act16 }

// mmShift is the shift of an activation × activation matmul.
func (c *compiler) mmShift() uint64 {
	if c.es == 2 {
		return wideMatmulShift
	}
	return 0
}

func u(v int) uint64 { return uint64(v) }

func imm(v int) uint64 { return isa.DimImm(v) }

func reg(r int) uint64 { return isa.DimReg(r) }

func layerNormTable(p intmath.LayerNormParams) []byte { return le32(p.Words()) }

// embed is the patch embedding: x0 = [cls + pos0; patches·Wᵀ + b + pos].
func (c *compiler) embed() *layerCode {
	qm := c.qm
	cfg := qm.Config
	d, np := cfg.Dim, cfg.Patches()
	lc := &layerCode{name: "embed", blob: blob{name: "embed"}}
	bl := &lc.blob
	proj := c.addLinear(bl, &qm.Patch)
	// pos and token 0 are operands of vector instructions, which read the
	// activation buffer: the program loads them there from DRAM up front.
	adt, e := qm.actDType(), c.es
	bl.put("pos_embed", adt, []int{np, d}, "row_major", []float64{qm.Scales["pos"]}, "rows 1.. of pos_embed; loaded to the activation buffer", actBytes(qm.Pos, qm.bits()))
	bl.put("cls_token+pos_embed[0]", adt, []int{d}, "row_major", []float64{qm.Scales["x0"]}, "token 0 of x0; loaded to the activation buffer", actBytes(qm.Row0, qm.bits()))
	lc.slots = []bundle.Slot{{Name: "embed", DType: adt, Shape: []int{cfg.Tokens(), d}}}
	a := &c.act
	// With the weights resident across a batch, the cls row gets a place of
	// its own beside pos_embed: both are loaded for the batch's first image
	// only, and each image copies the row into its tokens (an add with
	// multipliers 1 and 0 and no shift is exact).
	clsAt := a.x[0]
	if c.resident() {
		clsAt = a.cls
	}
	lc.pre = func() {
		c.load(spaceAct, a.pos, c.dramOf("pos_embed"), e*np*d, 0)
		c.load(spaceAct, clsAt, c.dramOf("cls_token+pos_embed[0]"), e*d, 0)
	}
	lc.gen = func(base int, slots []bundle.Slot) {
		c.gemm(base, proj, a.acc, a.in, cfg.Channels*cfg.Patch*cfg.Patch, reg(regPatches))
		if c.resident() {
			c.add(a.x[0], a.cls, a.cls, imm(1), d, intmath.Pair{A: 1}, 0)
		}
		c.requant(a.f8, d, a.acc, d, reg(regPatches), d, base+proj.req, false)
		c.add(a.x[0]+e*d, a.f8, a.pos, reg(regPatches), d, qm.AddEmb, 0)
		c.store(a.x[0], slots[0], reg(regTokens), e*d)
	}
	return lc
}

func (c *compiler) add(dst, x, y int, rows uint64, cols int, p intmath.Pair, flags isa.Flags) {
	c.emit(isa.OpAdd, flags, u(dst), u(x), u(y), rows, u(cols), uint64(uint32(p.A)), uint64(uint32(p.B)), u(int(p.Shift)), c.act16)
}

func (c *compiler) layerNorm(dst, src int, rows uint64, cols, params int) {
	c.emit(isa.OpLayerNorm, 0, u(dst), u(src), rows, u(cols), u(params), c.act16)
}

// store writes rows × rowBytes from the activation buffer to a slot; it
// waits for the computes that produced them.
func (c *compiler) store(src int, s bundle.Slot, rows uint64, rowBytes int) {
	c.emit(isa.OpStore, isa.WaitCompute, u(src), uint64(s.Addr), rows, u(rowBytes), u(rowBytes))
}

// dramOf is the DRAM address of a placed tensor.
func (c *compiler) dramOf(name string) int {
	for _, t := range c.out.Tensors {
		if t.Name == name {
			return int(t.Offset)
		}
	}
	panic("export: no tensor " + name)
}

// block is one transformer block.
func (c *compiler) block(l int) *layerCode {
	qm := c.qm
	cfg := qm.Config
	b := &qm.Blocks[l]
	d, hd := cfg.Dim, cfg.HeadDim()
	aw := b.Heads * hd
	name := blockName(l)
	lc := &layerCode{name: name, blob: blob{name: name}}
	bl := &lc.blob
	norm1 := bl.put(name+".norm1.params", "int32", []int{intmath.LayerNormWords(d)}, "layernorm", nil, "eps, gamma, beta", layerNormTable(b.Norm1))
	qkv := c.addLinear(bl, &b.QKV)
	var greq, taylor, qk, softmax, pv int
	if cfg.Attention == "taylor" {
		greq = bl.put(name+".attn.g.requant", "int32", []int{hd, 2}, "row_major", nil, "K̂ᵀV to G, every column alike", multTable(repeat(b.GReq, hd)))
		taylor = bl.put(name+".attn.taylor.params", "int32", []int{intmath.TaylorWords}, "taylor", nil, "v̄, q·G and q·k̄ multipliers", le32(b.Taylor.Words()))
		qk = bl.put(name+".attn.cls.params", "int32", []int{2}, "multiplier", nil, "q·k̂ to 16 fraction bits", multTable([]intmath.Multiplier{b.Taylor.QK}))
	} else {
		softmax = bl.put(name+".attn.softmax.params", "int32", []int{intmath.SoftmaxWords}, "softmax", nil, "scores to the exponent's 12 fraction bits", le32(b.Softmax.Words()))
		pv = bl.put(name+".attn.pv.requant", "int32", []int{hd, 2}, "row_major", nil, "P·V to the attention output, every column alike", multTable(repeat(b.PVReq, hd)))
	}
	proj := c.addLinear(bl, &b.Proj)
	norm2 := bl.put(name+".norm2.params", "int32", []int{intmath.LayerNormWords(d)}, "layernorm", nil, "eps, gamma, beta", layerNormTable(b.Norm2))
	fc1 := c.addLinear(bl, &b.FC1)
	gelu := bl.put(name+".mlp.gelu.params", "int32", []int{intmath.GELUWords}, "gelu", nil, "table form: position multiplier, −1, output multiplier", le32(b.GELU.Words()))
	fc2 := c.addLinear(bl, &b.FC2)
	nIn, nOut := cfg.TokensAt(l)
	stage := -1
	if b.Prune {
		lc.slots = append(lc.slots, bundle.Slot{Name: fmt.Sprintf("kept%d", l), DType: "int32", Shape: []int{nIn - 1}})
		stage = c.pstage
		c.pstage++
	}
	lc.slots = append(lc.slots, bundle.Slot{Name: fmt.Sprintf("block%d", l), DType: qm.actDType(), Shape: []int{nOut, d}})
	lc.gen = func(base int, slots []bundle.Slot) {
		a := &c.act
		nr := c.tokensReg(l)
		rows := reg(nr)
		x, xNext := a.x[l%2], a.x[(l+1)%2]
		e, at, sh := c.es, c.actType(), c.mmShift()
		c.layerNorm(a.h, x, rows, d, base+norm1)
		c.gemm(base, qkv, a.acc, a.h, d, rows)
		c.requant(a.qkv, 3*aw, a.acc, 3*aw, rows, 3*aw, base+qkv.req, false)
		for h := 0; h < b.Heads; h++ {
			q, k, v := a.qkv+e*h*hd, a.qkv+e*(aw+h*hd), a.qkv+e*(2*aw+h*hd)
			out := a.attn + e*h*hd
			acc := uint64(0)
			if h > 0 {
				acc = 1
			}
			if cfg.Attention == "taylor" {
				c.emit(isa.OpCenter, 0, u(a.kh), u(hd), u(k), u(3*aw), rows, u(hd), uint64(uint32(b.Center.M)), u(int(b.Center.Shift)), c.act16)
				c.emit(isa.OpMatmul, 0, u(a.g32), u(hd), u(a.kh), u(hd), u(v), u(3*aw), imm(hd), rows, imm(hd), layoutTN, at, at, sh)
				c.requant(a.g8, hd, a.g32, hd, imm(hd), hd, base+greq, false)
				c.emit(isa.OpColsum, 0, u(a.sums), u(v), u(3*aw), rows, u(hd), c.act16)
				c.emit(isa.OpColsum, 0, u(a.sums+4*hd), u(a.kh), u(hd), rows, u(hd), c.act16)
				c.emit(isa.OpMatmul, 0, u(a.qg), u(hd), u(q), u(3*aw), u(a.g8), u(hd), rows, imm(hd), imm(hd), layoutNN, at, at, sh)
				c.emit(isa.OpDivrow, 0, u(out), u(aw), u(a.qg), u(q), u(3*aw), u(a.sums), rows, u(hd), u(base+taylor), c.act16)
				if b.Prune {
					c.emit(isa.OpClsscore, 0, u(a.scores), modeTaylor, u(q), u(a.kh), u(hd), u(a.sums), rows, u(hd), u(base+qk), acc, c.act16)
				}
				continue
			}
			n0 := cfg.Tokens()
			c.emit(isa.OpMatmul, 0, u(a.s32), u(n0), u(q), u(3*aw), u(k), u(3*aw), rows, imm(hd), rows, layoutNT, at, at, sh)
			c.emit(isa.OpSoftmax, 0, u(a.p16), u(n0), u(a.s32), u(n0), rows, rows, u(base+softmax), typeI16)
			if b.Prune {
				c.emit(isa.OpClsscore, 0, u(a.scores), modeSoftmax, u(a.s32), 0, 0, 0, rows, 0, u(base+softmax), acc, 0)
			}
			// Σp ≈ 32767, so P·V stays inside int32 unshifted even for an int16 V.
			c.emit(isa.OpMatmul, 0, u(a.o32), u(hd), u(a.p16), u(n0), u(v), u(3*aw), rows, rows, imm(hd), layoutNN, typeI16, at, 0)
			c.requant(out, aw, a.o32, hd, rows, hd, base+pv, false)
		}
		c.gemm(base, proj, a.acc, a.attn, aw, rows)
		c.requant(a.f8, d, a.acc, d, rows, d, base+proj.req, false)
		c.add(a.mid, x, a.f8, rows, d, b.AddAttn, 0)
		cur := a.mid
		if b.Prune {
			out := regPruned + stage
			// top-k rewrites the index list the previous stage's STORE reads.
			c.emit(isa.OpTopk, isa.WaitStore, u(a.index), u(a.scores), rows, u(out), regKept, u(b.KeepNum), u(b.KeepDen))
			c.emit(isa.OpFuse, 0, u(a.fused), u(a.mid), u(a.index), u(a.scores), rows, reg(regKept), u(d), uint64(b.Heads)*intmath.ScoreOne, c.act16)
			c.emit(isa.OpStore, isa.WaitCompute, u(a.index), uint64(slots[0].Addr), imm(1), u(4*(nIn-1)), u(4*(nIn-1)))
			cur, rows = a.fused, reg(out)
		}
		c.layerNorm(a.h, cur, rows, d, base+norm2)
		c.gemm(base, fc1, a.acc, a.h, d, rows)
		c.requant(a.f32, b.Hidden, a.acc, b.Hidden, rows, b.Hidden, base+fc1.req, true)
		c.emit(isa.OpGelu, 0, u(a.gl), u(a.f32), rows, u(b.Hidden), u(base+gelu), c.act16)
		c.gemm(base, fc2, a.acc, a.gl, b.Hidden, rows)
		c.requant(a.f8, d, a.acc, d, rows, d, base+fc2.req, false)
		// xNext was last read by the STORE of two blocks back.
		c.add(xNext, cur, a.f8, rows, d, b.AddMLP, isa.WaitStore)
		c.store(xNext, slots[len(slots)-1], rows, e*d)
	}
	return lc
}

// Matmul layouts, cls-score modes and element types, as the ISA table's enums number them.
const (
	layoutNN    = 0
	layoutTN    = 1
	layoutNT    = 2
	modeSoftmax = 0
	modeTaylor  = 1
	typeI8      = 0
	typeI16     = 1
)

// tokensReg is the register holding the token count entering block l:
// regTokens until the first pruning stage, then the stage's register.
func (c *compiler) tokensReg(l int) int {
	r, stage := regTokens, 0
	for i := 0; i < l; i++ {
		if c.qm.Blocks[i].Prune {
			r = regPruned + stage
			stage++
		}
	}
	return r
}

// head is the final LayerNorm on the cls token and the classifier.
func (c *compiler) head() *layerCode {
	qm := c.qm
	cfg := qm.Config
	d := cfg.Dim
	lc := &layerCode{name: "head", blob: blob{name: "head"}}
	bl := &lc.blob
	norm := bl.put("norm.params", "int32", []int{intmath.LayerNormWords(d)}, "layernorm", nil, "eps, gamma, beta", layerNormTable(qm.Norm))
	head := c.addLinear(bl, &qm.Head)
	lc.slots = []bundle.Slot{{Name: "logits", DType: "int32", Shape: []int{cfg.Classes}}}
	lc.gen = func(base int, slots []bundle.Slot) {
		a := &c.act
		x := a.x[len(qm.Blocks)%2]
		c.layerNorm(a.lnf, x, imm(1), d, base+norm)
		c.gemm(base, head, a.acc, a.lnf, d, imm(1))
		c.requant(a.logits, cfg.Classes, a.acc, cfg.Classes, imm(1), cfg.Classes, base+head.req, true)
		c.store(a.logits, slots[0], imm(1), 4*cfg.Classes)
	}
	return lc
}
