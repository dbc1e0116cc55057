package autograd

import "fmt"

// Tape records the backward closure of every op run through it, then replays
// them in reverse. A Tape built with grad=false records nothing (inference).
//
// Buffers for activations and their gradients come from an arena that is
// rewound by Reset, so a training loop that runs the same graph each step
// reuses the same memory instead of allocating it again.
type Tape struct {
	grad     bool
	backward []func()
	arena    arena
}

// NewTape returns a tape; grad selects training (true) or inference (false).
func NewTape(grad bool) *Tape { return &Tape{grad: grad} }

// Grad reports whether this tape records gradients.
func (tp *Tape) Grad() bool { return tp.grad }

// Reset forgets recorded ops and rewinds the arena: tensors from the previous
// pass must not be used afterwards.
func (tp *Tape) Reset() {
	for i := range tp.backward {
		tp.backward[i] = nil
	}
	tp.backward = tp.backward[:0]
	tp.arena.rewind()
}

// New returns a tensor whose Data comes from the arena. Ops overwrite every
// element, so the buffer is not cleared unless zero is set.
func (tp *Tape) New(zero bool, shape ...int) *Tensor {
	t := &Tensor{Shape: append([]int(nil), shape...)}
	t.Data = tp.arena.take(numel(shape), zero)
	return t
}

// Output allocates an op's result; it needs a gradient when any input does
// and the tape is recording.
func (tp *Tape) Output(inputs []*Tensor, shape ...int) *Tensor {
	t := tp.New(false, shape...)
	if tp.grad {
		for _, in := range inputs {
			if in != nil && in.needsGrad {
				t.needsGrad = true
				break
			}
		}
	}
	return t
}

// Record appends a backward closure when the output needs a gradient.
func (tp *Tape) Record(out *Tensor, fn func()) {
	if tp.grad && out.needsGrad {
		tp.backward = append(tp.backward, fn)
	}
}

// GradOf returns t's gradient buffer, taking a zeroed one from the arena on
// first use (parameters own theirs).
func (tp *Tape) GradOf(t *Tensor) []float32 {
	if t.Grad == nil {
		t.Grad = tp.arena.take(len(t.Data), true)
	}
	return t.Grad
}

// Backward seeds d(loss)/d(loss) = 1 for a scalar loss and runs every
// recorded closure in reverse order. Parameter gradients accumulate.
func (tp *Tape) Backward(loss *Tensor) {
	if !tp.grad {
		panic("autograd: Backward on an inference tape")
	}
	if loss.Len() != 1 {
		panic("autograd: Backward needs a scalar loss")
	}
	tp.GradOf(loss)[0] = 1
	for i := len(tp.backward) - 1; i >= 0; i-- {
		tp.backward[i]()
	}
}

// BackwardFrom adds grad to out's gradient and runs every recorded closure
// in reverse order: the backward pass of a segment of computation whose
// output feeds something outside this tape (another engine's graph, which
// hands back the gradient it computed for out).
func (tp *Tape) BackwardFrom(out *Tensor, grad []float32) {
	if !tp.grad {
		panic("autograd: BackwardFrom on an inference tape")
	}
	if len(grad) != out.Len() {
		panic(fmt.Sprintf("autograd: %d gradient values for a tensor of %d", len(grad), out.Len()))
	}
	g := tp.GradOf(out)
	for i, v := range grad {
		g[i] += v
	}
	for i := len(tp.backward) - 1; i >= 0; i-- {
		tp.backward[i]()
	}
}

// arena hands out float32 buffers in request order and reuses them after a
// rewind; a graph that repeats the same sequence of sizes allocates nothing
// after its first pass.
type arena struct {
	bufs [][]float32
	next int
}

func (a *arena) take(n int, zero bool) []float32 {
	if a.next < len(a.bufs) && cap(a.bufs[a.next]) >= n {
		b := a.bufs[a.next][:n]
		a.next++
		if zero {
			clear(b)
		}
		return b
	}
	b := make([]float32, n)
	if a.next < len(a.bufs) {
		a.bufs[a.next] = b
	} else {
		a.bufs = append(a.bufs, b)
	}
	a.next++
	return b
}

func (a *arena) rewind() { a.next = 0 }
