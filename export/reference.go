package export

import (
	"slices"

	"vitc/export/intmath"
	"vitc/export/sim"
)

// Reference runs the integer model on one quantized input (P, C·p·p) layer
// by layer, straight from the QModel: no tiling, no instruction stream, no
// buffers. It is the specification the simulator must match bit for bit.
func (qm *QModel) Reference(input []int8) *sim.Trace { return qm.reference(input, nil) }

// intTap receives a quantized tensor by its activation-scale name, in the
// order and layout the float model's tap gives it.
type intTap func(name string, q []int32)

func (t intTap) i8(name string, xs []int8) {
	if t != nil {
		t(name, widen(xs))
	}
}

func (t intTap) i32(name string, xs []int32) {
	if t != nil {
		t(name, xs)
	}
}

func widen(xs []int8) []int32 {
	out := make([]int32, len(xs))
	for i, v := range xs {
		out[i] = int32(v)
	}
	return out
}

func (qm *QModel) reference(input []int8, tap intTap) *sim.Trace {
	c := qm.Config
	d, np := c.Dim, c.Patches()
	tr := &sim.Trace{}
	tap.i8("input", input)
	emb := narrow(qm.Patch.apply(input, np, false)) // (P, D) int8
	tap.i8("embed", emb)
	tap.i8("pos", qm.Pos)
	n := np + 1
	x := make([]int8, n*d) // (N, D)
	copy(x, qm.Row0)
	for i := range emb {
		x[d+i] = qm.AddEmb.Apply(int64(emb[i]), int64(qm.Pos[i]))
	}
	tap.i8("x0", x)
	tr.Embed = slices.Clone(x)
	for l := range qm.Blocks {
		var kept []int32
		x, n, kept = qm.block(l, x, n, tap)
		if kept != nil {
			tr.Kept = append(tr.Kept, kept)
		}
		tap.i8(blockOut(l), x)
		tr.Blocks = append(tr.Blocks, slices.Clone(x))
	}
	h := make([]int8, d)
	qm.Norm.Row(h, x[:d])
	tap.i8("norm", h)
	tr.Logits = qm.Head.apply(h, 1, true)
	tap.i32("logits", tr.Logits)
	return tr
}

// apply is the quantized linear layer on rows × In int8 inputs, the
// accumulators requantised per channel to int8 (or int32 when wide).
func (l *QLinear) apply(x []int8, rows int, wide bool) []int32 {
	out := make([]int32, rows*l.Out)
	for r := 0; r < rows; r++ {
		xr := x[r*l.In : (r+1)*l.In]
		for o := 0; o < l.Out; o++ {
			acc := int64(l.Bias[o])
			for i, w := range l.W[o*l.In : (o+1)*l.In] {
				acc += int64(w) * int64(xr[i])
			}
			out[r*l.Out+o] = intmath.Requant(l.Req[o], int32(acc), wide)
		}
	}
	return out
}

func narrow(xs []int32) []int8 {
	out := make([]int8, len(xs))
	for i, v := range xs {
		out[i] = int8(v)
	}
	return out
}

// block runs block l on x (n, D); it returns the output, its token count
// and, when the block prunes tokens, the index list.
func (qm *QModel) block(l int, x []int8, n int, tap intTap) ([]int8, int, []int32) {
	b := &qm.Blocks[l]
	c := qm.Config
	pre := blockName(l)
	d, hd := c.Dim, c.HeadDim()
	a := b.Heads * hd
	h := make([]int8, n*d)
	for r := 0; r < n; r++ {
		b.Norm1.Row(h[r*d:(r+1)*d], x[r*d:(r+1)*d])
	}
	tap.i8(pre+".norm1", h)
	qkv := narrow(b.QKV.apply(h, n, false)) // (N, 3A)
	if tap != nil {
		for which, name := range []string{".q", ".k", ".v"} {
			part := make([]int8, n*a) // (N, A)
			for t := 0; t < n; t++ {
				copy(part[t*a:(t+1)*a], qkv[t*3*a+which*a:])
			}
			tap.i8(pre+name, part)
		}
	}
	part := func(which, head int) []int8 { // (N, hd) of q, k or v
		out := make([]int8, n*hd)
		for t := 0; t < n; t++ {
			copy(out[t*hd:(t+1)*hd], qkv[t*3*a+which*a+head*hd:])
		}
		return out
	}
	attn := make([]int8, n*a)  // (N, A)
	scores := make([]int64, n) // cls scores summed over heads, 16 fraction bits
	for hh := 0; hh < b.Heads; hh++ {
		q, k, v := part(0, hh), part(1, hh), part(2, hh)
		var o []int8 // (N, hd)
		if c.Attention == "taylor" {
			o = b.taylorHead(q, k, v, n, hd, scores, pre, tap)
		} else {
			o = b.softmaxHead(q, k, v, n, hd, scores)
		}
		for t := 0; t < n; t++ {
			copy(attn[t*a+hh*hd:], o[t*hd:(t+1)*hd])
		}
	}
	tap.i8(pre+".attn", attn)
	proj := narrow(b.Proj.apply(attn, n, false))
	tap.i8(pre+".proj", proj)
	mid := make([]int8, n*d)
	for i := range mid {
		mid[i] = b.AddAttn.Apply(int64(x[i]), int64(proj[i]))
	}
	tap.i8(pre+".mid", mid)
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
	h = make([]int8, n*d)
	for r := 0; r < n; r++ {
		b.Norm2.Row(h[r*d:(r+1)*d], mid[r*d:(r+1)*d])
	}
	tap.i8(pre+".norm2", h)
	f1 := b.FC1.apply(h, n, true) // (N, hidden) int32
	tap.i32(pre+".fc1", f1)
	g := make([]int8, len(f1))
	for i, v := range f1 {
		g[i] = b.GELU.Apply(v)
	}
	tap.i8(pre+".gelu", g)
	f2 := narrow(b.FC2.apply(g, n, false))
	tap.i8(pre+".fc2", f2)
	out := make([]int8, n*d)
	for i := range out {
		out[i] = b.AddMLP.Apply(int64(mid[i]), int64(f2[i]))
	}
	return out, n, kept
}

