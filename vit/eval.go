package vit

import (
	"math"
	"sort"

	"vitc/autograd"
	"vitc/datasets"
)

// EvalResult summarises a model on one split.
type EvalResult struct {
	N         int       `json:"n"`
	Loss      float64   `json:"loss"`
	Accuracy  float64   `json:"accuracy"`
	Top5      float64   `json:"top5,omitempty"` // only with more than 5 classes
	PerClass  []float64 `json:"per_class"`
	Confusion [][]int   `json:"confusion"` // [true][predicted]
}

// EvalBatch is the batch a model of cfg is evaluated in during training:
// 256 images where one block's activations for 256 images stay within
// 256 MiB (every model at 32 px and below), else the training batch, so
// that evaluation reuses the buffers the training step released instead
// of holding a larger set of its own (DeiT at 224 px).
func EvalBatch(cfg Config, train int) int {
	n, d, h := cfg.Tokens(), cfg.Dim, cfg.Hidden()
	perImage := 4 * (n*(6*d+2*h) + cfg.Heads*n*n) // bytes: LN, qkv, attention, MLP
	if 256*perImage <= 256<<20 {
		return 256
	}
	return min(max(train, 1), 256)
}

// Evaluate scores every image the loader serves (use a loader without
// shuffling or augmentation), epoch 0.
func Evaluate(m *Model, loader *datasets.Loader) EvalResult {
	return EvaluateWith(m, loader, nil)
}

// EvaluateWith is Evaluate with each batch passed through input first
// (nil: as served), e.g. to renormalise it for a model trained with other
// statistics than the loader's.
func EvaluateWith(m *Model, loader *datasets.Loader, input func(*autograd.Tensor) *autograd.Tensor) EvalResult {
	return evaluate(m, loader, input, Pass{})
}

// EvaluatePass is Evaluate with the extensions of ext (block masks, live
// heads, the keep rate of the moment), on an inference tape of its own:
// what a training run's model computes at this point of its schedule.
// The tape shares ext.Tape's buffers when ext has one (reset it first).
func EvaluatePass(m *Model, loader *datasets.Loader, ext Pass) EvalResult {
	return evaluate(m, loader, nil, ext)
}

func evaluate(m *Model, loader *datasets.Loader, input func(*autograd.Tensor) *autograd.Tensor, ext Pass) EvalResult {
	c := m.Classes
	res := EvalResult{Confusion: make([][]int, c), PerClass: make([]float64, c)}
	for i := range res.Confusion {
		res.Confusion[i] = make([]int, c)
	}
	tp := autograd.NewTape(false)
	if ext.Tape != nil {
		tp = ext.Tape.Shared(false)
	}
	defer tp.Reset()
	pass := ext
	pass.Tape = tp
	var lossSum float64
	correct, top5 := 0, 0
	for b := 0; b < loader.NumBatches(); b++ {
		x, y, n := loader.Batch(0, b)
		tp.Reset()
		images := autograd.FromData(x[:n*m.Channels*m.Image*m.Image], n, m.Channels, m.Image, m.Image)
		if input != nil {
			images = input(images)
		}
		logits := m.ForwardPass(&pass, images)
		lossSum += float64(autograd.CrossEntropy(tp, logits, y[:n], 0).Data[0]) * float64(n)
		for i := 0; i < n; i++ {
			row := logits.Data[i*c : (i+1)*c]
			pred := Argmax(row)
			res.Confusion[y[i]][pred]++
			if pred == y[i] {
				correct++
			}
			if rankOf(row, y[i]) < 5 {
				top5++
			}
		}
		res.N += n
	}
	if res.N == 0 {
		return res
	}
	res.Loss = lossSum / float64(res.N)
	res.Accuracy = float64(correct) / float64(res.N)
	if c > 5 {
		res.Top5 = float64(top5) / float64(res.N)
	}
	for k, row := range res.Confusion {
		total := 0
		for _, v := range row {
			total += v
		}
		if total > 0 {
			res.PerClass[k] = float64(row[k]) / float64(total)
		} else {
			res.PerClass[k] = math.NaN()
		}
	}
	return res
}

// Predict returns logits (n, classes) for normalised images (n, C, H, W),
// batch by batch.
func Predict(m *Model, x []float32, n, batch int) []float32 {
	chw := m.Channels * m.Image * m.Image
	out := make([]float32, 0, n*m.Classes)
	tp := autograd.NewTape(false)
	for lo := 0; lo < n; lo += batch {
		hi := min(lo+batch, n)
		tp.Reset()
		logits := m.Forward(tp, autograd.FromData(x[lo*chw:hi*chw], hi-lo, m.Channels, m.Image, m.Image))
		out = append(out, logits.Data...)
	}
	return out
}

// Argmax is the index of the first largest value: the predicted class.
func Argmax(row []float32) int {
	best := 0
	for i, v := range row {
		if v > row[best] {
			best = i
		}
	}
	return best
}

// rankOf is how many logits beat the one of class k (0 = top-1).
func rankOf(row []float32, k int) int {
	r := 0
	for i, v := range row {
		if v > row[k] || (v == row[k] && i < k) {
			r++
		}
	}
	return r
}

// TopClasses returns the indices of the k largest logits, best first.
func TopClasses(row []float32, k int) []int {
	idx := make([]int, len(row))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return row[idx[a]] > row[idx[b]] })
	return idx[:min(k, len(idx))]
}
