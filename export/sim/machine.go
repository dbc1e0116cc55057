// Package sim executes an accelerator program bit-exactly and models its
// cycles: the functional simulator hardware teams check RTL against (as
// VTA's is), fed by nothing but a bundle.
package sim

import (
	"encoding/binary"
	"fmt"

	"vitc/export/hw"
	"vitc/export/intmath"
	"vitc/export/isa"
)

// Machine is the accelerator's state: DRAM, the activation and weight
// buffers, the register file, and the cycle model's clocks.
type Machine struct {
	hw       hw.Config
	prog     []isa.Instr
	dram     []byte
	act, wgt []byte
	regs     [isa.NumRegs]uint32
	layerOf  []int // instruction → layer index
	cycles   *cycleModel
	scratch  []int64
}

// fault is an execution error: a bad address, a malformed table. Run
// recovers it and reports the instruction.
type fault string

// NewMachine prepares a machine with dram as its initial DRAM image (the
// weights at address 0, the rest zero). layers gives each layer's last
// instruction, for per-layer statistics.
func NewMachine(h hw.Config, prog []isa.Instr, dram []byte, layers []LayerRange) (*Machine, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	m := &Machine{hw: h, prog: prog, dram: dram, act: make([]byte, h.ActBufferBytes), wgt: make([]byte, h.WgtBufferBytes)}
	m.layerOf = make([]int, len(prog))
	next := 0
	for i := range prog {
		for next < len(layers)-1 && i > layers[next].Last {
			next++
		}
		m.layerOf[i] = next
	}
	names := make([]string, len(layers))
	for i, l := range layers {
		names[i] = l.Name
	}
	if len(names) == 0 {
		names = []string{"program"}
	}
	m.cycles = newCycleModel(h, names)
	return m, nil
}

// LayerRange names the instructions of one layer (inclusive).
type LayerRange struct {
	Name        string
	First, Last int
}

// DRAM is the machine's external memory.
func (m *Machine) DRAM() []byte { return m.dram }

// Stats returns the cycle model's account of the last Run.
func (m *Machine) Stats() Stats { return m.cycles.stats() }

// Run executes the program from the start until finish.
func (m *Machine) Run() (err error) {
	m.regs = [isa.NumRegs]uint32{}
	m.cycles.reset()
	pc := 0
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(fault)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("instruction %d (%s): %s", pc, m.prog[pc].Op, string(f))
		}
	}()
	for ; pc < len(m.prog); pc++ {
		in := m.prog[pc]
		m.cycles.account(pc, m.layerOf[pc], in, m.cost(in))
		if in.Op == isa.OpFinish {
			return nil
		}
		m.exec(in)
	}
	return fmt.Errorf("the program ends without finish")
}

func failf(format string, args ...any) { panic(fault(fmt.Sprintf(format, args...))) }

// span returns buf[addr : addr+n] or faults.
func span(buf []byte, space string, addr, n int) []byte {
	if addr < 0 || n < 0 || addr > len(buf) || n > len(buf)-addr {
		failf("%s:0x%x + %d bytes is outside the %d-byte %s", space, addr, n, len(buf), space)
	}
	return buf[addr : addr+n]
}

// Typed views of the buffers: element i of an int8 or int32 array at addr.
func (m *Machine) i8(buf []byte, addr, n int) []int8 {
	b := span(buf, "act", addr, n)
	out := make([]int8, n)
	for i, v := range b {
		out[i] = int8(v)
	}
	return out
}

