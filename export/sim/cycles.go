package sim

import (
	"cmp"
	"math"
	"slices"

	"vitc/export/hw"
	"vitc/export/isa"
)

// The cycle model. Each queue (load, compute, store) runs its instructions
// in order; an instruction starts when its queue is free and every queue
// its wait flags name has finished all earlier instructions, then takes
// issue_cycles plus its cost:
//
//   - load/store: dram_latency + ⌈bytes / dram_bytes_per_cycle⌉, the
//     transfer's ⌈bytes / dram_bytes_per_cycle⌉ cycles on the one DRAM
//     channel the load and store queues share: it takes the channel's
//     free cycles from the end of the latency on, so a transfer that
//     overlaps another's waits for its cycles;
//   - gemm/spgemm: token rows are split over the compute modules and each
//     module holds every stored tile, spread over its PEs as the exporter
//     assigned them (dense: round-robin); a b×b tile takes (b/array_rows)·
//     (b/array_cols) passes of ⌈rows/modules⌉ cycles (twice that for int16
//     rows), so the cost is max-tiles-per-PE · passes · ⌈rows/modules⌉ +
//     array_rows + array_cols;
//   - matmul: (m, n) output tiles of array_rows × array_cols spread over all
//     PEs, each k cycles, every int16 operand doubling the tiles:
//     ⌈tiles/PEs⌉·k + array_rows + array_cols;
//   - vector instructions: ⌈elements · passes / vector_lanes⌉ with the
//     passes of vectorPasses;
//   - setr, sync, finish: nothing beyond issue.
type cycleModel struct {
	hw     hw.Config
	names  []string
	free   [3]int64 // when each queue finishes its last instruction
	layers []LayerStats
	end    []int64 // latest end time over instructions up to each layer
	costs  []Cost  // each instruction's cost in the last run (by index)
	// dram is the DRAM channel's busy cycles: sorted, disjoint spans.
	dram []interval
	// work places every MAC and DRAM byte in time, for the layers'
	// roofline bounds: a compute instruction's MACs over its cycles, a
	// transfer's bytes over the channel cycles it took.
	work []placed
}

// interval is the cycles [from, to).
type interval struct{ from, to int64 }

// placed is work done evenly over a span.
type placed struct {
	interval
	macs, bytes int64
}

// Cost is one instruction's work: cycles on its unit, MACs done on the PE
// array, and bytes moved to or from DRAM.
type Cost struct {
	Cycles int64
	MACs   int64
	Bytes  int64
}

// LayerStats is the cycle model's account of one layer.
type LayerStats struct {
	Name string `json:"name"`
	// Cycles from the end of the previous layer to the end of this
	// layer's last instruction, so that the layers' cycles sum to the
	// total. The load of the next layer's weights issued inside this layer
	// counts here, and the program's prelude counts in the first layer.
	Cycles      int64   `json:"cycles"`
	MACs        int64   `json:"macs"`
	BytesMoved  int64   `json:"bytes_moved"`
	Utilisation float64 `json:"pe_utilisation"`
	// Roofline is the least time the work done in the layer's cycles
	// needs: max(MACs / peak MACs per cycle, DRAM bytes / DRAM bytes per
	// cycle), rounded up, over the MACs and bytes that fall in those
	// cycles. That is the layer's own MACs and BytesMoved less what ran
	// before its cycles began (a weight load issued here may stream while
	// the previous layer computes) plus what of the next layer's already
	// runs, so Cycles is never below it.
	Roofline int64 `json:"roofline_cycles"`
	// inMACs and inBytes are the work done in the layer's cycles, by
	// whichever layer's instructions.
	inMACs, inBytes int64
}

// Stats is the cycle model's account of one run.
type Stats struct {
	Layers      []LayerStats `json:"layers"`
	Cycles      int64        `json:"cycles"`
	Seconds     float64      `json:"seconds"`
	MACs        int64        `json:"macs"`
	BytesMoved  int64        `json:"bytes_moved"`
	Utilisation float64      `json:"pe_utilisation"`
	// Roofline is the run's bound from its total MACs and bytes (layers
	// may overlap, so it can be below the sum of the layers' bounds).
	Roofline int64 `json:"roofline_cycles"`
	// Batch is set by Amortise: the figures above are then per image over a
	// batch of this many with the weights loaded once, and FirstImageCycles
	// is the first image's latency, weight loads included.
	Batch            int   `json:"batch,omitempty"`
	FirstImageCycles int64 `json:"first_image_cycles,omitempty"`
	// Group is the images a Runner's account covers (a lockstep group; 0
	// or 1: one image). Amortise turns it into figures per image, and
	// then it is the group the batch ran in.
	Group int `json:"lockstep_group,omitempty"`
}

