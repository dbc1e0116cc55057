package sim

import (
	"encoding/binary"
	"unsafe"

	"vitc/export/intmath"
	"vitc/export/isa"
)

// Activation operands are int8 or, in a program exported with 16-bit
// activations, int16 (the instructions' act, out and *_type fields say
// which). Every vector kernel is written once over intmath.Act and works on
// views of the activation buffer; strides count elements, addresses bytes.

// littleEndian: the int16 views below read the buffer's little-endian
// int16 as the host's own.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// view is the T array of n elements at act address addr itself (no copy).
func view[T intmath.Act](m *Machine, addr, n int) []T {
	es := int(unsafe.Sizeof(T(0)))
	b := span(m.act, "act", addr, es*n)
	if n == 0 {
		return nil
	}
	if es == 2 && (addr%2 != 0 || !littleEndian) {
		failf("int16 operand at act:0x%x: needs an even address (and a little-endian host)", addr)
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), n)
}

// scratchT is activation scratch slot resized to n, reused across
// instructions like scratch8.
func scratchT[T intmath.Act](m *Machine, slot, n int) []T {
	if n == 0 {
		return nil
	}
	// T is int8 or int16 itself, so the scratch slice of that type is a []T.
	if intmath.Wide[T]() {
		m.i16Scratch[slot] = grow(m.i16Scratch[slot], n)
		return unsafe.Slice((*T)(unsafe.Pointer(&m.i16Scratch[slot][0])), n)
	}
	m.i8Scratch[slot] = grow(m.i8Scratch[slot], n)
	return unsafe.Slice((*T)(unsafe.Pointer(&m.i8Scratch[slot][0])), n)
}

// wideField reports whether the enum field name selects int16 (value 1 for
// act, a_type and b_type).
func wideField(in isa.Instr, name string) bool { return in.Arg(name) == 1 }

func colsum[T intmath.Act](m *Machine, a args) {
	dst, src, stride, rows, cols := a.u("dst"), a.u("src"), a.u("stride"), a.d("rows"), a.u("cols")
	es := int(unsafe.Sizeof(T(0)))
	sums := m.acc(cols)
	clear(sums)
	for r := 0; r < rows; r++ {
		for c, v := range view[T](m, src+es*r*stride, cols) {
			sums[c] += int32(v)
		}
	}
	out := span(m.act, "act", dst, 4*cols)
	for c, v := range sums {
		binary.LittleEndian.PutUint32(out[4*c:], uint32(v))
	}
}

func center[T intmath.Act](m *Machine, a args) {
	mult := intmath.Multiplier{M: int32(uint32(a.u("mult"))), Shift: uint8(a.u("shift"))}
	if mult.M < 0 || mult.Shift > intmath.MaxShift {
		failf("invalid multiplier")
	}
	rows, cols := a.d("rows"), a.u("cols")
	if rows < 1 {
		failf("no rows to centre")
	}
	es := int(unsafe.Sizeof(T(0)))
	src, ss, dst, ds := a.u("src"), a.u("src_stride"), a.u("dst"), a.u("dst_stride")
	col, out := scratchT[T](m, 0, rows), scratchT[T](m, 1, rows)
	for c := 0; c < cols; c++ {
		for r := range col {
			col[r] = view[T](m, src+es*(r*ss+c), 1)[0]
		}
		intmath.CenterColumn(out, col, mult)
		for r, v := range out {
			view[T](m, dst+es*(r*ds+c), 1)[0] = v
		}
	}
}

func add[T intmath.Act](m *Machine, a args) {
	p := intmath.Pair{A: int32(uint32(a.u("mult_a"))), B: int32(uint32(a.u("mult_b"))), Shift: uint8(a.u("shift"))}
	if p.Shift > intmath.MaxShift {
		failf("shift %d out of range", p.Shift)
	}
	n := a.d("rows") * a.u("cols")
	x, y := view[T](m, a.u("a"), n), view[T](m, a.u("b"), n)
	out := view[T](m, a.u("dst"), n)
	for i := range x {
		out[i] = intmath.AddAct[T](p, int64(x[i]), int64(y[i]))
	}
}

func layerNorm[T intmath.Act](m *Machine, a args) {
	cols := a.u("cols")
	es := int(unsafe.Sizeof(T(0)))
	p, err := intmath.LayerNormFromWordsBits(m.r32(0, m.wgt, "wgt", a.u("params"), intmath.LayerNormWords(cols)), cols, 8*es)
	if err != nil || cols == 0 {
		failf("bad LayerNorm table: %v", err)
	}
	out := scratchT[T](m, 0, cols)
	for r := 0; r < a.d("rows"); r++ {
		intmath.LayerNormRow(p, out, view[T](m, a.u("src")+es*r*cols, cols))
		copy(view[T](m, a.u("dst")+es*r*cols, cols), out)
	}
}

