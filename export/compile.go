package export

import (
	"encoding/binary"
	"fmt"

	"vitc/export/bundle"
	"vitc/export/hw"
	"vitc/export/intmath"
	"vitc/export/isa"
	"vitc/export/sim"
	"vitc/vit"
)

// Registers the program uses: token counts live in registers so that
// top-k can change them at run time.
const (
	regTokens  = 0 // tokens entering block 0 (cls + patches)
	regKept    = 1 // patch tokens the last top-k kept
	regPatches = 2 // patch rows of the input
	regPruned  = 3 // first of the registers top-k writes, one per stage
)

// Compiled is a QModel lowered for one hardware configuration.
type Compiled struct {
	Program []isa.Instr
	Layers  []bundle.Range
	Weights []byte // the "weights" section: DRAM image at address 0
	Tensors []bundle.Tensor
	Memory  bundle.Memory
	Slots   []bundle.Slot // where the program stores each traced value: the golden vectors
	// DenseTiles counts the weight tiles of the unpruned architecture
	// (every head and MLP unit), against which the stored tiles compare.
	DenseTiles int
	// StoredTiles counts the tiles the bundle holds; SparseMatrices the
	// matrices stored block-sparse.
	StoredTiles, SparseMatrices int
	// Batch is the images run per load of the weights (CompileOptions.Batch).
	// Above 1 every layer's blob has its own place in the weight buffer, so
	// the weight loads of the first image leave everything resident and the
	// rest of the batch skips them.
	Batch int
	// Lockstep is the images of a batch that run every instruction together
	// (sim.Program.Lockstep): the largest divisor of Batch whose copies of
	// the activation map fit the activation buffer.
	Lockstep int
	// ActBytes is the size of an activation element: 1, or 2 for 16-bit
	// activations.
	ActBytes int
}

// CompileOptions are the compiler's choices beyond the hardware.
type CompileOptions struct {
	// Batch compiles for throughput: the weights stay resident in the
	// weight buffer across this many images (0 or 1: reload them for every
	// image, double-buffered, which is the latency schedule and needs only
	// the largest two layers to fit).
	Batch int
}

// WeightsFitError is CompileOptions.Batch above 1 for a model whose
// weights, every layer in a place of its own, exceed the weight buffer.
type WeightsFitError struct {
	Batch      int
	Need, Have int // bytes of weight buffer
	HW         string
}

func (e *WeightsFitError) Error() string {
	return fmt.Sprintf("batch %d keeps the weights resident: they need %d bytes of weight buffer; %s has %d", e.Batch, e.Need, e.HW, e.Have)
}

// blob is one layer's weights and constants: loaded to the weight buffer
// with one LOAD before the layer runs.
type blob struct {
	name    string
	data    []byte
	tensors []bundle.Tensor
}

const align = 64

func alignUp(n, a int) int { return (n + a - 1) / a * a }

func (b *blob) put(name, dtype string, shape []int, layout string, scale []float64, note string, data []byte) int {
	off := alignUp(len(b.data), align)
	b.data = append(b.data, make([]byte, off-len(b.data))...)
	b.data = append(b.data, data...)
	b.tensors = append(b.tensors, bundle.Tensor{Name: name, Section: "weights", Offset: int64(off), Bytes: int64(len(data)),
		DType: dtype, Shape: shape, Layout: layout, Scale: scale, Note: note})
	return off
}

func le32(words []int32) []byte {
	out := make([]byte, 0, 4*len(words))
	for _, w := range words {
		out = binary.LittleEndian.AppendUint32(out, uint32(w))
	}
	return out
}

func multTable(ms []intmath.Multiplier) []byte {
	words := make([]int32, 0, 2*len(ms))
	for _, m := range ms {
		w := m.Words()
		words = append(words, w[0], w[1])
	}
	return le32(words)
}

func repeat(m intmath.Multiplier, n int) []intmath.Multiplier {
	out := make([]intmath.Multiplier, n)
	for i := range out {
		out[i] = m
	}
	return out
}

