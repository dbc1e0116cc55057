// Package sim executes an accelerator program bit-exactly and models its
// cycles: the functional simulator hardware teams check RTL against (as
// VTA's is), fed by nothing but a bundle.
package sim

import (
	"encoding/binary"
	"fmt"
	"unsafe"

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
	pc       int // the instruction executing
	// skipWeights: the weight buffer already holds what the program's
	// weight loads would bring (a batch compiled with weights resident),
	// so they neither run nor take time.
	skipWeights bool
	// weightsEnd is where the weights section ends in DRAM: with
	// skipWeights, every load from below it (into either buffer) is skipped.
	weightsEnd int
	// group is the images one run accounts for: a lockstep group runs every
	// instruction over all of them, one image's state after another in the
	// activation buffer, sharing the resident weights (1: one image).
	group int
	// Per-instruction weight caches and scratch, reused across instructions
	// and images.
	dense      map[int]*denseWeights
	accScratch []int32
	fScratch   []float32
	fOperand   [4][]float32
	tmp32      []int32
	acc64      []int64
	i32Scratch [3][]int32
	i8Scratch  [2][]int8
	i16Scratch [2][]int16
	i64Scratch [2][]int64
	mults      []intmath.Multiplier
	p16        []int16
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
	m := &Machine{hw: h, prog: prog, dram: dram, act: make([]byte, h.ActBufferBytes), wgt: make([]byte, h.WgtBufferBytes), group: 1}
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
	m.cycles.costs = make([]Cost, len(prog))
	return m, nil
}

// Cost is instruction pc's cost in the last Run (zero if it did not run).
func (m *Machine) Cost(pc int) Cost { return m.cycles.costs[pc] }

// LayerRange names the instructions of one layer (inclusive).
type LayerRange struct {
	Name        string
	First, Last int
}

// DRAM is the machine's external memory.
func (m *Machine) DRAM() []byte { return m.dram }

// Stats returns the cycle model's account of the last Run.
// On a lockstep group the account is the group's (Stats.Group images).
func (m *Machine) Stats() Stats {
	s := m.cycles.stats()
	if m.group > 1 {
		s.Group = m.group
	}
	return s
}

// Run executes the program from the start until finish.
func (m *Machine) Run() (err error) {
	m.regs = [isa.NumRegs]uint32{}
	m.cycles.reset()
	clear(m.cycles.costs)
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
		m.pc = pc
		in := m.prog[pc]
		if m.skipWeights && in.Op == isa.OpLoad && (in.Arg("space") == spaceWgt || int(in.Arg("src")) < m.weightsEnd) {
			continue
		}
		m.cycles.account(pc, m.layerOf[pc], in, m.cost(in))
		if in.Op == isa.OpFinish {
			return nil
		}
		m.exec(in)
	}
	return fmt.Errorf("the program ends without finish")
}

// spaceWgt is load's space field for the weight buffer.
const spaceWgt = 1

func failf(format string, args ...any) { panic(fault(fmt.Sprintf(format, args...))) }

// span returns buf[addr : addr+n] or faults.
func span(buf []byte, space string, addr, n int) []byte {
	if addr < 0 || n < 0 || addr > len(buf) || n > len(buf)-addr {
		failf("%s:0x%x + %d bytes is outside the %d-byte %s", space, addr, n, len(buf), space)
	}
	return buf[addr : addr+n]
}

// Typed views of the buffers. view8 is the int8 array of n elements at
// addr itself (no copy: writes through it reach the buffer).
func view8(buf []byte, space string, addr, n int) []int8 {
	b := span(buf, space, addr, n)
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*int8)(unsafe.Pointer(&b[0])), n)
}

// i8 is the int8 array of n elements at act address addr.
func (m *Machine) i8(buf []byte, addr, n int) []int8 { return view8(buf, "act", addr, n) }

// i32s decodes the n little-endian int32 at addr into a new slice.
func i32s(buf []byte, space string, addr, n int) []int32 {
	return decode32(make([]int32, n), span(buf, space, addr, 4*n))
}

// r32 decodes the n int32 at addr into the machine's scratch slot (each
// instruction uses the slots it needs; the next instruction reuses them).
func (m *Machine) r32(slot int, buf []byte, space string, addr, n int) []int32 {
	b := span(buf, space, addr, 4*n)
	m.i32Scratch[slot] = grow(m.i32Scratch[slot], n)
	return decode32(m.i32Scratch[slot], b)
}

