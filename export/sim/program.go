package sim

import (
	"encoding/binary"
	"fmt"

	"vitc/export/bundle"
	"vitc/export/hw"
	"vitc/export/isa"
)

// Program is everything a run needs: the hardware, the instructions, the
// initial DRAM image (weights), where the input goes and where the program
// stores its values.
type Program struct {
	HW        hw.Config
	Instrs    []isa.Instr
	Weights   []byte
	DRAMBytes int64
	InputAddr int64
	InputLen  int64
	Layers    []LayerRange
	Slots     []bundle.Slot
	// Batch above 1: the program was compiled with every layer's weights
	// in a place of its own in the weight buffer, to stay resident across
	// this many images; a Runner then loads them on its first run only.
	Batch int
	// Lockstep above 1 (it divides Batch): the images of a batch run in
	// groups of this many, every instruction over the whole group before the
	// next (the activation buffer holds one copy of the program's map per
	// image), so a weight tile streams the token rows of the whole group.
	// The results per image are those of running the images one by one, which
	// is how a Runner executes them; only the cycle model prices the group.
	Lockstep int
	// ActBytes is the size of an activation element, the input's included:
	// 1 (int8; 0 means 1) or 2 (int16).
	ActBytes int
}

// Runner executes a Program on one input after another, reusing its
// machine.
type Runner struct {
	p *Program
	m *Machine
	// resident: an earlier run left the weights in the weight buffer.
	resident bool
}

// NewRunner checks the memory map and builds the machine.
func NewRunner(p *Program) (*Runner, error) {
	if int64(len(p.Weights)) > p.DRAMBytes || p.InputAddr < int64(len(p.Weights)) || p.InputAddr+p.InputLen > p.DRAMBytes || p.DRAMBytes > 1<<32 {
		return nil, fmt.Errorf("memory map: %d bytes of weights, input at 0x%x (%d bytes), %d bytes of DRAM", len(p.Weights), p.InputAddr, p.InputLen, p.DRAMBytes)
	}
	dram := make([]byte, p.DRAMBytes)
	copy(dram, p.Weights)
	m, err := NewMachine(p.HW, p.Instrs, dram, p.Layers)
	if err != nil {
		return nil, err
	}
	if p.Lockstep > 1 && (p.Batch%p.Lockstep != 0 || p.Lockstep > 1<<16) {
		return nil, fmt.Errorf("lockstep group of %d images does not divide the batch of %d", p.Lockstep, p.Batch)
	}
	m.group = max(p.Lockstep, 1)
	m.weightsEnd = len(p.Weights)
	return &Runner{p: p, m: m}, nil
}

// Run executes the program on one quantized input (P, C·p·p) and returns
// the stored values and the cycle model's account. On a program compiled
// for a batch, every run after the first skips the weight loads, as the
// hardware would within a batch: the results must not change, and the
// account is then the steady-state image's (Amortise combines the two).
// The account is a lockstep group's (Stats.Group images) when the program
// has one.
func (r *Runner) Run(input []int16) (*Trace, Stats, error) {
	es := int64(max(r.p.ActBytes, 1))
	if int64(len(input))*es != r.p.InputLen {
		return nil, Stats{}, fmt.Errorf("input has %d values of %d bytes, the program reads %d bytes", len(input), es, r.p.InputLen)
	}
	dram := r.m.DRAM()
	copy(dram, r.p.Weights)
	clear(dram[len(r.p.Weights):])
	for i, v := range input {
		if es == 2 {
			binary.LittleEndian.PutUint16(dram[r.p.InputAddr+2*int64(i):], uint16(v))
			continue
		}
		dram[r.p.InputAddr+int64(i)] = byte(v)
	}
	// Resident: the weights, and what the program loads from the weights
	// section into the activation buffer (pos_embed, the cls row), are
	// still in place from the first image.
	r.m.skipWeights = r.resident
	if err := r.m.Run(); err != nil {
		r.resident = false // a fault may have left a load half done
		return nil, Stats{}, err
	}
	r.resident = r.p.Batch > 1
	t, err := ReadTrace(dram, r.p.Slots)
	return t, r.m.Stats(), err
}

// Cost is instruction pc's cost in the last Run.
func (r *Runner) Cost(pc int) Cost { return r.m.Cost(pc) }
