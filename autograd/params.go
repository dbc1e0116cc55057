package autograd

import (
	"fmt"
	"math"
)

// Param is a named trainable tensor. Names are timm's state-dict keys.
type Param struct {
	Name string
	*Tensor
	// Decay says AdamW decays the parameter. Add sets it by rank (timm's
	// param groups: matrices decay, biases and norm gains do not); a model
	// clears it for the names it declares (e.g. vit's NoWeightDecay).
	Decay bool
	// LRScale multiplies the learning rate for this parameter (1 after Add):
	// layer-wise learning-rate decay sets it per layer, and 0 freezes the
	// parameter, which AdamW then leaves untouched, decay included.
	LRScale float64
}

// Params is an ordered parameter store keyed by timm names.
type Params struct {
	list  []*Param
	index map[string]*Param
}

// NewParams returns an empty store.
func NewParams() *Params { return &Params{index: map[string]*Param{}} }

// Add registers a zero-initialised parameter, decayed when its rank is at
// least 2.
func (ps *Params) Add(name string, shape ...int) *Param {
	if _, dup := ps.index[name]; dup {
		panic("autograd: duplicate parameter " + name)
	}
	p := &Param{Name: name, Tensor: NewParamTensor(shape...), LRScale: 1}
	p.Decay = len(shape) >= 2
	ps.list = append(ps.list, p)
	ps.index[name] = p
	return p
}

// List returns parameters in registration order.
func (ps *Params) List() []*Param { return ps.list }

// Get returns the parameter with the given name.
func (ps *Params) Get(name string) (*Param, bool) {
	p, ok := ps.index[name]
	return p, ok
}

// Count is the total number of scalar parameters.
func (ps *Params) Count() int {
	n := 0
	for _, p := range ps.list {
		n += p.Len()
	}
	return n
}

// ZeroGrad clears every parameter gradient.
func (ps *Params) ZeroGrad() {
	for _, p := range ps.list {
		clear(p.Grad)
	}
}

// GradNorm is the global L2 norm of all gradients.
func (ps *Params) GradNorm() float64 {
	var s float64
	for _, p := range ps.list {
		for _, g := range p.Grad {
			s += float64(g) * float64(g)
		}
	}
	return math.Sqrt(s)
}

// ClipGradNorm rescales all gradients so their global norm is at most max
// (as torch.nn.utils.clip_grad_norm_) and returns the norm before clipping.
// A non-finite norm is returned unchanged so the caller can stop.
func (ps *Params) ClipGradNorm(max float64) float64 {
	norm := ps.GradNorm()
	if max <= 0 || norm <= max || math.IsNaN(norm) || math.IsInf(norm, 0) {
		return norm
	}
	c := float32(max / (norm + 1e-6))
	for _, p := range ps.list {
		for i := range p.Grad {
			p.Grad[i] *= c
		}
	}
	return norm
}

// CheckShape returns an error naming the parameter when shape differs.
func (p *Param) CheckShape(shape []int) error {
	if len(shape) != len(p.Shape) {
		return fmt.Errorf("tensor %s has shape %v, want %v", p.Name, shape, p.Shape)
	}
	for i := range shape {
		if shape[i] != p.Shape[i] {
			return fmt.Errorf("tensor %s has shape %v, want %v", p.Name, shape, p.Shape)
		}
	}
	return nil
}

// Freeze stops training p: no op computes its gradient any more (so it adds
// nothing to the clipped gradient norm either, as a torch parameter with
// requires_grad=False), and AdamW leaves it as it is.
func (p *Param) Freeze() {
	p.LRScale = 0
	p.needsGrad = false
}
