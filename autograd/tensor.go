package autograd

import "fmt"

// Tensor is a dense, row-major float32 array. Grad is allocated lazily, and
// only for tensors that need a gradient.
type Tensor struct {
	Shape []int
	Data  []float32
	Grad  []float32
	// needsGrad marks parameters and everything computed from them; inputs
	// such as images do not need one, which lets ops skip work.
	needsGrad bool

	// Buffer bookkeeping (tape.go): the tape that releases this tensor's
	// pooled buffers on Reset; whether Data and Grad are pooled buffers
	// still held; how many recorded closures still read Data, and how many
	// still read Grad (the closures this tensor is the output of); whether
	// Keep pinned Data.
	home             *Tape
	owned, gradOwned bool
	saves, pending   int32
	pinned           bool
}

// FromData wraps data (not copied) as a tensor that needs no gradient.
func FromData(data []float32, shape ...int) *Tensor {
	if n := numel(shape); n != len(data) {
		panic(fmt.Sprintf("autograd: %d values for shape %v (%d elements)", len(data), shape, n))
	}
	return &Tensor{Shape: append([]int(nil), shape...), Data: data}
}

// NewParamTensor allocates a zeroed tensor with a gradient buffer.
func NewParamTensor(shape ...int) *Tensor {
	n := numel(shape)
	return &Tensor{Shape: append([]int(nil), shape...), Data: make([]float32, n), Grad: make([]float32, n), needsGrad: true}
}

// Len is the number of elements.
func (t *Tensor) Len() int { return len(t.Data) }

// NeedsGrad reports whether backward will produce a gradient for t.
func (t *Tensor) NeedsGrad() bool { return t.needsGrad }

// SetNeedsGrad marks an input tensor as differentiable (used by gradient
// checks); its Grad buffer is allocated on the next backward pass.
func (t *Tensor) SetNeedsGrad() { t.needsGrad = true }

// Dim returns size i of the shape, counting negative i from the end.
func (t *Tensor) Dim(i int) int {
	if i < 0 {
		i += len(t.Shape)
	}
	return t.Shape[i]
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