func decode32(out []int32, b []byte) []int32 {
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func put32(buf []byte, addr int, v int32) {
	binary.LittleEndian.PutUint32(span(buf, "act", addr, 4), uint32(v))
}

func get32(buf []byte, addr int) int32 {
	return int32(binary.LittleEndian.Uint32(span(buf, "act", addr, 4)))
}

// scratch64 returns int64 scratch slot resized to n.
func (m *Machine) scratch64(slot, n int) []int64 {
	m.i64Scratch[slot] = grow(m.i64Scratch[slot], n)
	return m.i64Scratch[slot]
}

// scratch8 returns int8 scratch slot resized to n.
func (m *Machine) scratch8(slot, n int) []int8 {
	m.i8Scratch[slot] = grow(m.i8Scratch[slot], n)
	return m.i8Scratch[slot]
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
		if wideField(in, "act") {
			colsum[int16](m, a)
		} else {
			colsum[int8](m, a)
		}
	case isa.OpCenter:
		if wideField(in, "act") {
			center[int16](m, a)
		} else {
			center[int8](m, a)
		}
	case isa.OpRequant:
		m.requant(a)
	case isa.OpAdd:
		if wideField(in, "act") {
			add[int16](m, a)
		} else {
			add[int8](m, a)
		}
	case isa.OpLayerNorm:
		if wideField(in, "act") {
			layerNorm[int16](m, a)
		} else {
			layerNorm[int8](m, a)
		}
	case isa.OpGelu:
		if wideField(in, "out") {
			gelu[int16](m, a)
		} else {
			gelu[int8](m, a)
		}
	case isa.OpSoftmax:
		p := m.softmaxParams(a)
		rows, cols := a.d("rows"), a.d("cols")
		if cols < 1 {
			failf("softmax over no columns")
		}
		scratch := m.scratch64(0, cols)
		if a.u("out") == 1 {
			m.p16 = grow(m.p16, cols)
			for r := 0; r < rows; r++ {
				p.Row16(m.p16, m.r32(1, m.act, "act", a.u("src")+4*r*a.u("src_stride"), cols), scratch)
				dst := span(m.act, "act", a.u("dst")+2*r*a.u("dst_stride"), 2*cols)
				for j, v := range m.p16 {
					binary.LittleEndian.PutUint16(dst[2*j:], uint16(v))
				}
			}
			break
		}
		out := m.scratch8(0, cols)
		for r := 0; r < rows; r++ {
			p.Row(out, m.r32(1, m.act, "act", a.u("src")+4*r*a.u("src_stride"), cols), scratch)
			copy(m.i8(m.act, a.u("dst")+r*a.u("dst_stride"), cols), out)
		}
	case isa.OpDivrow:
		if wideField(in, "act") {
			divrow[int16](m, a)
		} else {
			divrow[int8](m, a)
		}
	case isa.OpClsscore:
		m.clsScore(a)
	case isa.OpTopk:
		m.topk(a)
	case isa.OpFuse:
		if wideField(in, "act") {
			fuse[int16](m, a)
		} else {
			fuse[int8](m, a)
		}
	case isa.OpSync:
	default:
		failf("opcode %s cannot execute", in.Op)
	}
}

func (m *Machine) requant(a args) {
	rows, cols := a.d("rows"), a.u("cols")
	table := m.r32(0, m.wgt, "wgt", a.u("params"), 2*cols)
	out := a.u("out")
	if out > intmath.OutI16 {
		failf("requant output type %d", out)
	}
	src, ss, dst, ds := a.u("src"), a.u("src_stride"), a.u("dst"), a.u("dst_stride")
	m.mults = grow(m.mults, cols)
	mults := m.mults
	for c := range mults {
		var err error
		if mults[c], err = intmath.MultiplierFromWords(table[2*c], table[2*c+1]); err != nil {
			failf("%v", err)
		}
	}
	for r := 0; r < rows; r++ {
		in := m.r32(1, m.act, "act", src+4*r*ss, cols)
		switch out {
		case intmath.OutI32:
			o := span(m.act, "act", dst+4*r*ds, 4*cols)
			for c, v := range in {
				binary.LittleEndian.PutUint32(o[4*c:], uint32(intmath.RequantTo(mults[c], v, out)))
			}
		case intmath.OutI16:
			o := view[int16](m, dst+2*r*ds, cols)
			for c, v := range in {
				o[c] = int16(intmath.RequantTo(mults[c], v, out))
			}
		default:
			o := m.i8(m.act, dst+r*ds, cols)
			for c, v := range in {
				o[c] = int8(intmath.Requant(mults[c], v, false))
			}
		}
	}
}