// actMap is the static allocation of the activation buffer.
type actMap struct {
	in, pos       int
	x             [2]int
	mid, fused, h int
	acc           int
	qkv, attn     int
	kh, g32, g8   int
	sums, qg      int
	s32, p16, o32 int
	scores, index int
	f32, gl, f8   int
	lnf, logits   int
	cls           int // batch: the resident cls row, copied into x[0] per image
	size          int
}

type compiler struct {
	hw     hw.Config
	es     int    // bytes per activation element: 1, or 2 for 16-bit activations
	act16  uint64 // the instructions' act field: 0 (i8) or 1 (i16)
	qm     *QModel
	out    Compiled
	act    actMap
	half   int // bytes of one half of the weight buffer
	blobs  int // blobs loaded so far: even ones go to the first half
	next   int // resident: the weight-buffer address of the next blob
	batch  int
	layer  int // index in out.Program where the current layer began
	pstage int // pruning stages emitted
}

// Compile lowers qm for h, reloading the weights for every image.
func Compile(qm *QModel, h hw.Config) (*Compiled, error) {
	return CompileWith(qm, h, CompileOptions{})
}

// CompileWith lowers qm for h with o.
func CompileWith(qm *QModel, h hw.Config, o CompileOptions) (*Compiled, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	if o.Batch < 0 || o.Batch > 1<<20 {
		return nil, fmt.Errorf("batch %d: want 0 to %d images", o.Batch, 1<<20)
	}
	c := &compiler{hw: h, qm: qm, half: h.WgtBufferBytes / 2, batch: max(o.Batch, 1), es: qm.actBytes()}
	if c.es == 2 {
		c.act16 = 1
	}
	if err := c.plan(); err != nil {
		return nil, err
	}
	if err := c.emitAll(); err != nil {
		return nil, err
	}
	c.out.DenseTiles = denseTiles(qm.Config, h.Block)
	c.out.ActBytes = c.es
	c.out.Batch = c.batch
	c.out.Lockstep = 1
	for g := c.batch; g > 1; g-- {
		if c.batch%g == 0 && g*c.act.size <= h.ActBufferBytes {
			c.out.Lockstep = g
			break
		}
	}
	return &c.out, nil
}

// resident reports whether the weights stay in the weight buffer across
// images.
func (c *compiler) resident() bool { return c.batch > 1 }

func (c *compiler) plan() error {
	cfg := c.qm.Config
	n0, d, hd, np := cfg.Tokens(), cfg.Dim, cfg.HeadDim(), cfg.Patches()
	cpp := cfg.Channels * cfg.Patch * cfg.Patch
	a, hidden := 0, 0
	for _, b := range c.qm.Blocks {
		a, hidden = max(a, b.Heads*hd), max(hidden, b.Hidden)
	}
	next := 0
	alloc := func(bytes int) int {
		off := next
		next = alignUp(next+bytes, align)
		return off
	}
	m := &c.act
	e := c.es // activation buffers: int8 or int16 elements
	m.in, m.pos = alloc(e*np*cpp), alloc(e*np*d)
	m.x = [2]int{alloc(e * n0 * d), alloc(e * n0 * d)}
	m.mid, m.fused, m.h = alloc(e*n0*d), alloc(e*n0*d), alloc(e*n0*d)
	m.acc = alloc(4 * n0 * max(3*a, d, hidden, cfg.Classes))
	m.qkv, m.attn = alloc(e*n0*3*a), alloc(e*n0*a)
	m.kh, m.g32, m.g8 = alloc(e*n0*hd), alloc(4*hd*hd), alloc(e*hd*hd)
	m.sums, m.qg = alloc(4*2*hd), alloc(4*n0*hd)
	m.s32, m.p16, m.o32 = alloc(4*n0*n0), alloc(2*n0*n0), alloc(4*n0*hd)
	m.scores, m.index = alloc(4*n0), alloc(4*n0)
	m.f32, m.gl, m.f8 = alloc(4*n0*hidden), alloc(e*n0*hidden), alloc(e*n0*d)
	m.lnf, m.logits = alloc(e*d), alloc(4*cfg.Classes)
	if c.resident() {
		m.cls = alloc(e * d)
	}
	m.size = next
	if next > c.hw.ActBufferBytes {
		return fmt.Errorf("the model needs %d bytes of activation buffer; %s has %d", next, c.hw.Name, c.hw.ActBufferBytes)
	}
	// Every width an instruction carries in a 16-bit field.
	for _, w := range []int{3 * a, n0, hidden, cpp, e * d, 4 * cfg.Classes, 4 * (n0 - 1)} {
		if w > 1<<16-1 {
			return fmt.Errorf("a width of %d does not fit the instructions' 16-bit fields", w)
		}
	}
	return nil
}

