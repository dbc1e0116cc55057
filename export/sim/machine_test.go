package sim

import (
	"strings"
	"testing"

	"vitc/export/hw"
	"vitc/export/isa"
)

func run(t *testing.T, prog []isa.Instr) error {
	t.Helper()
	h := hw.Default()
	m, err := NewMachine(h, prog, make([]byte, 4096), nil)
	if err != nil {
		t.Fatal(err)
	}
	return m.Run()
}

func TestFaultsAreErrorsNamingTheInstruction(t *testing.T) {
	h := hw.Default()
	for name, prog := range map[string][]isa.Instr{
		"load past DRAM":   {isa.New(isa.OpLoad, 0, 0, 0, 4000, 200), isa.New(isa.OpFinish, 0)},
		"store past DRAM":  {isa.New(isa.OpSetr, 0, 1, 3), isa.New(isa.OpStore, 0, 0, 4090, isa.DimReg(1), 8, 8), isa.New(isa.OpFinish, 0)},
		"gemm past buffer": {isa.New(isa.OpGemm, 0, uint64(h.ActBufferBytes-4), 0, 16, isa.DimImm(2), 16, 16, 0, 0, 0), isa.New(isa.OpFinish, 0)},
		"bad sparse index": {isa.New(isa.OpSpgemm, 0, 0, 0, 16, isa.DimImm(1), 16, 16, 0, 0, 64, 0), isa.New(isa.OpFinish, 0)},
		"topk of nothing":  {isa.New(isa.OpTopk, 0, 0, 64, isa.DimImm(0), 3, 4, 7, 10), isa.New(isa.OpFinish, 0)},
		"fuse zero divide": {isa.New(isa.OpSetr, 0, 1, 10), isa.New(isa.OpSetr, 0, 2, 5), isa.New(isa.OpFuse, 0, 0, 0, 0, 0, isa.DimReg(1), isa.DimReg(2), 4, 0, 0), isa.New(isa.OpFinish, 0)},
		"no finish":        {isa.New(isa.OpSync, 0)},
	} {
		err := run(t, prog)
		if err == nil {
			t.Errorf("%s: ran", name)
			continue
		}
		if name != "no finish" && !strings.Contains(err.Error(), "instruction ") {
			t.Errorf("%s: error %q does not name the instruction", name, err)
		}
	}
}

// A load that does not wait overlaps compute; one that waits does not.
func TestWaitFlagsOrderTheQueues(t *testing.T) {
	h := hw.Default()
	gemm := isa.New(isa.OpGemm, 0, 0, 8192, 64, isa.DimImm(64), 64, 64, 0, 8192, 0)
	load := func(f isa.Flags) isa.Instr { return isa.New(isa.OpLoad, f, 1, 65536, 0, 32768) }
	cycles := func(prog []isa.Instr) int64 {
		m, err := NewMachine(h, prog, make([]byte, 1<<16), []LayerRange{{Name: "all", First: 0, Last: len(prog) - 1}})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Run(); err != nil {
			t.Fatal(err)
		}
		s := m.Stats()
		if s.Layers[0].Cycles != s.Cycles {
			t.Fatalf("one layer of %d cycles in %d", s.Layers[0].Cycles, s.Cycles)
		}
		return s.Cycles
	}
	overlapped := cycles([]isa.Instr{gemm, load(0), isa.New(isa.OpFinish, 0)})
	serial := cycles([]isa.Instr{gemm, load(isa.WaitCompute), isa.New(isa.OpFinish, 0)})
	if !(overlapped < serial) {
		t.Fatalf("overlapped %d cycles, serialised %d", overlapped, serial)
	}
}

// A load and a store issued together share the DRAM channel: the later
// one in program order gets the cycles the earlier leaves, so the pair
// takes both transfers' cycles, not one's, and the layer's roofline (its
// bytes at full bandwidth) stays below its cycles.
func TestLoadsAndStoresShareDRAM(t *testing.T) {
	h := hw.Default()
	const bytes = 3200 // 100 cycles at 32 bytes per cycle
	prog := []isa.Instr{
		isa.New(isa.OpLoad, 0, 0, 0, 0, bytes),
		isa.New(isa.OpStore, 0, 0, 4096, isa.DimImm(1), bytes, bytes),
		isa.New(isa.OpFinish, isa.WaitLoad|isa.WaitStore),
	}
	m, err := NewMachine(h, prog, make([]byte, 8192), []LayerRange{{Name: "all", First: 0, Last: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Run(); err != nil {
		t.Fatal(err)
	}
	s := m.Stats()
	xfer := int64(bytes / h.DRAMBytesPerCycle)
	if want := int64(h.IssueCycles+h.DRAMLatency) + 2*xfer + int64(h.IssueCycles); s.Cycles != want {
		t.Fatalf("load and store of %d bytes each: %d cycles, want %d (the two transfers one after the other)", bytes, s.Cycles, want)
	}
	if l := s.Layers[0]; l.Roofline != 2*xfer || l.Cycles < l.Roofline {
		t.Fatalf("%d cycles against a roofline of %d (want %d)", l.Cycles, l.Roofline, 2*xfer)
	}
}
