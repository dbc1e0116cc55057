package export

import (
	"vitc/export/intmath"
	"vitc/export/sim"
)

// Reference runs the integer model on one quantized input (P, C·p·p) layer
// by layer, straight from the QModel: no tiling, no instruction stream, no
// buffers. It is the specification the simulator must match bit for bit.
// The input's values are int8 or int16 as the model's ActBits says.
func (qm *QModel) Reference(input []int16) *sim.Trace { return qm.reference(input, nil) }

// intTap receives a quantized tensor by its activation-scale name, in the
// order and layout the float model's tap gives it.
type intTap func(name string, q []int32)

func tapAct[T intmath.Act](t intTap, name string, xs []T) {
	if t != nil {
		t(name, widen(xs))
	}
}

func (t intTap) i32(name string, xs []int32) {
	if t != nil {
		t(name, xs)
	}
}

func widen[T intmath.Act](xs []T) []int32 {
	out := make([]int32, len(xs))
	for i, v := range xs {
		out[i] = int32(v)
	}
	return out
}

func to16[T intmath.Act](xs []T) []int16 {
	out := make([]int16, len(xs))
	for i, v := range xs {
		out[i] = int16(v)
	}
	return out
}

func fromI16[T intmath.Act](xs []int16) []T {
	out := make([]T, len(xs))
	for i, v := range xs {
		out[i] = T(v)
	}
	return out
}

func (qm *QModel) reference(input []int16, tap intTap) *sim.Trace {
	if qm.bits() == 16 {
		return refRun[int16](qm, input, tap)
	}
	return refRun[int8](qm, input, tap)
}

// refRun is the reference over the activation type T.
func refRun[T intmath.Act](qm *QModel, in16 []int16, tap intTap) *sim.Trace {
	input := fromI16[T](in16)
	c := qm.Config
	d, np := c.Dim, c.Patches()
	tr := &sim.Trace{}
	tapAct(tap, "input", input)
	emb := narrow[T](applyLinear(&qm.Patch, input, np, outOf[T]())) // (P, D)
	tapAct(tap, "embed", emb)
	pos := fromI16[T](qm.Pos)
	tapAct(tap, "pos", pos)
	n := np + 1
	x := make([]T, n*d) // (N, D)
	copy(x, fromI16[T](qm.Row0))
	for i := range emb {
		x[d+i] = intmath.AddAct[T](qm.AddEmb, int64(emb[i]), int64(pos[i]))
	}
	tapAct(tap, "x0", x)
	tr.Embed = to16(x)
	for l := range qm.Blocks {
		var kept []int32
		x, n, kept = refBlock(qm, l, x, n, tap)
		if kept != nil {
			tr.Kept = append(tr.Kept, kept)
		}
		tapAct(tap, blockOut(l), x)
		tr.Blocks = append(tr.Blocks, to16(x))
	}
	h := make([]T, d)
	intmath.LayerNormRow(qm.Norm, h, x[:d])
	tapAct(tap, "norm", h)
	tr.Logits = applyLinear(&qm.Head, h, 1, intmath.OutI32)
	tap.i32("logits", tr.Logits)
	return tr
}

// outOf is the requant output type that writes T.
func outOf[T intmath.Act]() int {
	if intmath.Wide[T]() {
		return intmath.OutI16
	}
	return intmath.OutI8
}

// applyLinear is the quantized linear layer on rows × In inputs, the
// accumulators (wrapping int32) requantised per channel to out.
func applyLinear[T intmath.Act](l *QLinear, x []T, rows int, out int) []int32 {
	res := make([]int32, rows*l.Out)
	for r := 0; r < rows; r++ {
		xr := x[r*l.In : (r+1)*l.In]
		for o := 0; o < l.Out; o++ {
			acc := int64(l.Bias[o])
			for i, w := range l.W[o*l.In : (o+1)*l.In] {
				acc += int64(w) * int64(xr[i])
			}
			res[r*l.Out+o] = intmath.RequantTo(l.Req[o], int32(acc), out)
		}
	}
	return res
}

func narrow[T intmath.Act](xs []int32) []T {
	out := make([]T, len(xs))
	for i, v := range xs {
		out[i] = T(v)
	}
	return out
}