func (c *compiler) emit(op isa.Opcode, flags isa.Flags, args ...uint64) {
	c.out.Program = append(c.out.Program, isa.New(op, flags, args...))
}

func (c *compiler) beginLayer() { c.layer = len(c.out.Program) }

func (c *compiler) endLayer(name string) {
	c.out.Layers = append(c.out.Layers, bundle.Range{Name: name, First: c.layer, Last: len(c.out.Program) - 1})
}

// place appends a blob to the weights section and returns its DRAM address
// and its weight-buffer base: the half it will occupy, or with the weights
// resident the place after the previous blob.
func (c *compiler) place(b *blob) (dram, base int, err error) {
	if c.resident() {
		base = c.next
		c.next = alignUp(c.next+len(b.data), align)
	} else if len(b.data) > c.half {
		return 0, 0, fmt.Errorf("layer %s needs %d bytes of weight buffer; %s has %d per half", b.name, len(b.data), c.hw.Name, c.half)
	}
	dram = alignUp(len(c.out.Weights), align)
	c.out.Weights = append(c.out.Weights, make([]byte, dram-len(c.out.Weights))...)
	c.out.Weights = append(c.out.Weights, b.data...)
	for _, t := range b.tensors {
		t.Offset += int64(dram)
		c.out.Tensors = append(c.out.Tensors, t)
	}
	if !c.resident() {
		base = (c.blobs % 2) * c.half
	}
	c.blobs++
	return dram, base, nil
}

func (c *compiler) load(space uint64, dst, src, bytes int, flags isa.Flags) {
	c.emit(isa.OpLoad, flags, space, uint64(dst), uint64(src), uint64(bytes))
}

const (
	spaceAct = 0
	spaceWgt = 1
)