func (m *Machine) softmaxParams(a args) intmath.SoftmaxParams {
	p, err := intmath.SoftmaxFromWords(m.r32(2, m.wgt, "wgt", a.u("params"), intmath.SoftmaxWords))
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
	var c *denseWeights
	if a.in.Op == isa.OpSpgemm {
		c = m.sparseIndex(m.pc, a.u("index"), k, n)
	} else {
		c = m.weightCache(m.pc)
		if c.k != k || c.n != n || c.tr == nil {
			c.tr, c.tc, c.tiles, c.k, c.n = nil, nil, c.tiles[:0], k, n
			for r := 0; r < ceil(n, b); r++ {
				for cc := 0; cc < ceil(k, b); cc++ {
					c.tr, c.tc = append(c.tr, r), append(c.tc, cc)
				}
			}
		}
	}
	w := span(m.wgt, "wgt", a.u("wgt"), len(c.tr)*b*b)
	biasBytes := span(m.wgt, "wgt", a.u("bias"), 4*n)
	src, ss, dst := a.u("src"), a.u("src_stride"), a.u("dst")
	wide := wideField(a.in, "act")
	es := 1
	if wide {
		es = 2
	}
	out := span(m.act, "act", dst, 4*rows*n)
	for r := 0; r < rows; r++ {
		span(m.act, "act", src+es*r*ss, es*k)
	}
	if rows == 0 || n == 0 {
		return
	}
	acc := m.acc(rows * n)
	decode32(acc[:n], biasBytes)
	for r := 1; r < rows; r++ {
		copy(acc[r*n:(r+1)*n], acc[:n])
	}
	switch {
	case c.dup && wide:
		gemmTiles[int16](m, acc, c, w, src, ss, rows, k, n)
	case c.dup:
		gemmTiles[int8](m, acc, c, w, src, ss, rows, k, n)
	case k > 0 && wide:
		// An int16 row is 256·hi + lo: two exact products, wrapping like
		// the int32 accumulator.
		hi, lo := m.gather16(span(m.act, "act", src, es*((rows-1)*ss+k)), 0, rows, k, ss, 1)
		m.fScratch = grow(m.fScratch, rows*n)
		wm := c.matrix(w, b)
		m.tmp32 = grow(m.tmp32, rows*n)
		clear(m.tmp32)
		exactGemm(m.tmp32, hi, wm, rows, n, k, false, m.fScratch)
		for i := range m.tmp32 {
			m.tmp32[i] <<= 8
		}
		exactGemmChunk(m.tmp32, lo, wm, rows, n, k, false, m.fScratch, exactChunkU8)
		for i, v := range m.tmp32 {
			acc[i] += v
		}
	case k > 0:
		x := m.rowsF32(0, src, ss, rows, k)
		m.fScratch = grow(m.fScratch, rows*n)
		exactGemm(acc, x, c.matrix(w, b), rows, n, k, false, m.fScratch)
	}
	for i, v := range acc {
		binary.LittleEndian.PutUint32(out[4*i:], uint32(v))
	}
}

// acc returns the machine's int32 accumulator scratch, n long.
func (m *Machine) acc(n int) []int32 {
	m.accScratch = grow(m.accScratch, n)
	return m.accScratch
}

// rowsF32 gathers rows int8 rows of cols values, stride elements apart from
// act address addr, into float32 operand buffer slot (rows × cols,
// contiguous). The caller has checked the addresses.
func (m *Machine) rowsF32(slot, addr, stride, rows, cols int) []float32 {
	m.fOperand[slot] = grow(m.fOperand[slot], rows*cols)
	out := m.fOperand[slot]
	for r := 0; r < rows; r++ {
		row := m.act[addr+r*stride : addr+r*stride+cols]
		o := out[r*cols : (r+1)*cols]
		for i, v := range row {
			o[i] = float32(int8(v))
		}
	}
	return out
}