// fuseTokens keeps cls, the k kept tokens and one fused token.
func fuseTokens(x []int8, idx []int, k int, scores []int64, d int, divisor int64) []int8 {
	y := make([]int8, (k+2)*d)
	copy(y, x[:d])
	for i, j := range idx[:k] {
		copy(y[(i+1)*d:(i+2)*d], x[j*d:(j+1)*d])
	}
	dropped := idx[k:]
	col, ws := make([]int8, len(dropped)), make([]int64, len(dropped))
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
// row-major: A is int8, or int16 for the softmax probabilities.
func matmul[A int8 | int16](a []A, b []int8, m, k, p int) []int32 {
	out := make([]int32, m*p)
	for i := 0; i < m; i++ {
		for j := 0; j < p; j++ {
			var s int64
			for l := 0; l < k; l++ {
				s += int64(a[i*k+l]) * int64(b[l*p+j])
			}
			out[i*p+j] = int32(s)
		}
	}
	return out
}

func transpose(x []int8, rows, cols int) []int8 {
	out := make([]int8, len(x))
	for r := 0; r < rows; r++ {
		for c := 0; c < cols; c++ {
			out[c*rows+r] = x[r*cols+c]
		}
	}
	return out
}

func colSums(x []int8, rows, cols int) []int32 {
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
func (b *QBlock) taylorHead(q, k, v []int8, n, hd int, scores []int64, pre string, tap intTap) []int8 {
	kt := transpose(k, n, hd) // (hd, N): one centred column per row
	kht := make([]int8, n*hd)
	for c := 0; c < hd; c++ {
		intmath.CenterColumn(kht[c*n:(c+1)*n], kt[c*n:(c+1)*n], b.Center)
	}
	kh := transpose(kht, hd, n) // (N, hd)
	tap.i8(pre+".khat", kh)
	g32 := matmul(kht, v, hd, n, hd)
	g := make([]int8, len(g32)) // (hd, hd)
	for i, v := range g32 {
		g[i] = int8(intmath.Requant(b.GReq, v, false))
	}
	tap.i8(pre+".g", g)
	vbar, kbar := colSums(v, n, hd), colSums(kh, n, hd)
	qg := matmul(q, g, n, hd, hd) // (N, hd)
	out := make([]int8, n*hd)
	for t := 0; t < n; t++ {
		b.Taylor.Row(out[t*hd:(t+1)*hd], qg[t*hd:(t+1)*hd], q[t*hd:(t+1)*hd], vbar, kbar, n)
	}
	if b.Prune {
		den0 := b.Taylor.Den(n, q[:hd], kbar)
		for j := 0; j < n; j++ {
			scores[j] = addScore(scores[j], b.Taylor.ClsScore(q[:hd], kh[j*hd:(j+1)*hd], den0))
		}
	}
	return out
}

// addScore accumulates a head's cls score the way the int32 score buffer
// does: saturating.
func addScore(sum, s int64) int64 { return int64(intmath.Sat32(sum + s)) }

// softmaxHead is one head of integer softmax attention.
func (b *QBlock) softmaxHead(q, k, v []int8, n, hd int, scores []int64) []int8 {
	s := matmul(q, transpose(k, n, hd), n, hd, n) // (N, N)
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
	o32 := matmul(p, v, n, n, hd)
	out := make([]int8, len(o32))
	for i, v := range o32 {
		out[i] = int8(intmath.Requant(b.PVReq, v, false))
	}
	return out
}