// emitAll builds every layer's blob first, places the blobs and the
// stored values in DRAM, then emits the program; each layer loads the next
// layer's blob while it computes.
func (c *compiler) emitAll() error {
	cfg := c.qm.Config
	layers := []*layerCode{c.embed()}
	for l := range c.qm.Blocks {
		layers = append(layers, c.block(l))
	}
	layers = append(layers, c.head())
	if c.resident() {
		need := 0
		for _, lc := range layers {
			need = alignUp(need+len(lc.blob.data), align)
		}
		if need > c.hw.WgtBufferBytes {
			return &WeightsFitError{Batch: c.batch, Need: need, Have: c.hw.WgtBufferBytes, HW: c.hw.Name}
		}
	}
	dram := make([]int, len(layers))
	base := make([]int, len(layers))
	for i, lc := range layers {
		var err error
		if dram[i], base[i], err = c.place(&lc.blob); err != nil {
			return err
		}
	}
	// DRAM after the weights: the input, then the stored values.
	in := alignUp(len(c.out.Weights), align)
	np, cpp := cfg.Patches(), cfg.Channels*cfg.Patch*cfg.Patch
	c.out.Memory.InputAddr, c.out.Memory.InputBytes = int64(in), int64(c.es*np*cpp)
	next := alignUp(in+c.es*np*cpp, align)
	c.out.Memory.OutputAddr = int64(next)
	for _, lc := range layers {
		for i := range lc.slots {
			lc.slots[i].Addr = int64(next)
			next = alignUp(next+int(lc.slots[i].Bytes()), align)
			c.out.Slots = append(c.out.Slots, lc.slots[i])
		}
	}
	c.out.Memory.OutputBytes = int64(next) - c.out.Memory.OutputAddr
	c.out.Memory.DRAMBytes = int64(next)

	c.emit(isa.OpSetr, 0, regTokens, uint64(cfg.Tokens()))
	c.emit(isa.OpSetr, 0, regPatches, uint64(np))
	c.load(spaceWgt, base[0], dram[0], len(layers[0].blob.data), 0)
	c.load(spaceAct, c.act.in, in, c.es*np*cpp, 0)
	for _, lc := range layers {
		if lc.pre != nil {
			lc.pre()
		}
	}
	for i, lc := range layers {
		code := c.generate(lc, base[i])
		c.beginLayer()
		// The layer's first instruction waits for its weights (and, for the
		// first layer, the input) ...
		code[0].Flags |= isa.WaitLoad
		c.out.Program = append(c.out.Program, code[0])
		if i+1 < len(layers) {
			// ... and the next layer's blob loads behind it, overlapping the
			// rest of this layer. It waits for the computes before it, which
			// have finished with the half it overwrites; a resident blob
			// overwrites nothing, so its load streams right behind the
			// previous one.
			var wait isa.Flags = isa.WaitCompute
			if c.resident() {
				wait = 0
			}
			c.load(spaceWgt, base[i+1], dram[i+1], len(layers[i+1].blob.data), wait)
		}
		c.out.Program = append(c.out.Program, code[1:]...)
		if i == len(layers)-1 {
			c.emit(isa.OpSync, isa.WaitLoad|isa.WaitCompute|isa.WaitStore)
			c.emit(isa.OpFinish, 0)
		}
		c.endLayer(lc.name)
	}
	return nil
}

// layerCode is one layer: its blob, the values it stores, and the function
// that emits its instructions once the blob's buffer base and the slots'
// DRAM addresses are known.
type layerCode struct {
	name  string
	blob  blob
	slots []bundle.Slot
	pre   func() // loads issued before the first layer runs
	gen   func(base int, slots []bundle.Slot)
}

// generate runs lc.gen into a fresh instruction list.
func (c *compiler) generate(lc *layerCode, base int) []isa.Instr {
	saved := c.out.Program
	c.out.Program = nil
	lc.gen(base, lc.slots)
	code := c.out.Program
	c.out.Program = saved
	return code
}

// SimProgram is the compiled program as the simulator runs it.
func (cp *Compiled) SimProgram(h hw.Config) *sim.Program {
	p := &sim.Program{HW: h, Instrs: cp.Program, Weights: cp.Weights, DRAMBytes: cp.Memory.DRAMBytes,
		InputAddr: cp.Memory.InputAddr, InputLen: cp.Memory.InputBytes, Slots: cp.Slots, Batch: cp.Batch,
		Lockstep: cp.Lockstep, ActBytes: cp.ActBytes}
	for _, l := range cp.Layers {
		p.Layers = append(p.Layers, sim.LayerRange{Name: l.Name, First: l.First, Last: l.Last})
	}
	return p
}

// denseTiles is the number of b×b weight tiles of cfg without pruning.
func denseTiles(cfg vit.Config, b int) int {
	t := func(out, in int) int { return ceilDiv(out, b) * ceilDiv(in, b) }
	d, hidden := cfg.Dim, cfg.Hidden()
	n := t(d, cfg.Channels*cfg.Patch*cfg.Patch) + t(cfg.Classes, d)
	return n + cfg.Depth*(t(3*d, d)+t(d, d)+t(hidden, d)+t(d, hidden))
}