// block runs block l on x (n, D); it returns the output, its token count
// and, when the block prunes tokens, the index list.
func refBlock[T intmath.Act](qm *QModel, l int, x []T, n int, tap intTap) ([]T, int, []int32) {
	b := &qm.Blocks[l]
	c := qm.Config
	pre := blockName(l)
	d, hd := c.Dim, c.HeadDim()
	a := b.Heads * hd
	ot := outOf[T]()
	h := make([]T, n*d)
	for r := 0; r < n; r++ {
		intmath.LayerNormRow(b.Norm1, h[r*d:(r+1)*d], x[r*d:(r+1)*d])
	}
	tapAct(tap, pre+".norm1", h)
	qkv := narrow[T](applyLinear(&b.QKV, h, n, ot)) // (N, 3A)
	if tap != nil {
		for which, name := range []string{".q", ".k", ".v"} {
			part := make([]T, n*a) // (N, A)
			for t := 0; t < n; t++ {
				copy(part[t*a:(t+1)*a], qkv[t*3*a+which*a:])
			}
			tapAct(tap, pre+name, part)
		}
	}
	part := func(which, head int) []T { // (N, hd) of q, k or v
		out := make([]T, n*hd)
		for t := 0; t < n; t++ {
			copy(out[t*hd:(t+1)*hd], qkv[t*3*a+which*a+head*hd:])
		}
		return out
	}
	attn := make([]T, n*a)     // (N, A)
	scores := make([]int64, n) // cls scores summed over heads, 16 fraction bits
	for hh := 0; hh < b.Heads; hh++ {
		q, k, v := part(0, hh), part(1, hh), part(2, hh)
		var o []T // (N, hd)
		if c.Attention == "taylor" {
			o = taylorHead(b, q, k, v, n, hd, scores, pre, tap)
		} else {
			o = softmaxHead(b, q, k, v, n, hd, scores)
		}
		for t := 0; t < n; t++ {
			copy(attn[t*a+hh*hd:], o[t*hd:(t+1)*hd])
		}
	}
	tapAct(tap, pre+".attn", attn)
	proj := narrow[T](applyLinear(&b.Proj, attn, n, ot))
	tapAct(tap, pre+".proj", proj)
	mid := make([]T, n*d)
	for i := range mid {
		mid[i] = intmath.AddAct[T](b.AddAttn, int64(x[i]), int64(proj[i]))
	}
	tapAct(tap, pre+".mid", mid)
	var kept []int32
	if b.Prune {
		k := intmath.KeepCount(n, b.KeepNum, b.KeepDen)
		idx := intmath.TopK(scores, k)
		kept = make([]int32, len(idx))
		for i, j := range idx {
			kept[i] = int32(j)
		}
		if k < n-1 {
			mid = fuseTokens(mid, idx, k, scores, d, int64(b.Heads)*intmath.ScoreOne)
			n = k + 2
		}
	}
	h = make([]T, n*d)
	for r := 0; r < n; r++ {
		intmath.LayerNormRow(b.Norm2, h[r*d:(r+1)*d], mid[r*d:(r+1)*d])
	}
	tapAct(tap, pre+".norm2", h)
	f1 := applyLinear(&b.FC1, h, n, intmath.OutI32) // (N, hidden) int32
	tap.i32(pre+".fc1", f1)
	g := make([]T, len(f1))
	for i, v := range f1 {
		g[i] = intmath.GELUApply[T](b.GELU, v)
	}
	tapAct(tap, pre+".gelu", g)
	f2 := narrow[T](applyLinear(&b.FC2, g, n, ot))
	tapAct(tap, pre+".fc2", f2)
	out := make([]T, n*d)
	for i := range out {
		out[i] = intmath.AddAct[T](b.AddMLP, int64(mid[i]), int64(f2[i]))
	}
	return out, n, kept
}

// fuseTokens keeps cls, the k kept tokens and one fused token.
func fuseTokens[T intmath.Act](x []T, idx []int, k int, scores []int64, d int, divisor int64) []T {
	y := make([]T, (k+2)*d)
	copy(y, x[:d])
	for i, j := range idx[:k] {
		copy(y[(i+1)*d:(i+2)*d], x[j*d:(j+1)*d])
	}
	dropped := idx[k:]
	col, ws := make([]T, len(dropped)), make([]int64, len(dropped))
	for i, j := range dropped {
		ws[i] = scores[j]
	}
	for ch := 0; ch < d; ch++ {
		for i, j := range dropped {
			col[i] = x[j*d+ch]
		}
		y[(k+1)*d+ch] = intmath.Fuse(col, ws, divisor)
	}
	return y
}