// Amortise is the per-image account of a batch of n images run in lockstep
// groups of first.Group (1 when unset): the first group's run (weights
// loaded) and n/group−1 runs like steady (weights resident). Cycles and DRAM
// bytes are the batch's divided by n, MACs the group's, the total rounded
// up and the rounding carried by the first layer (where the weight loads
// start), so that the layers still sum to the total. FirstImageCycles is
// the first group's latency: the first image of a batch is done when its
// group is.
func Amortise(h hw.Config, first, steady Stats, n int) Stats {
	g := max(first.Group, 1)
	if n <= 1 && g <= 1 || len(first.Layers) != len(steady.Layers) || n%g != 0 {
		return first
	}
	n64, runs := int64(n), int64(n/g)
	per := func(a, b int64) int64 { return (a + (runs-1)*b) / n64 }
	s := Stats{Batch: n, FirstImageCycles: first.Cycles, MACs: first.MACs / int64(g), Group: g}
	s.Cycles = (first.Cycles + (runs-1)*steady.Cycles + n64 - 1) / n64
	s.BytesMoved = per(first.BytesMoved, steady.BytesMoved)
	peak := float64(h.PEs() * h.MACsPerPE())
	var sum int64
	for i, f := range first.Layers {
		l := f
		l.Cycles = per(f.Cycles, steady.Layers[i].Cycles)
		l.BytesMoved = per(f.BytesMoved, steady.Layers[i].BytesMoved)
		l.MACs = f.MACs / int64(g)
		sum += l.Cycles
		s.Layers = append(s.Layers, l)
	}
	if len(s.Layers) > 0 {
		s.Layers[0].Cycles += s.Cycles - sum
	}
	for i := range s.Layers {
		l := &s.Layers[i]
		l.Utilisation = 0
		if l.Cycles > 0 {
			l.Utilisation = float64(l.MACs) / (peak * float64(l.Cycles))
		}
		// Rounded down, as the layers' cycles are: each run's work in a
		// layer fits its cycles, so the batch's does, and the floors keep
		// it so per image.
		f, st := first.Layers[i], steady.Layers[i]
		macs, bytes := f.inMACs+(runs-1)*st.inMACs, f.inBytes+(runs-1)*st.inBytes
		l.inMACs, l.inBytes = macs/n64, bytes/n64
		l.Roofline = max(macs/(n64*int64(h.PEs()*h.MACsPerPE())), bytes/(n64*int64(h.DRAMBytesPerCycle)))
	}
	if s.Cycles > 0 {
		s.Utilisation = float64(s.MACs) / (peak * float64(s.Cycles))
	}
	s.Roofline = roofline(h, s.MACs, s.BytesMoved)
	s.Seconds = h.Seconds(s.Cycles)
	return s
}

// roofline is max(⌈macs/peak⌉, ⌈bytes/bandwidth⌉).
func roofline(h hw.Config, macs, bytes int64) int64 {
	peak := int64(h.PEs() * h.MACsPerPE())
	bw := int64(h.DRAMBytesPerCycle)
	return max((macs+peak-1)/peak, (bytes+bw-1)/bw)
}

// vectorPasses is how many times a vector instruction streams its elements
// through the lanes: LayerNorm sums, squares and scales; softmax finds the
// maximum, exponentiates and scales; divrow forms q·k̄ then divides.
var vectorPasses = map[isa.Opcode]int{
	isa.OpColsum: 1, isa.OpCenter: 2, isa.OpRequant: 1, isa.OpAdd: 1, isa.OpLayerNorm: 3,
	isa.OpGelu: 2, isa.OpSoftmax: 3, isa.OpDivrow: 3, isa.OpClsscore: 2, isa.OpTopk: 1, isa.OpFuse: 1,
}

func newCycleModel(h hw.Config, names []string) *cycleModel {
	c := &cycleModel{hw: h, names: names}
	c.reset()
	return c
}