// matmul is dst (m, n) = A (m, k) · B (k, n), each operand int8 or int16.
func (m *Machine) matmul(a args) {
	mm, kk, nn := a.d("m"), a.d("k"), a.d("n")
	layout := a.u("layout")
	as, bs, ds := a.u("a_stride"), a.u("b_stride"), a.u("dst_stride")
	shift := uint(a.u("shift"))
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
	wideA, wideB := wideField(a.in, "a_type"), wideField(a.in, "b_type")
	esA, esB := 1, 1
	if wideA {
		esA = 2
	}
	if wideB {
		esB = 2
	}
	av := span(m.act, "act", a.u("a"), esA*(lastA+1))
	bv := span(m.act, "act", a.u("b"), esB*(lastB+1))
	dst := span(m.act, "act", a.u("dst"), 4*((mm-1)*ds+nn))
	acc := m.acc(mm * nn)
	clear(acc)
	if kk > 0 && !wideA && !wideB && shift == 0 {
		// int8 × int8: the exact float32 path straight into the wrapping
		// int32 accumulators.
		af, bf := m.gather(0, av, mm, kk, ai, al), m.gather(2, bv, kk, nn, bl, bj)
		m.fScratch = grow(m.fScratch, mm*nn)
		exactGemm(acc, af, bf, mm, nn, kk, false, m.fScratch)
	} else if kk > 0 {
		// A as (m × k) and B as (k × n), contiguous. An int16 operand is
		// 256·hi + lo, hi a signed and lo an unsigned byte, so every product
		// of parts is one the float32 path computes exactly; the parts' sums
		// combine in 64 bits before the shift.
		pa, na := m.parts(0, av, mm, kk, ai, al, wideA)
		pb, nb := m.parts(2, bv, kk, nn, bl, bj, wideB)
		m.fScratch = grow(m.fScratch, mm*nn)
		m.acc64 = grow(m.acc64, mm*nn)
		clear(m.acc64)
		for _, x := range pa[:na] {
			for _, y := range pb[:nb] {
				chunk := exactChunk >> (x.unsigned + y.unsigned)
				exactGemm64(m.acc64, x.v, y.v, mm, nn, kk, m.fScratch, chunk, x.weight+y.weight)
			}
		}
		for i, v := range m.acc64 {
			acc[i] = intmath.MatmulShift(v, shift)
		}
	}
	for i := 0; i < mm; i++ {
		for j := 0; j < nn; j++ {
			binary.LittleEndian.PutUint32(dst[4*(i*ds+j):], uint32(acc[i*nn+j]))
		}
	}
}

// part is one byte plane of a matmul operand: its values as float32, the
// left shift of its products (8 for an int16's high byte) and whether it is
// an unsigned low byte (whose products are twice as large, so exact sums
// take half as many).
type part struct {
	v                []float32
	weight, unsigned uint
}

// parts gathers an operand (rows × cols, element (i, j) at i·ri + j·cj)
// into float32 slots slot and slot+1: one part for int8, the high and low
// bytes for int16.
func (m *Machine) parts(slot int, src []byte, rows, cols, ri, cj int, wide bool) (ps [2]part, n int) {
	if !wide {
		return [2]part{{v: m.gather(slot, src, rows, cols, ri, cj)}}, 1
	}
	hi, lo := m.gather16(src, slot, rows, cols, ri, cj)
	return [2]part{{v: hi, weight: 8}, {v: lo, unsigned: 1}}, 2
}

// gather16 splits the int16 matrix (rows × cols) whose element (i, j) is
// at byte 2·(i·ri + j·cj) of src into its high (signed) and low (unsigned)
// bytes, float32 operand slots slot and slot+1, row-major.
func (m *Machine) gather16(src []byte, slot, rows, cols, ri, cj int) (hi, lo []float32) {
	m.fOperand[slot] = grow(m.fOperand[slot], rows*cols)
	m.fOperand[slot+1] = grow(m.fOperand[slot+1], rows*cols)
	hi, lo = m.fOperand[slot], m.fOperand[slot+1]
	for i := 0; i < rows; i++ {
		p := i * ri
		for j := 0; j < cols; j++ {
			v := int16(binary.LittleEndian.Uint16(src[2*p:]))
			hi[i*cols+j], lo[i*cols+j] = float32(v>>8), float32(v&0xff)
			p += cj
		}
	}
	return hi, lo
}

// gather converts the int8 matrix (rows × cols) whose element (i, j) is
// src[i·ri + j·cj] into float32 operand buffer slot, row-major.
func (m *Machine) gather(slot int, src []byte, rows, cols, ri, cj int) []float32 {
	m.fOperand[slot] = grow(m.fOperand[slot], rows*cols)
	out := m.fOperand[slot]
	for i := 0; i < rows; i++ {
		o := out[i*cols : (i+1)*cols]
		p := i * ri
		for j := range o {
			o[j] = float32(int8(src[p]))
			p += cj
		}
	}
	return out
}

func (m *Machine) clsScore(a args) {
	rows := a.d("rows")
	scores := m.scratch64(0, rows)
	if a.u("mode") == 1 { // taylor
		if wideField(a.in, "act") {
			taylorScores[int16](m, a, scores)
		} else {
			taylorScores[int8](m, a, scores)
		}
	} else {
		if rows < 1 {
			failf("no tokens to score")
		}
		m.softmaxParams(a).ClsRow(scores, m.r32(1, m.act, "act", a.u("src"), rows), m.scratch64(1, rows))
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
	s := m.r32(0, m.act, "act", a.u("src"), rows)
	scores := m.scratch64(0, rows)
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
