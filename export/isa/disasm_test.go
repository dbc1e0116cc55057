package isa

import "testing"

func TestString(t *testing.T) {
	cases := []struct {
		in   Instr
		want string
	}{
		{New(OpGemm, WaitLoad, 0x100, 0, 64, DimReg(1), 64, 192, 0x2000, 0x8000, 0),
			"gemm.wl dst=act:0x100 src=act:0x0 src_stride=64 rows=r1 k=64 n=192 wgt=wgt:0x2000 bias=wgt:0x8000 act=i8"},
		// load's dst takes its space from the space field.
		{New(OpLoad, WaitStore|WaitLoad, 1, 0x40, 0x1000, 4096),
			"load.wl.ws space=wgt dst=wgt:0x40 src=dram:0x1000 bytes=4096"},
		{New(OpLoad, 0, 0, 0x1a0, 0, 1),
			"load space=act dst=act:0x1a0 src=dram:0x0 bytes=1"},
		{New(OpMatmul, WaitLoad|WaitCompute|WaitStore, 0, 197, 0x100, 64, 0x4000, 64, DimReg(2), DimImm(64), DimReg(2), 2, 1, 0, 0),
			"matmul.wl.wc.ws dst=act:0x0 dst_stride=197 a=act:0x100 a_stride=64 b=act:0x4000 b_stride=64 m=r2 k=64 n=r2 layout=nt a_type=i16 b_type=i8 shift=0"},
		{New(OpTopk, 0, 0x10, 0x20, DimReg(0), 3, 1, 7, 10),
			"topk dst=act:0x10 src=act:0x20 rows=r0 out_reg=r3 kept_reg=r1 keep_num=7 keep_den=10"},
		{New(OpSync, WaitCompute), "sync.wc"},
		{New(OpFinish, 0), "finish"},
		// Values Encode rejects are shown, marked, rather than panicking.
		{Instr{Op: OpMatmul, Flags: 0x11, Args: []uint64{0, 0, 0, 0, 0, 0, 0x10010, 1, 1, 7, 0, 0, 0}},
			"matmul.wl.?0x10 dst=act:0x0 dst_stride=0 a=act:0x0 a_stride=0 b=act:0x0 b_stride=0 m=?0x10010 k=1 n=1 layout=?0x7 a_type=i8 b_type=i8 shift=0"},
		{Instr{Op: OpLoad, Args: []uint64{3, 0x40, 0, 0}},
			"load space=?0x3 dst=?:0x40 src=dram:0x0 bytes=0"},
		{Instr{Op: OpGemm, Args: []uint64{1, 2}}, "gemm ?0x1 ?0x2"},
		{Instr{Op: 0x2a, Flags: WaitLoad, Args: []uint64{5}}, "op(0x2a).wl ?0x5"},
	}
	for _, c := range cases {
		if got := c.in.String(); got != c.want {
			t.Errorf("String() =\n%s\nwant\n%s", got, c.want)
		}
	}
}

func TestDisassemble(t *testing.T) {
	p := []Instr{
		New(OpSetr, 0, 1, 197),
		New(OpColsum, WaitLoad, 0x800, 0x100, 64, DimReg(1), 64, 0),
	}
	want := "    0  setr reg=r1 value=197\n" +
		"    1  colsum.wl dst=act:0x800 src=act:0x100 stride=64 rows=r1 cols=64 act=i8\n"
	if got := Disassemble(p); got != want {
		t.Errorf("Disassemble =\n%s\nwant\n%s", got, want)
	}
	if got := Disassemble(nil); got != "" {
		t.Errorf("Disassemble(nil) = %q", got)
	}
}