func (c *cycleModel) reset() {
	c.free = [3]int64{}
	c.dram = c.dram[:0]
	c.work = c.work[:0]
	c.layers = make([]LayerStats, len(c.names))
	c.end = make([]int64, len(c.names))
	for i, n := range c.names {
		c.layers[i].Name = n
	}
}

// account places one instruction on the timeline.
func (c *cycleModel) account(pc, layer int, in isa.Instr, cost Cost) {
	spec, _ := isa.Lookup(in.Op)
	q := spec.Queue
	start := c.free[q]
	for w := isa.QueueLoad; w <= isa.QueueStore; w++ {
		if in.Flags&(1<<w) != 0 {
			start = max(start, c.free[w])
		}
	}
	if pc < len(c.costs) {
		c.costs[pc] = cost
	}
	end := start + int64(c.hw.IssueCycles) + cost.Cycles
	if cost.Bytes > 0 {
		xfer := int64(ceil(int(cost.Bytes), c.hw.DRAMBytesPerCycle))
		end = c.transfer(end-xfer, xfer, cost.Bytes)
	} else if cost.MACs > 0 {
		c.work = append(c.work, placed{interval: interval{start, end}, macs: cost.MACs})
	}
	c.free[q] = end
	c.end[layer] = max(c.end[layer], end)
	l := &c.layers[layer]
	l.MACs += cost.MACs
	l.BytesMoved += cost.Bytes
}

// transfer gives a DRAM transfer of n cycles (bytes bytes) the channel's
// first n free cycles from ready on, and returns when it ends. Taking free
// cycles wherever they are, rather than waiting for the channel to go
// idle, is a controller that interleaves bursts of concurrent transfers;
// transfers placed earlier keep their cycles.
func (c *cycleModel) transfer(ready, n, bytes int64) int64 {
	bw := int64(c.hw.DRAMBytesPerCycle)
	t := ready
	i, _ := slices.BinarySearchFunc(c.dram, t, func(s interval, t int64) int { return cmp.Compare(s.to, t+1) })
	for n > 0 {
		if i < len(c.dram) && c.dram[i].from <= t {
			t = max(t, c.dram[i].to)
			i++
			continue
		}
		next := int64(math.MaxInt64)
		if i < len(c.dram) {
			next = c.dram[i].from
		}
		got := interval{t, min(t+n, next)}
		b := min(bytes, (got.to-got.from)*bw)
		bytes -= b
		c.work = append(c.work, placed{interval: got, bytes: b})
		c.dram = slices.Insert(c.dram, i, got)
		// Merge with the neighbours it touches, to keep the list short.
		if i+1 < len(c.dram) && c.dram[i+1].from == got.to {
			c.dram[i].to = c.dram[i+1].to
			c.dram = slices.Delete(c.dram, i+1, i+2)
		}
		if i > 0 && c.dram[i-1].to == got.from {
			c.dram[i-1].to = c.dram[i].to
			c.dram = slices.Delete(c.dram, i, i+1)
			i--
		}
		n -= got.to - got.from
		t = got.to
	}
	return t
}

// inWindows adds each placed work's share of the cycles [done_{L−1},
// done_L) to layer L's inMACs and inBytes, rounding down, so no window is
// given more than its cycles can do.
func (c *cycleModel) inWindows(layers []LayerStats, done []int64) {
	for _, w := range c.work {
		length := w.to - w.from
		if length <= 0 {
			continue
		}
		// The first window ending after the work starts.
		l, _ := slices.BinarySearch(done, w.from+1)
		for ; l < len(done); l++ {
			lo := int64(0)
			if l > 0 {
				lo = done[l-1]
			}
			if lo >= w.to {
				break
			}
			overlap := min(w.to, done[l]) - max(w.from, lo)
			if overlap <= 0 {
				continue
			}
			layers[l].inMACs += w.macs * overlap / length
			layers[l].inBytes += w.bytes * overlap / length
		}
	}
}

