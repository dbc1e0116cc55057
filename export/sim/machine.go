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
	fOperand   [3][]float32
	i32Scratch [3][]int32
	i8Scratch  [2][]int8
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
		dst, src, stride, rows, cols := a.u("dst"), a.u("src"), a.u("stride"), a.d("rows"), a.u("cols")
		sums := m.acc(cols)
		clear(sums)
		for r := 0; r < rows; r++ {
			for c, v := range m.i8(m.act, src+r*stride, cols) {
				sums[c] += int32(v)
			}
		}
		out := span(m.act, "act", dst, 4*cols)
		for c, v := range sums {
			binary.LittleEndian.PutUint32(out[4*c:], uint32(v))
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
		col, out := m.scratch8(0, rows), m.scratch8(1, rows)
		for c := 0; c < cols; c++ {
			for r := range col {
				col[r] = m.i8(m.act, src+r*ss+c, 1)[0]
			}
			intmath.CenterColumn(out, col, mult)
			for r, v := range out {
				m.i8(m.act, dst+r*ds+c, 1)[0] = v
			}
		}
	case isa.OpRequant:
		rows, cols := a.d("rows"), a.u("cols")
		table := m.r32(0, m.wgt, "wgt", a.u("params"), 2*cols)
		wide := a.u("out") == 1
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
			if wide {
				out := span(m.act, "act", dst+4*r*ds, 4*cols)
				for c, v := range in {
					binary.LittleEndian.PutUint32(out[4*c:], uint32(intmath.Requant(mults[c], v, true)))
				}
				continue
			}
			out := m.i8(m.act, dst+r*ds, cols)
			for c, v := range in {
				out[c] = int8(intmath.Requant(mults[c], v, false))
			}
		}
	case isa.OpAdd:
		p := intmath.Pair{A: int32(uint32(a.u("mult_a"))), B: int32(uint32(a.u("mult_b"))), Shift: uint8(a.u("shift"))}
		if p.Shift > intmath.MaxShift {
			failf("shift %d out of range", p.Shift)
		}
		n := a.d("rows") * a.u("cols")
		x, y := m.i8(m.act, a.u("a"), n), m.i8(m.act, a.u("b"), n)
		out := m.i8(m.act, a.u("dst"), n)
		for i := range x {
			out[i] = p.Apply(int64(x[i]), int64(y[i]))
		}
	case isa.OpLayerNorm:
		cols := a.u("cols")
		p, err := intmath.LayerNormFromWords(m.r32(0, m.wgt, "wgt", a.u("params"), intmath.LayerNormWords(cols)), cols)
		if err != nil || cols == 0 {
			failf("bad LayerNorm table: %v", err)
		}
		out := m.scratch8(0, cols)
		for r := 0; r < a.d("rows"); r++ {
			p.Row(out, m.i8(m.act, a.u("src")+r*cols, cols))
			copy(m.i8(m.act, a.u("dst")+r*cols, cols), out)
		}
	case isa.OpGelu:
		p, err := intmath.GELUFromWords(m.r32(0, m.wgt, "wgt", a.u("params"), intmath.GELUWords))
		if err != nil {
			failf("%v", err)
		}
		n := a.d("rows") * a.u("cols")
		in := m.r32(1, m.act, "act", a.u("src"), n)
		out := m.i8(m.act, a.u("dst"), n)
		for i, v := range in {
			out[i] = p.Apply(v)
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
		p, err := intmath.TaylorFromWords(m.r32(0, m.wgt, "wgt", a.u("params"), intmath.TaylorWords))
		if err != nil {
			failf("%v", err)
		}
		rows, cols := a.d("rows"), a.u("cols")
		sums := m.r32(1, m.act, "act", a.u("sums"), 2*cols)
		out := m.scratch8(0, cols)
		for r := 0; r < rows; r++ {
			qg := m.r32(2, m.act, "act", a.u("num")+4*r*cols, cols)
			q := m.i8(m.act, a.u("q")+r*a.u("q_stride"), cols)
			p.Row(out, qg, q, sums[:cols], sums[cols:], rows)
			copy(m.i8(m.act, a.u("dst")+r*a.u("dst_stride"), cols), out)
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
	out := span(m.act, "act", dst, 4*rows*n)
	for r := 0; r < rows; r++ {
		span(m.act, "act", src+r*ss, k)
	}
	if rows == 0 || n == 0 {
		return
	}
	acc := m.acc(rows * n)
	decode32(acc[:n], biasBytes)
	for r := 1; r < rows; r++ {
		copy(acc[r*n:(r+1)*n], acc[:n])
	}
	if c.dup {
		m.gemmTiles(acc, c, w, src, ss, rows, k, n)
	} else if k > 0 {
		x := m.rowsF32(0, src, ss, rows, k)
		m.fScratch = grow(m.fScratch, rows*n)
		exactGemm(acc, x, c.matrix(w, b), rows, n, k, false, m.fScratch)
	}
	for i, v := range acc {
		binary.LittleEndian.PutUint32(out[4*i:], uint32(v))
	}
}

// gemmTiles is gemm tile by tile in integers: the path for index tables
// that list a position twice.
func (m *Machine) gemmTiles(acc []int32, c *denseWeights, w []byte, src, ss, rows, k, n int) {
	b := m.hw.Block
	for r := 0; r < rows; r++ {
		x := m.act[src+r*ss : src+r*ss+k]
		for t := range c.tr {
			tile := w[t*b*b : (t+1)*b*b]
			for i := 0; i < b; i++ {
				o := c.tr[t]*b + i
				if o >= n {
					break
				}
				var s int32
				for j, wv := range tile[i*b : (i+1)*b] {
					kk := c.tc[t]*b + j
					if kk >= k {
						break
					}
					s += int32(int8(wv)) * int32(int8(x[kk]))
				}
				acc[r*n+o] += s
			}
		}
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
	wide := a.u("a_type") == 1
	esA := 1
	if wide {
		esA = 2
	}
	av := span(m.act, "act", a.u("a"), esA*(lastA+1))
	bv := span(m.act, "act", a.u("b"), lastB+1)
	dst := span(m.act, "act", a.u("dst"), 4*((mm-1)*ds+nn))
	acc := m.acc(mm * nn)
	clear(acc)
	if kk > 0 {
		// A as (m × k) and B as (k × n), contiguous.
		bf := m.gather(1, bv, kk, nn, bl, bj)
		m.fScratch = grow(m.fScratch, mm*nn)
		if !wide {
			af := m.gather(0, av, mm, kk, ai, al)
			exactGemm(acc, af, bf, mm, nn, kk, false, m.fScratch)
		} else {
			// An int16 A is 256·hi + lo, hi a signed and lo an unsigned
			// byte: two products that the float32 path computes exactly.
			hi, lo := m.gather16(av, mm, kk, ai, al)
			exactGemm(acc, hi, bf, mm, nn, kk, false, m.fScratch)
			for i := range acc[:mm*nn] {
				acc[i] <<= 8
			}
			exactGemmChunk(acc, lo, bf, mm, nn, kk, false, m.fScratch, exactChunkU8)
		}
	}
	for i := 0; i < mm; i++ {
		for j := 0; j < nn; j++ {
			binary.LittleEndian.PutUint32(dst[4*(i*ds+j):], uint32(acc[i*nn+j]))
		}
	}
}

// gather16 splits the int16 matrix (rows × cols) whose element (i, j) is
// at byte 2·(i·ri + j·cj) of src into its high (signed) and low (unsigned)
// bytes, float32 operand slots 0 and 2, row-major.
func (m *Machine) gather16(src []byte, rows, cols, ri, cj int) (hi, lo []float32) {
	m.fOperand[0] = grow(m.fOperand[0], rows*cols)
	m.fOperand[2] = grow(m.fOperand[2], rows*cols)
	hi, lo = m.fOperand[0], m.fOperand[2]
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
	rows, cols := a.d("rows"), a.u("cols")
	scores := m.scratch64(0, rows)
	if a.u("mode") == 1 { // taylor
		w := m.r32(0, m.wgt, "wgt", a.u("params"), 2)
		qk, err := intmath.MultiplierFromWords(w[0], w[1])
		if err != nil {
			failf("%v", err)
		}
		p := intmath.TaylorParams{QK: qk}
		q0 := m.i8(m.act, a.u("src"), cols)
		sums := m.r32(1, m.act, "act", a.u("sums"), 2*cols)
		den := p.Den(rows, q0, sums[cols:])
		for j := range scores {
			scores[j] = p.ClsScore(q0, m.i8(m.act, a.u("k")+j*a.u("k_stride"), cols), den)
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
	idx := m.r32(0, m.act, "act", a.u("index"), rows-1)
	for _, j := range idx {
		if j < 1 || int(j) >= rows {
			failf("token index %d outside 1..%d", j, rows-1)
		}
	}
	s := m.r32(1, m.act, "act", a.u("scores"), rows)
	x := m.i8(m.act, src, rows*cols)
	out := m.scratch8(0, outRows*cols)
	copy(out, x[:cols])
	for i, j := range idx[:k] {
		copy(out[(i+1)*cols:(i+2)*cols], x[int(j)*cols:int(j+1)*cols])
	}
	dropped := idx[k:]
	col, ws := m.scratch8(1, len(dropped)), m.scratch64(0, len(dropped))
	for i, j := range dropped {
		ws[i] = int64(s[j])
	}
	for c := 0; c < cols; c++ {
		for i, j := range dropped {
			col[i] = x[int(j)*cols+c]
		}
		out[(k+1)*cols+c] = intmath.Fuse(col, ws, divisor)
	}
	copy(m.i8(m.act, dst, len(out)), out)
}