func gelu[T intmath.Act](m *Machine, a args) {
	p, err := intmath.GELUFromWords(m.r32(0, m.wgt, "wgt", a.u("params"), intmath.GELUWords))
	if err != nil {
		failf("%v", err)
	}
	n := a.d("rows") * a.u("cols")
	in := m.r32(1, m.act, "act", a.u("src"), n)
	out := view[T](m, a.u("dst"), n)
	if !intmath.Wide[T]() {
		for i, v := range in {
			out[i] = T(p.Apply(v))
		}
		return
	}
	for i, v := range in {
		out[i] = intmath.GELUApply[T](p, v)
	}
}

func divrow[T intmath.Act](m *Machine, a args) {
	p, err := intmath.TaylorFromWords(m.r32(0, m.wgt, "wgt", a.u("params"), intmath.TaylorWords))
	if err != nil {
		failf("%v", err)
	}
	es := int(unsafe.Sizeof(T(0)))
	rows, cols := a.d("rows"), a.u("cols")
	sums := m.r32(1, m.act, "act", a.u("sums"), 2*cols)
	out := scratchT[T](m, 0, cols)
	for r := 0; r < rows; r++ {
		qg := m.r32(2, m.act, "act", a.u("num")+4*r*cols, cols)
		q := view[T](m, a.u("q")+es*r*a.u("q_stride"), cols)
		intmath.TaylorRow(p, out, qg, q, sums[:cols], sums[cols:], rows)
		copy(view[T](m, a.u("dst")+es*r*a.u("dst_stride"), cols), out)
	}
}

// taylorScores is clsscore's Taylor mode: token j's score from the cls
// query over the centred keys.
func taylorScores[T intmath.Act](m *Machine, a args, scores []int64) {
	rows, cols := a.d("rows"), a.u("cols")
	es := int(unsafe.Sizeof(T(0)))
	w := m.r32(0, m.wgt, "wgt", a.u("params"), 2)
	qk, err := intmath.MultiplierFromWords(w[0], w[1])
	if err != nil {
		failf("%v", err)
	}
	p := intmath.TaylorParams{QK: qk}
	q0 := view[T](m, a.u("src"), cols)
	sums := m.r32(1, m.act, "act", a.u("sums"), 2*cols)
	den := intmath.TaylorDen(p, rows, q0, sums[cols:])
	for j := range scores {
		scores[j] = intmath.TaylorClsScore(p, q0, view[T](m, a.u("k")+es*j*a.u("k_stride"), cols), den)
	}
}

func fuse[T intmath.Act](m *Machine, a args) {
	rows, k, cols := a.d("rows"), a.d("kept"), a.u("cols")
	src, dst := a.u("src"), a.u("dst")
	if k >= rows-1 { // nothing dropped
		copy(view[T](m, dst, rows*cols), view[T](m, src, rows*cols))
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
	x := view[T](m, src, rows*cols)
	out := scratchT[T](m, 0, outRows*cols)
	copy(out, x[:cols])
	for i, j := range idx[:k] {
		copy(out[(i+1)*cols:(i+2)*cols], x[int(j)*cols:int(j+1)*cols])
	}
	dropped := idx[k:]
	col, ws := scratchT[T](m, 1, len(dropped)), m.scratch64(0, len(dropped))
	for i, j := range dropped {
		ws[i] = int64(s[j])
	}
	for c := 0; c < cols; c++ {
		for i, j := range dropped {
			col[i] = x[int(j)*cols+c]
		}
		out[(k+1)*cols+c] = intmath.Fuse(col, ws, divisor)
	}
	copy(view[T](m, dst, len(out)), out)
}

// gemmTiles is gemm tile by tile in integers: the path for index tables
// that list a position twice.
func gemmTiles[T intmath.Act](m *Machine, acc []int32, c *denseWeights, w []byte, src, ss, rows, k, n int) {
	b := m.hw.Block
	es := int(unsafe.Sizeof(T(0)))
	for r := 0; r < rows; r++ {
		x := view[T](m, src+es*r*ss, k)
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
					s += int32(int8(wv)) * int32(x[kk])
				}
				acc[r*n+o] += s
			}
		}
	}
}
