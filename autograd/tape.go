package autograd

import (
	"fmt"
	"math"
)

// Tape records the backward closure of every op run through it, then replays
// them in reverse. A Tape built with grad=false records nothing (inference).
//
// Buffers for activations and their gradients come from a pool the tape
// owns (and shares with the tapes made by Shared). A buffer goes back to the
// pool as soon as nothing needs it any more, so the memory of a training
// step is that of the activations the backward pass still needs, not of
// every tensor the step made (docs/memory.md):
//
//   - an op's Record names the tensors whose values its backward closure
//     reads; when the last closure that reads a tensor has run, the
//     tensor's data is released;
//   - a tensor's gradient is released once the closure that produced the
//     tensor (the only one that reads that gradient) has run;
//   - scratch buffers of a backward closure (Temp) are released by the
//     closure itself;
//   - Residual writes a sum into the storage of an operand nobody needs;
//   - Reset releases every buffer of the pass.
//
// A training loop that runs the same graph each step therefore takes the
// same buffers from the pool each step and allocates nothing after the
// first (TestTapeReuseAllocatesOnce).
type Tape struct {
	grad    bool
	entries []entry
	// tensors are those whose buffers this tape releases on Reset: the
	// ones it made, adopted, or gave a pooled gradient.
	tensors []*Tensor
	pool    *pool
}

// entry is one recorded backward closure: out is the tensor whose gradient
// it reads, saved the tensors whose values it reads.
type entry struct {
	fn    func()
	out   *Tensor
	saved []*Tensor
	done  bool
}

// NewTape returns a tape with a pool of its own; grad selects training
// (true) or inference (false).
func NewTape(grad bool) *Tape { return &Tape{grad: grad, pool: &pool{}} }

// Shared returns a new tape that takes its buffers from tp's pool (and
// gives them back to it): evaluation between training steps, or the
// recomputation of a block inside a backward pass, then reuses the memory
// tp's pass released instead of allocating its own. Tapes sharing a pool
// must not run concurrently.
func (tp *Tape) Shared(grad bool) *Tape { return &Tape{grad: grad, pool: tp.pool} }

// Grad reports whether this tape records gradients.
func (tp *Tape) Grad() bool { return tp.grad }

// Reset forgets recorded ops and releases every buffer of the pass:
// tensors from the previous pass must not be used afterwards.
func (tp *Tape) Reset() {
	for i := range tp.entries {
		e := &tp.entries[i]
		if !e.done {
			// Never replayed: undo its claims on tensors that may live on
			// (another tape's, such as a recomputed block's input).
			e.out.pending--
			for _, s := range e.saved {
				s.saves--
			}
		}
		tp.entries[i] = entry{}
	}
	tp.entries = tp.entries[:0]
	tp.releaseFrom(0, nil)
}

// Mark is a position in the tape's list of tensors, for ReleaseSince.
func (tp *Tape) Mark() int { return len(tp.tensors) }

// ReleaseSince releases the buffers of every tensor this tape made since
// mark, except keep's: an inference pass drops a block's intermediates
// once the block's output exists. Nothing recorded may still read them.
func (tp *Tape) ReleaseSince(mark int, keep *Tensor) { tp.releaseFrom(mark, keep) }

func (tp *Tape) releaseFrom(mark int, keep *Tensor) {
	kept := false
	for _, t := range tp.tensors[mark:] {
		if t.home != tp {
			continue // adopted by another tape
		}
		if t == keep {
			kept = true
			continue
		}
		tp.releaseData(t)
		tp.releaseGrad(t)
		t.home = nil
	}
	clear(tp.tensors[mark:])
	tp.tensors = tp.tensors[:mark]
	if kept {
		tp.tensors = append(tp.tensors, keep)
	}
}

// Adopt makes tp responsible for t's buffers (t was made on a tape that
// is about to be reset), and returns t.
func (tp *Tape) Adopt(t *Tensor) *Tensor {
	if t.home != tp {
		t.home = tp
		tp.tensors = append(tp.tensors, t)
	}
	return t
}

// Keep pins t's values until the next Reset: the backward pass does not
// release them even when no closure needs them any more (the logits a
// training loop scores after the backward pass).
func (tp *Tape) Keep(t *Tensor) { t.pinned = true }

// New returns a tensor whose Data comes from the pool. Ops overwrite every
// element, so the buffer is not cleared unless zero is set.
func (tp *Tape) New(zero bool, shape ...int) *Tensor {
	t := &Tensor{Shape: append([]int(nil), shape...), home: tp, owned: true}
	t.Data = tp.pool.take(numel(shape), zero)
	tp.tensors = append(tp.tensors, t)
	return t
}

// Temp returns a scratch tensor for a backward closure, which gives it
// back with Release before it returns.
func (tp *Tape) Temp(zero bool, shape ...int) *Tensor { return tp.New(zero, shape...) }

// Release gives t's buffers back to the pool now; t must not be used
// afterwards. It is for scratch tensors (Temp) and for tensors whose last
// reader the caller knows.
func (tp *Tape) Release(t *Tensor) {
	if t.home == nil {
		return
	}
	t.home.releaseData(t)
	t.home.releaseGrad(t)
}

// Output allocates an op's result; it needs a gradient when any input does
// and the tape is recording.
func (tp *Tape) Output(inputs []*Tensor, shape ...int) *Tensor {
	t := tp.New(false, shape...)
	t.needsGrad = tp.needsGrad(inputs)
	return t
}

func (tp *Tape) needsGrad(inputs []*Tensor) bool {
	if !tp.grad {
		return false
	}
	for _, in := range inputs {
		if in != nil && in.needsGrad {
			return true
		}
	}
	return false
}