func i32s(buf []byte, space string, addr, n int) []int32 {
	b := span(buf, space, addr, 4*n)
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func put32(buf []byte, addr int, v int32) {
	binary.LittleEndian.PutUint32(span(buf, "act", addr, 4), uint32(v))
}

func put8(buf []byte, addr int, v int8) { span(buf, "act", addr, 1)[0] = byte(v) }

func get8(buf []byte, addr int) int8 { return int8(span(buf, "act", addr, 1)[0]) }

func get32(buf []byte, addr int) int32 {
	return int32(binary.LittleEndian.Uint32(span(buf, "act", addr, 4)))
}

func (m *Machine) dim(v uint64) int { return isa.ResolveDim(v, &m.regs) }

// args resolves the named fields of in: Dims through the registers.
type args struct {
	m  *Machine
	in isa.Instr
}

func (a args) u(name string) int { return int(a.in.Arg(name)) }
func (a args) d(name string) int { return a.m.dim(a.in.Arg(name)) }

func (m *Machine) exec(in isa.Instr) {
	a := args{m, in}
	switch in.Op {
	case isa.OpLoad:
		dst := m.act
		space := "act"
		if a.u("space") == 1 {
			dst, space = m.wgt, "wgt"
		}
		n := a.u("bytes")
		copy(span(dst, space, a.u("dst"), n), span(m.dram, "dram", a.u("src"), n))
	case isa.OpStore:
		rows, rb, stride := a.d("rows"), a.u("row_bytes"), a.u("stride")
		for r := 0; r < rows; r++ {
			copy(span(m.dram, "dram", a.u("dst")+r*rb, rb), span(m.act, "act", a.u("src")+r*stride, rb))
		}
	case isa.OpSetr:
		m.regs[a.u("reg")] = uint32(a.u("value"))
	case isa.OpGemm, isa.OpSpgemm:
		m.gemm(a)
	case isa.OpMatmul:
		m.matmul(a)
	case isa.OpColsum:
		dst, src, stride, rows, cols := a.u("dst"), a.u("src"), a.u("stride"), a.d("rows"), a.u("cols")
		sums := make([]int32, cols)
		for r := 0; r < rows; r++ {
			for c, v := range m.i8(m.act, src+r*stride, cols) {
				sums[c] += int32(v)
			}
		}
		for c, v := range sums {
			put32(m.act, dst+4*c, v)
		}
	case isa.OpCenter:
		mult := intmath.Multiplier{M: int32(uint32(a.u("mult"))), Shift: uint8(a.u("shift"))}
		if mult.M < 0 || mult.Shift > intmath.MaxShift {
			failf("invalid multiplier")
		}
		rows, cols := a.d("rows"), a.u("cols")
		if rows < 1 {
			failf("no rows to centre")
		}
		src, ss, dst, ds := a.u("src"), a.u("src_stride"), a.u("dst"), a.u("dst_stride")
		col, out := make([]int8, rows), make([]int8, rows)
		for c := 0; c < cols; c++ {
			for r := range col {
				col[r] = get8(m.act, src+r*ss+c)
			}
			intmath.CenterColumn(out, col, mult)
			for r, v := range out {
				put8(m.act, dst+r*ds+c, v)
			}
		}
	case isa.OpRequant:
		rows, cols := a.d("rows"), a.u("cols")
		table := i32s(m.wgt, "wgt", a.u("params"), 2*cols)
		wide := a.u("out") == 1
		src, ss, dst, ds := a.u("src"), a.u("src_stride"), a.u("dst"), a.u("dst_stride")
		mults := make([]intmath.Multiplier, cols)
		for c := range mults {
			var err error
			if mults[c], err = intmath.MultiplierFromWords(table[2*c], table[2*c+1]); err != nil {
				failf("%v", err)
			}
		}
		for r := 0; r < rows; r++ {
			in := i32s(m.act, "act", src+4*r*ss, cols)
			for c, v := range in {
				v = intmath.Requant(mults[c], v, wide)
				if wide {
					put32(m.act, dst+4*(r*ds+c), v)
				} else {
					put8(m.act, dst+r*ds+c, int8(v))
				}
			}
		}
	case isa.OpAdd:
		p := intmath.Pair{A: int32(uint32(a.u("mult_a"))), B: int32(uint32(a.u("mult_b"))), Shift: uint8(a.u("shift"))}
		if p.Shift > intmath.MaxShift {
			failf("shift %d out of range", p.Shift)
		}
		n := a.d("rows") * a.u("cols")
		x, y := m.i8(m.act, a.u("a"), n), m.i8(m.act, a.u("b"), n)
		for i := range x {
			put8(m.act, a.u("dst")+i, p.Apply(int64(x[i]), int64(y[i])))
		}
	case isa.OpLayerNorm:
		cols := a.u("cols")
		p, err := intmath.LayerNormFromWords(i32s(m.wgt, "wgt", a.u("params"), intmath.LayerNormWords(cols)), cols)
		if err != nil || cols == 0 {
			failf("bad LayerNorm table: %v", err)
		}
		out := make([]int8, cols)
		for r := 0; r < a.d("rows"); r++ {
			p.Row(out, m.i8(m.act, a.u("src")+r*cols, cols))
			copy(span(m.act, "act", a.u("dst")+r*cols, cols), i8bytes(out))
		}
	case isa.OpGelu:
		p, err := intmath.GELUFromWords(i32s(m.wgt, "wgt", a.u("params"), intmath.GELUWords))
		if err != nil {
			failf("%v", err)
		}
		n := a.d("rows") * a.u("cols")
		for i, v := range i32s(m.act, "act", a.u("src"), n) {
			put8(m.act, a.u("dst")+i, p.Apply(v))
		}
	case isa.OpSoftmax:
		p := m.softmaxParams(a)
		rows, cols := a.d("rows"), a.d("cols")
		if cols < 1 {
			failf("softmax over no columns")
		}
		out, scratch := make([]int8, cols), make([]int64, cols)
		for r := 0; r < rows; r++ {
			p.Row(out, i32s(m.act, "act", a.u("src")+4*r*a.u("src_stride"), cols), scratch)
			copy(span(m.act, "act", a.u("dst")+r*a.u("dst_stride"), cols), i8bytes(out))
		}
	case isa.OpDivrow:
		p, err := intmath.TaylorFromWords(i32s(m.wgt, "wgt", a.u("params"), intmath.TaylorWords))
		if err != nil {
			failf("%v", err)
		}
		rows, cols := a.d("rows"), a.u("cols")
		sums := i32s(m.act, "act", a.u("sums"), 2*cols)
		out := make([]int8, cols)
		for r := 0; r < rows; r++ {
			qg := i32s(m.act, "act", a.u("num")+4*r*cols, cols)
			q := m.i8(m.act, a.u("q")+r*a.u("q_stride"), cols)
			p.Row(out, qg, q, sums[:cols], sums[cols:], rows)
			copy(span(m.act, "act", a.u("dst")+r*a.u("dst_stride"), cols), i8bytes(out))
		}
	case isa.OpClsscore:
		m.clsScore(a)
	case isa.OpTopk:
		m.topk(a)
	case isa.OpFuse:
		m.fuse(a)
	case isa.OpSync:
	default:
		failf("opcode %s cannot execute", in.Op)
	}
}

func i8bytes(xs []int8) []byte {
	out := make([]byte, len(xs))
	for i, v := range xs {
		out[i] = byte(v)
	}
	return out
}

func (m *Machine) softmaxParams(a args) intmath.SoftmaxParams {
	p, err := intmath.SoftmaxFromWords(i32s(m.wgt, "wgt", a.u("params"), intmath.SoftmaxWords))
	if err != nil {
		failf("%v", err)
	}
	return p
}

// tileIndex reads a block-sparse index table: tiles per PE and each tile's
// (row, col).
func (m *Machine) tileIndex(addr, k, n int) (rows, cols []int, perPE []int) {
	head := i32s(m.wgt, "wgt", addr, 2)
	tiles, pes := int(uint32(head[0])), int(uint32(head[1]))
	b := m.hw.Block
	maxTiles := ceil(n, b) * ceil(k, b)
	if pes != m.hw.PERows*m.hw.PECols || tiles > maxTiles {
		failf("index table for %d tiles on %d PEs does not fit a %d×%d matrix on %d PEs", tiles, pes, n, k, m.hw.PERows*m.hw.PECols)
	}
	counts := i32s(m.wgt, "wgt", addr+8, pes)
	sum := 0
	for _, c := range counts {
		if c < 0 {
			failf("negative tile count")
		}
		sum += int(c)
		perPE = append(perPE, int(c))
	}
	if sum != tiles {
		failf("tile counts sum to %d, table says %d tiles", sum, tiles)
	}
	for _, w := range i32s(m.wgt, "wgt", addr+8+4*pes, tiles) {
		r, c := int(uint32(w)&0xffff), int(uint32(w)>>16)
		if r >= ceil(n, b) || c >= ceil(k, b) {
			failf("tile (%d, %d) outside the matrix", r, c)
		}
		rows, cols = append(rows, r), append(cols, c)
	}
	return rows, cols, perPE
}

func ceil(a, b int) int { return (a + b - 1) / b }

// gemm is dst (rows, n) int32 = bias + src (rows, k) · Wᵀ over the stored
// tiles, in storage order.
func (m *Machine) gemm(a args) {
	rows, k, n := a.d("rows"), a.u("k"), a.u("n")
	b := m.hw.Block
	var tr, tc []int
	if a.in.Op == isa.OpSpgemm {
		tr, tc, _ = m.tileIndex(a.u("index"), k, n)
	} else {
		for r := 0; r < ceil(n, b); r++ {
			for c := 0; c < ceil(k, b); c++ {
				tr, tc = append(tr, r), append(tc, c)
			}
		}
	}
	w := span(m.wgt, "wgt", a.u("wgt"), len(tr)*b*b)
	bias := i32s(m.wgt, "wgt", a.u("bias"), n)
	acc := make([]int64, n)
	src, ss, dst := a.u("src"), a.u("src_stride"), a.u("dst")
	out := span(m.act, "act", dst, 4*rows*n)
	for r := 0; r < rows; r++ {
		x := m.i8(m.act, src+r*ss, k)
		for o := range acc {
			acc[o] = int64(bias[o])
		}
		for t := range tr {
			tile := w[t*b*b : (t+1)*b*b]
			for i := 0; i < b; i++ {
				o := tr[t]*b + i
				if o >= n {
					break
				}
				row := tile[i*b : (i+1)*b]
				var s int64
				for j, wv := range row {
					kk := tc[t]*b + j
					if kk >= k {
						break
					}
					s += int64(int8(wv)) * int64(x[kk])
				}
				acc[o] += s
			}
		}
		for o, v := range acc {
			binary.LittleEndian.PutUint32(out[4*(r*n+o):], uint32(v))
		}
	}
}

// matmul is dst (m, n) = A (m, k) · B (k, n) over int8 activations.
func (m *Machine) matmul(a args) {
	mm, kk, nn := a.d("m"), a.d("k"), a.d("n")
	layout := a.u("layout")
	as, bs, ds := a.u("a_stride"), a.u("b_stride"), a.u("dst_stride")
	if mm == 0 || nn == 0 {
		return
	}
	// Element (i, l) of A is at ai·i + al·l, element (l, j) of B at bl·l + bj·j.
	ai, al, bl, bj := as, 1, bs, 1
	if layout == 1 { // tn
		ai, al = 1, as
	}
	if layout == 2 { // nt
		bl, bj = 1, bs
	}
	lastA := (mm-1)*ai + (kk-1)*al
	lastB := (kk-1)*bl + (nn-1)*bj
	if kk == 0 {
		lastA, lastB = 0, 0
	}
	av := m.i8(m.act, a.u("a"), lastA+1)
	bv := m.i8(m.act, a.u("b"), lastB+1)
	dst := span(m.act, "act", a.u("dst"), 4*((mm-1)*ds+nn))
	for i := 0; i < mm; i++ {
		for j := 0; j < nn; j++ {
			var s int32
			for l := 0; l < kk; l++ {
				s += int32(av[i*ai+l*al]) * int32(bv[l*bl+j*bj])
			}
			binary.LittleEndian.PutUint32(dst[4*(i*ds+j):], uint32(s))
		}
	}
}

func (m *Machine) clsScore(a args) {
	rows, cols := a.d("rows"), a.u("cols")
	scores := make([]int64, rows)
	if a.u("mode") == 1 { // taylor
		w := i32s(m.wgt, "wgt", a.u("params"), 2)
		qk, err := intmath.MultiplierFromWords(w[0], w[1])
		if err != nil {
			failf("%v", err)
		}
		p := intmath.TaylorParams{QK: qk}
		q0 := m.i8(m.act, a.u("src"), cols)
		sums := i32s(m.act, "act", a.u("sums"), 2*cols)
		den := p.Den(rows, q0, sums[cols:])
		for j := range scores {
			scores[j] = p.ClsScore(q0, m.i8(m.act, a.u("k")+j*a.u("k_stride"), cols), den)
		}
	} else {
		if rows < 1 {
			failf("no tokens to score")
		}
		m.softmaxParams(a).ClsRow(scores, i32s(m.act, "act", a.u("src"), rows), make([]int64, rows))
	}
	for j, s := range scores {
		addr := a.u("dst") + 4*j
		if a.u("accumulate") == 1 {
			s += int64(get32(m.act, addr))
		}
		put32(m.act, addr, intmath.Sat32(s))
	}
}

func (m *Machine) topk(a args) {
	rows := a.d("rows")
	num, den := a.u("keep_num"), a.u("keep_den")
	if den == 0 || rows < 2 {
		failf("top-k of %d tokens at keep %d/%d", rows, num, den)
	}
	s := i32s(m.act, "act", a.u("src"), rows)
	scores := make([]int64, rows)
	for i, v := range s {
		scores[i] = int64(v)
	}
	k := intmath.KeepCount(rows, num, den)
	for i, j := range intmath.TopK(scores, k) {
		put32(m.act, a.u("dst")+4*i, int32(j))
	}
	out := uint32(rows)
	if k < rows-1 {
		out = uint32(k + 2)
	}
	m.regs[a.u("out_reg")] = out
	m.regs[a.u("kept_reg")] = uint32(k)
}

func (m *Machine) fuse(a args) {
	rows, k, cols := a.d("rows"), a.d("kept"), a.u("cols")
	src, dst := a.u("src"), a.u("dst")
	if k >= rows-1 { // nothing dropped
		copy(span(m.act, "act", dst, rows*cols), span(m.act, "act", src, rows*cols))
		return
	}
	outRows := k + 2
	divisor := int64(a.u("divisor"))
	if k < 1 || divisor == 0 {
		failf("fuse keeping %d of %d tokens, divisor %d", k, rows, divisor)
	}
	idx := i32s(m.act, "act", a.u("index"), rows-1)
	for _, j := range idx {
		if j < 1 || int(j) >= rows {
			failf("token index %d outside 1..%d", j, rows-1)
		}
	}
	s := i32s(m.act, "act", a.u("scores"), rows)
	x := m.i8(m.act, src, rows*cols)
	out := make([]int8, outRows*cols)
	copy(out, x[:cols])
	for i, j := range idx[:k] {
		copy(out[(i+1)*cols:(i+2)*cols], x[int(j)*cols:int(j+1)*cols])
	}
	dropped := idx[k:]
	col, ws := make([]int8, len(dropped)), make([]int64, len(dropped))
	for i, j := range dropped {
		ws[i] = int64(s[j])
	}
	for c := 0; c < cols; c++ {
		for i, j := range dropped {
			col[i] = x[int(j)*cols+c]
		}
		out[(k+1)*cols+c] = intmath.Fuse(col, ws, divisor)
	}
	copy(span(m.act, "act", dst, len(out)), i8bytes(out))
}
