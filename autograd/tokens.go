package autograd

// Im2Patches cuts images x (B, C, H, W) into non-overlapping p×p patches,
// returning (B, (H/p)·(W/p), C·p·p) with each patch flattened in (c, ky, kx)
// order, the layout of a flattened conv weight [D, C, p, p]. Images are data,
// so no gradient flows back to them.
func Im2Patches(tp *Tape, x *Tensor, p int) *Tensor {
	b, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	gh, gw := h/p, w/p
	k := c * p * p
	y := tp.New(false, b, gh*gw, k)
	ParallelFor(b, 2, func(lo, hi int) {
		for bi := lo; bi < hi; bi++ {
			for py := 0; py < gh; py++ {
				for px := 0; px < gw; px++ {
					dst := y.Data[((bi*gh+py)*gw+px)*k:]
					o := 0
					for ci := 0; ci < c; ci++ {
						plane := x.Data[(bi*c+ci)*h*w:]
						for ky := 0; ky < p; ky++ {
							copy(dst[o:o+p], plane[(py*p+ky)*w+px*p:])
							o += p
						}
					}
				}
			}
		}
	})
	return y
}

// PrependCLSAddPos builds the token sequence of a ViT: out[b,0] = cls + pos[0]
// and out[b,1+i] = patches[b,i] + pos[1+i]. patches is (B, P, D), cls is
// (1, 1, D), pos is (1, P+1, D); out is (B, P+1, D).
func PrependCLSAddPos(tp *Tape, patches, cls, pos *Tensor) *Tensor {
	b, np, d := patches.Shape[0], patches.Shape[1], patches.Shape[2]
	n := np + 1
	y := tp.Output([]*Tensor{patches, cls, pos}, b, n, d)
	for bi := 0; bi < b; bi++ {
		out := y.Data[bi*n*d : (bi+1)*n*d]
		for j := 0; j < d; j++ {
			out[j] = cls.Data[j] + pos.Data[j]
		}
		in := patches.Data[bi*np*d : (bi+1)*np*d]
		for i, v := range in {
			out[d+i] = v + pos.Data[d+i]
		}
	}
	tp.Record(y, func() {
		dy := y.Grad // (B, N, D)
		prependBackward(tp, dy, patches, cls)
		if pos.needsGrad {
			g := tp.GradOf(pos)
			for bi := 0; bi < b; bi++ {
				for i, v := range dy[bi*n*d : (bi+1)*n*d] {
					g[i] += v
				}
			}
		}
	})
	return y
}

// SelectToken returns token t of every sequence: x (B, N, D) → (B, D).
func SelectToken(tp *Tape, x *Tensor, t int) *Tensor {
	b, n, d := x.Shape[0], x.Shape[1], x.Shape[2]
	y := tp.Output([]*Tensor{x}, b, d)
	for bi := 0; bi < b; bi++ {
		copy(y.Data[bi*d:(bi+1)*d], x.Data[(bi*n+t)*d:])
	}
	tp.Record(y, func() {
		g := tp.GradOf(x)
		for bi := 0; bi < b; bi++ {
			dst := g[(bi*n+t)*d : (bi*n+t+1)*d]
			for j, v := range y.Grad[bi*d : (bi+1)*d] {
				dst[j] += v
			}
		}
	})
	return y
}

// PrependToken puts a learned token (1, 1, D) in front of every sequence of
// x (B, N, D): (B, N+1, D). A distilled DeiT's distillation token enters this
// way, and PrependCLSAddPos then adds the cls token before it.
func PrependToken(tp *Tape, x, tok *Tensor) *Tensor {
	b, n, d := x.Shape[0], x.Shape[1], x.Shape[2]
	y := tp.Output([]*Tensor{x, tok}, b, n+1, d)
	for bi := 0; bi < b; bi++ {
		out := y.Data[bi*(n+1)*d : (bi+1)*(n+1)*d]
		copy(out[:d], tok.Data[:d])
		copy(out[d:], x.Data[bi*n*d:(bi+1)*n*d])
	}
	tp.Record(y, func() { prependBackward(tp, y.Grad, x, tok) })
	return y
}

// prependBackward passes the gradient dy (B, N+1, D) of a sequence that
// prepended tok (1, 1, D) to x (B, N, D) back to both: x gets rows 1..N of
// each image, tok the sum of row 0 over the batch.
func prependBackward(tp *Tape, dy []float32, x, tok *Tensor) {
	b, n, d := x.Shape[0], x.Shape[1], x.Shape[2]
	if x.needsGrad {
		g := tp.GradOf(x)
		for bi := 0; bi < b; bi++ {
			src := dy[bi*(n+1)*d+d : (bi+1)*(n+1)*d]
			dst := g[bi*n*d : (bi+1)*n*d]
			for i, v := range src {
				dst[i] += v
			}
		}
	}
	if tok.needsGrad {
		g := tp.GradOf(tok)
		for bi := 0; bi < b; bi++ {
			for j, v := range dy[bi*(n+1)*d : bi*(n+1)*d+d] {
				g[j] += v
			}
		}
	}
}