// Record appends fn, the backward pass of out, when out needs a gradient.
// saved lists every tape tensor whose values (Data) fn reads: their buffers
// are kept until fn has run, and released after the last such closure.
// fn may read out.Grad; out's gradient is released once fn has run.
func (tp *Tape) Record(out *Tensor, fn func(), saved ...*Tensor) {
	if !tp.grad || !out.needsGrad {
		return
	}
	out.pending++
	for _, s := range saved {
		if s != nil {
			s.saves++
		}
	}
	tp.entries = append(tp.entries, entry{fn: fn, out: out, saved: saved})
}

// GradOf returns t's gradient buffer, taking a zeroed one from the pool on
// first use (parameters own theirs).
func (tp *Tape) GradOf(t *Tensor) []float32 {
	if t.Grad == nil {
		t.Grad = tp.pool.take(len(t.Data), true)
		t.gradOwned = true
		if t.home == nil {
			t.home = tp
			tp.tensors = append(tp.tensors, t)
		}
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
	tp.replay()
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
	tp.replay()
}

// BackwardWith runs every recorded closure in reverse order with grad as
// out's gradient buffer itself (not a copy, and not released here): a
// recomputed segment whose output's gradient another tape accumulated, so
// that the closures see exactly the numbers they would have seen there.
func (tp *Tape) BackwardWith(out *Tensor, grad []float32) {
	if !tp.grad {
		panic("autograd: BackwardWith on an inference tape")
	}
	if len(grad) != out.Len() {
		panic(fmt.Sprintf("autograd: %d gradient values for a tensor of %d", len(grad), out.Len()))
	}
	if out.gradOwned {
		tp.releaseGrad(out)
	}
	out.Grad, out.gradOwned = grad, false
	tp.replay()
}

// replay runs the closures in reverse, releasing what each was the last to
// need.
func (tp *Tape) replay() {
	for i := len(tp.entries) - 1; i >= 0; i-- {
		e := &tp.entries[i]
		if e.done {
			continue
		}
		e.fn()
		e.done = true
		if e.out.pending--; e.out.pending == 0 {
			tp.releaseGrad(e.out)
		}
		for _, s := range e.saved {
			if s == nil {
				continue
			}
			if s.saves--; s.saves == 0 && !s.pinned {
				tp.releaseData(s)
			}
		}
		e.fn, e.saved = nil, nil
	}
}

func (tp *Tape) releaseData(t *Tensor) {
	if t.owned {
		t.owned = false
		tp.pool.release(t.Data)
	}
}

func (tp *Tape) releaseGrad(t *Tensor) {
	if t.gradOwned {
		t.gradOwned = false
		tp.pool.release(t.Grad)
		t.Grad = nil
	}
}

// MemoryStats are a tape's pool: bytes held by live tensors, the most held
// at once since the last ResetPeak, and the bytes the pool obtained from
// the Go heap in all.
type MemoryStats struct {
	LiveBytes, PeakBytes, AllocatedBytes int64
}

// Memory reports the pool's use (shared with Shared tapes).
func (tp *Tape) Memory() MemoryStats {
	p := tp.pool
	return MemoryStats{LiveBytes: 4 * p.live, PeakBytes: 4 * p.peak, AllocatedBytes: 4 * p.allocated}
}

// ResetPeak starts a new peak measurement at the current live bytes.
func (tp *Tape) ResetPeak() { tp.pool.peak = tp.pool.live }

// poisonReleased makes the pool fill every released buffer with NaN, so
// that a closure reading a tensor it did not declare (Record's saved) shows
// as NaN in a test instead of as silently wrong numbers. See PoisonReleased.
var poisonReleased bool

// PoisonReleased turns the NaN filling of released buffers on or off and
// returns the previous setting. It is for tests: it costs a pass over
// every released buffer.
func PoisonReleased(on bool) bool {
	old := poisonReleased
	poisonReleased = on
	return old
}

// pool holds released float32 buffers by capacity. A request takes a free
// buffer of exactly its size, else the smallest free one of up to twice its
// size (a last, partial batch), else a new one. Counts are in float32s.
type pool struct {
	free                   map[int][][]float32
	live, peak, allocated  int64
	takes, allocs, returns int64
}

func (p *pool) take(n int, zero bool) []float32 {
	b := p.reuse(n)
	if b == nil {
		b = make([]float32, n)
		p.allocated += int64(n)
		p.allocs++
	} else if zero {
		clear(b)
	}
	p.takes++
	p.live += int64(cap(b))
	p.peak = max(p.peak, p.live)
	return b
}

func (p *pool) reuse(n int) []float32 {
	c := n
	if len(p.free[c]) == 0 {
		c = 0
		for k, bufs := range p.free {
			if len(bufs) > 0 && k > n && k <= 2*n && (c == 0 || k < c) {
				c = k
			}
		}
		if c == 0 {
			return nil
		}
	}
	bufs := p.free[c]
	b := bufs[len(bufs)-1]
	bufs[len(bufs)-1] = nil
	p.free[c] = bufs[:len(bufs)-1]
	return b[:n]
}

func (p *pool) release(b []float32) {
	if cap(b) == 0 {
		return
	}
	b = b[:cap(b)]
	if poisonReleased {
		nan := float32(math.NaN())
		for i := range b {
			b[i] = nan
		}
	}
	if p.free == nil {
		p.free = map[int][][]float32{}
	}
	p.free[cap(b)] = append(p.free[cap(b)], b)
	p.live -= int64(cap(b))
	p.returns++
}