func (c *cycleModel) stats() Stats {
	var s Stats
	var prev int64
	peak := float64(c.hw.PEs() * c.hw.MACsPerPE())
	layers := slices.Clone(c.layers)
	done := make([]int64, len(layers))
	for i := range layers {
		d := prev
		for _, e := range c.end[:i+1] {
			d = max(d, e)
		}
		done[i], prev = d, d
	}
	// Work that ends after the last layer's end cannot exist: the last
	// layer's done is the latest end of all.
	c.inWindows(layers, done)
	prev = 0
	for i := range layers {
		l := layers[i]
		l.Cycles = done[i] - prev
		prev = done[i]
		if l.Cycles > 0 {
			l.Utilisation = float64(l.MACs) / (peak * float64(l.Cycles))
		}
		l.Roofline = roofline(c.hw, l.inMACs, l.inBytes)
		s.Layers = append(s.Layers, l)
		s.Cycles += l.Cycles
		s.MACs += l.MACs
		s.BytesMoved += l.BytesMoved
	}
	if s.Cycles > 0 {
		s.Utilisation = float64(s.MACs) / (peak * float64(s.Cycles))
	}
	s.Roofline = roofline(c.hw, s.MACs, s.BytesMoved)
	s.Seconds = c.hw.Seconds(s.Cycles)
	return s
}

// cost prices an instruction with the registers as they are when it issues,
// for the machine's group of images: a lockstep group of g images streams
// g images' token rows through each resident weight tile, spreads g images'
// attention tiles over the PEs and g images' elements over the vector lanes,
// moves g inputs and outputs, and loads what comes from the weights section
// once (the group shares it).
func (m *Machine) cost(in isa.Instr) Cost {
	h := m.hw
	a := args{m, in}
	g := m.group
	dram := func(bytes int) Cost {
		return Cost{Cycles: int64(h.DRAMLatency) + int64(ceil(bytes, h.DRAMBytesPerCycle)), Bytes: int64(bytes)}
	}
	fill := int64(h.ArrayRows + h.ArrayCols)
	switch in.Op {
	case isa.OpLoad:
		if a.u("src") < m.weightsEnd {
			return dram(a.u("bytes"))
		}
		return dram(g * a.u("bytes"))
	case isa.OpStore:
		return dram(g * a.d("rows") * a.u("row_bytes"))
	case isa.OpGemm, isa.OpSpgemm:
		rows, k, n := g*a.d("rows"), a.u("k"), a.u("n")
		b := h.Block
		pes := h.PERows * h.PECols
		var tiles int
		if in.Op == isa.OpSpgemm {
			for _, t := range m.sparseIndex(m.pc, a.u("index"), k, n).perPE {
				tiles += t
			}
		} else {
			tiles = ceil(n, b) * ceil(k, b)
		}
		// A module's work is every tile times its share of the rows; a PE
		// that has run the rows of its own tiles (the index table's
		// assignment) takes rows of a busier PE's tiles, so the work
		// spreads evenly in whole tile-rows, even when a pruned matrix has
		// fewer tiles than a module has PEs.
		passes := (b / h.ArrayRows) * (b / h.ArrayCols)
		if in.Arg("act") == 1 { // int16 rows: two passes of the int8 array
			passes *= 2
		}
		perModule := ceil(rows, h.ComputeModules)
		busiest := ceil(tiles*perModule, pes)
		return Cost{Cycles: int64(busiest*passes) + fill, MACs: int64(tiles * b * b * rows)}
	case isa.OpMatmul:
		mm, kk, nn := a.d("m"), a.d("k"), a.d("n")
		tiles := g * ceil(mm, h.ArrayRows) * ceil(nn, h.ArrayCols)
		// An int16 operand takes two passes of the int8 array, int16 × int16
		// four.
		if a.u("a_type") == 1 {
			tiles *= 2
		}
		if a.u("b_type") == 1 {
			tiles *= 2
		}
		return Cost{Cycles: int64(ceil(tiles, h.PEs())*kk) + fill, MACs: int64(g * mm * kk * nn)}
	}
	passes, ok := vectorPasses[in.Op]
	if !ok {
		return Cost{}
	}
	var elems int
	switch in.Op {
	case isa.OpSoftmax:
		elems = a.d("rows") * a.d("cols")
	case isa.OpTopk:
		// A sorting network over the scores: n·⌈log2 n⌉ compare-exchanges.
		n := a.d("rows")
		lg := 1
		for 1<<lg < n {
			lg++
		}
		elems = n * lg
	case isa.OpClsscore:
		elems = a.d("rows") * max(a.u("cols"), 1) // softmax mode: row 0 of the scores
	case isa.OpFuse:
		elems = a.d("rows") * a.u("cols")
	default:
		elems = a.d("rows") * a.u("cols")
	}
	return Cost{Cycles: int64(ceil(g*elems*passes, h.VectorLanes))}
}
