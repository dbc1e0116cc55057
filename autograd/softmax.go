package autograd

import "math"

// SoftmaxRow writes the softmax of x into y (y may alias x), stable for any logits: the max
// is taken over this row itself (tensor.SoftMax seeds it from the whole
// tensor's first element, which overflows for rows far from it).
func SoftmaxRow(y, x []float32) {
	mx := float32(math.Inf(-1))
	for _, v := range x {
		if v > mx {
			mx = v
		}
	}
	var s float32
	for i, v := range x {
		e := exp32(v - mx)
		y[i] = e
		s += e
	}
	inv := 1 / s
	for i := range y {
		y[i] *= inv
	}
}

// SoftmaxRows replaces each of rows rows of p (rows·cols values, row after
// row) by its softmax, with the vectorised kernel of the openblas build where
// there is one (the same formula as SoftmaxRow, another order of summation).
func SoftmaxRows(p []float32, rows, cols int) { softmaxRows(p[:rows*cols], rows, cols) }

// SoftmaxRowBackward writes the gradient of a softmax row's input, given its
// output p and the gradient dp of that output: p ⊙ (dp − Σ p·dp). dst may
// alias dp.
func SoftmaxRowBackward(dst, p, dp []float32) {
	var dot float32
	for j := range p {
		dot += p[j] * dp[j]
	}
	for j := range p {
		dst[j] = p[j] * (dp[j] - dot)
	}
}

// logSumExp of a row, stable for any logits; computed in float64.
func logSumExp(x []float32) float64 {
	mx := math.Inf(-1)
	for _, v := range x {
		mx = math.Max(mx, float64(v))
	}
	if math.IsInf(mx, 0) {
		return mx
	}
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - mx)
	}
	return mx + math.Log(s)
}

// Softmax over the last dimension.
func Softmax(tp *Tape, x *Tensor) *Tensor {
	c := x.Dim(-1)
	rows := x.Len() / c
	y := tp.Output([]*Tensor{x}, x.Shape...)
	for r := 0; r < rows; r++ {
		SoftmaxRow(y.Data[r*c:(r+1)*c], x.Data[r*c:(r+1)*c])
	}
	tp.Record(y, func() {
		g := tp.GradOf(x)
		for r := 0; r < rows; r++ {
			p, dp := y.Data[r*c:(r+1)*c], y.Grad[r*c:(r+1)*c]
			var dot float32
			for i := range p {
				dot += p[i] * dp[i]
			}
			dst := g[r*c : (r+1)*c]
			for i := range p {
				dst[i] += p[i] * (dp[i] - dot)
			}
		}
	}, y)
	return y
}

// CrossEntropy is the mean softmax cross-entropy of logits (B, C) against
// integer labels, with label smoothing eps (targets (1−eps)·onehot + eps/C),
// as torch.nn.CrossEntropyLoss(label_smoothing=eps). It returns a scalar.
func CrossEntropy(tp *Tape, logits *Tensor, labels []int, eps float32) *Tensor {
	b, c := logits.Shape[0], logits.Shape[1]
	loss := tp.Output([]*Tensor{logits}, 1)
	var total float64
	for i := 0; i < b; i++ {
		row := logits.Data[i*c : (i+1)*c]
		lse := logSumExp(row)
		var mean float64
		for _, v := range row {
			mean += float64(v)
		}
		mean /= float64(c)
		// −Σ t_j log p_j with log p_j = z_j − lse
		total += (1-float64(eps))*(lse-float64(row[labels[i]])) + float64(eps)*(lse-mean)
	}
	loss.Data[0] = float32(total / float64(b))
	tp.Record(loss, func() {
		g := tp.GradOf(logits)
		scale := loss.Grad[0] / float32(b)
		for i := 0; i < b; i++ {
			row := logits.Data[i*c : (i+1)*c]
			lse := logSumExp(row)
			dst := g[i*c : (i+1)*c]
			for j, v := range row {
				p := float32(math.Exp(float64(v) - lse))
				t := eps / float32(c)
				if j == labels[i] {
					t += 1 - eps
				}
				dst[j] += scale * (p - t)
			}
		}
	}, logits)
	return loss
}

// SoftCrossEntropy is the mean of −Σ_j t_j·log softmax(x/T)_j over rows, for
// fixed target distributions t (B, C) such as a teacher's softened outputs.
// Knowledge distillation builds its KL term from it.
func SoftCrossEntropy(tp *Tape, logits *Tensor, targets []float32, temperature float32) *Tensor {
	b, c := logits.Shape[0], logits.Shape[1]
	loss := tp.Output([]*Tensor{logits}, 1)
	scaled := make([]float32, c)
	var total float64
	for i := 0; i < b; i++ {
		for j, v := range logits.Data[i*c : (i+1)*c] {
			scaled[j] = v / temperature
		}
		lse := logSumExp(scaled)
		for j, t := range targets[i*c : (i+1)*c] {
			total -= float64(t) * (float64(scaled[j]) - lse)
		}
	}
	loss.Data[0] = float32(total / float64(b))
	tp.Record(loss, func() {
		g := tp.GradOf(logits)
		scale := loss.Grad[0] / float32(b) / temperature
		for i := 0; i < b; i++ {
			for j, v := range logits.Data[i*c : (i+1)*c] {
				scaled[j] = v / temperature
			}
			lse := logSumExp(scaled)
			dst := g[i*c : (i+1)*c]
			for j, t := range targets[i*c : (i+1)*c] {
				p := float32(math.Exp(float64(scaled[j]) - lse))
				dst[j] += scale * (p - t)
			}
		}
	}, logits)
	return loss
}

// WeightedSum returns Σ w_i·x_i for scalar tensors (combining loss terms).
func WeightedSum(tp *Tape, xs []*Tensor, ws []float32) *Tensor {
	y := tp.Output(xs, 1)
	var s float32
	for i, x := range xs {
		s += ws[i] * x.Data[0]
	}
	y.Data[0] = s
	tp.Record(y, func() {
		for i, x := range xs {
			if x.needsGrad {
				tp.GradOf(x)[0] += ws[i] * y.Grad[0]
			}
		}
	})
	return y
}