// matmul is C (m, p) = A (m, k) · B (k, p) over integers, A and B
// row-major, each int8 or int16, the sum shifted right by shift (rounded)
// and wrapped to int32.
func matmul[A, B intmath.Act](a []A, b []B, m, k, p int, shift uint) []int32 {
	out := make([]int32, m*p)
	for i := 0; i < m; i++ {
		for j := 0; j < p; j++ {
			var s int64
			for l := 0; l < k; l++ {
				s += int64(a[i*k+l]) * int64(b[l*p+j])
			}
			out[i*p+j] = intmath.MatmulShift(s, shift)
		}
	}
	return out
}

func transpose[T intmath.Act](x []T, rows, cols int) []T {
	out := make([]T, len(x))
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			out[c*rows+r] = x[r*cols+c]
		}
	}
	return out
}

func colSums[T intmath.Act](x []T, rows, cols int) []int32 {
	out := make([]int32, cols)
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			out[c] += int32(x[r*cols+c])
		}
	}
	return out
}

// taylorHead is one head of integer Taylor attention; it adds the head's
// cls scores to scores.
func taylorHead[T intmath.Act](b *QBlock, q, k, v []T, n, hd int, scores []int64, pre string, tap intTap) []T {
	sh := actMatmulShift[T]()
	kt := transpose(k, n, hd) // (hd, N): one centred column per row
	kht := make([]T, n*hd)
	for c := 0; c < hd; c++ {
		intmath.CenterColumn(kht[c*n:(c+1)*n], kt[c*n:(c+1)*n], b.Center)
	}
	kh := transpose(kht, hd, n) // (N, hd)
	tapAct(tap, pre+".khat", kh)
	g32 := matmul(kht, v, hd, n, hd, sh)
	g := make([]T, len(g32)) // (hd, hd)
	for i, v := range g32 {
		g[i] = T(intmath.RequantTo(b.GReq, v, outOf[T]()))
	}
	tapAct(tap, pre+".g", g)
	vbar, kbar := colSums(v, n, hd), colSums(kh, n, hd)
	qg := matmul(q, g, n, hd, hd, sh) // (N, hd)
	out := make([]T, n*hd)
	for t := 0; t < n; t++ {
		intmath.TaylorRow(b.Taylor, out[t*hd:(t+1)*hd], qg[t*hd:(t+1)*hd], q[t*hd:(t+1)*hd], vbar, kbar, n)
	}
	if b.Prune {
		den0 := intmath.TaylorDen(b.Taylor, n, q[:hd], kbar)
		for j := 0; j < n; j++ {
			scores[j] = addScore(scores[j], intmath.TaylorClsScore(b.Taylor, q[:hd], kh[j*hd:(j+1)*hd], den0))
		}
	}
	return out
}

// addScore accumulates a head's cls score the way the int32 score buffer
// does: saturating.
func addScore(sum, s int64) int64 { return int64(intmath.Sat32(sum + s)) }

// softmaxHead is one head of integer softmax attention.
func softmaxHead[T intmath.Act](b *QBlock, q, k, v []T, n, hd int, scores []int64) []T {
	s := matmul(q, transpose(k, n, hd), n, hd, n, actMatmulShift[T]()) // (N, N)
	p := make([]int16, n*n)
	scratch := make([]int64, n)
	for t := 0; t < n; t++ {
		b.Softmax.Row16(p[t*n:(t+1)*n], s[t*n:(t+1)*n], scratch)
	}
	if b.Prune {
		cls := make([]int64, n)
		b.Softmax.ClsRow(cls, s[:n], scratch)
		for j := range cls {
			scores[j] = addScore(scores[j], cls[j])
		}
	}
	o32 := matmul(p, v, n, n, hd, 0) // Σp ≈ 32767: P·V stays in int32 unshifted
	out := make([]T, len(o32))
	for i, v := range o32 {
		out[i] = T(intmath.RequantTo(b.PVReq, v, outOf[T]()))
	}
	return out
}

// actMatmulShift is the shift of an activation × activation matmul over T
// (wideMatmulShift for int16, else 0).
func actMatmulShift[T intmath.Act]() uint {
	if intmath.Wide[T]() {
		return wideMatmulShift
	}
	return 0
}
