    0  setr reg=r0 value=17
    1  setr reg=r2 value=16
    2  load space=wgt dst=wgt:0x0 src=dram:0x0 bytes=1440
    3  load space=act dst=act:0x0 src=dram:0x3f80 bytes=64
    4  load space=act dst=act:0x40 src=dram:0x380 bytes=512
    5  load space=act dst=act:0x240 src=dram:0x580 bytes=32
    6  gemm.wl dst=act:0xd80 src=act:0x0 src_stride=4 rows=r2 k=4 n=32 wgt=wgt:0x0 bias=wgt:0x200
    7  load.wc space=wgt dst=wgt:0x100000 src=dram:0x5c0 bytes=9024
    8  requant dst=act:0x5c80 dst_stride=32 src=act:0xd80 src_stride=32 rows=r2 cols=32 params=wgt:0x280 out=i8
    9  add dst=act:0x260 a=act:0x5c80 b=act:0x40 rows=r2 cols=32 mult_a=1761786896 mult_b=1018007068 shift=31
   10  store.wc src=act:0x240 dst=dram:0x3fc0 rows=r0 row_bytes=32 stride=32
   11  layernorm.wl dst=act:0xb40 src=act:0x240 rows=r0 cols=32 params=wgt:0x100000
   12  load.wc space=wgt dst=wgt:0x0 src=dram:0x2900 bytes=4720
   13  spgemm dst=act:0xd80 src=act:0xb40 src_stride=32 rows=r0 k=32 n=96 wgt=wgt:0x100140 bias=wgt:0x100740 index=wgt:0x100bc0
   14  requant dst=act:0x2700 dst_stride=96 src=act:0xd80 src_stride=96 rows=r0 cols=96 params=wgt:0x1008c0 out=i8
   15  center dst=act:0x2fc0 dst_stride=16 src=act:0x2720 src_stride=96 rows=r0 cols=16 mult=1080240374 shift=30
   16  matmul dst=act:0x3100 dst_stride=16 a=act:0x2fc0 a_stride=16 b=act:0x2740 b_stride=96 m=16 k=r0 n=16 layout=tn a_type=i8
   17  requant dst=act:0x3500 dst_stride=16 src=act:0x3100 src_stride=16 rows=16 cols=16 params=wgt:0x100c40 out=i8
   18  colsum dst=act:0x3600 src=act:0x2740 stride=96 rows=r0 cols=16
   19  colsum dst=act:0x3640 src=act:0x2fc0 stride=16 rows=r0 cols=16
   20  matmul dst=act:0x3680 dst_stride=16 a=act:0x2700 a_stride=96 b=act:0x3500 b_stride=16 m=r0 k=16 n=16 layout=nn a_type=i8
   21  divrow dst=act:0x2d80 dst_stride=32 num=act:0x3680 q=act:0x2700 q_stride=96 sums=act:0x3600 rows=r0 cols=16 params=wgt:0x100cc0
   22  clsscore dst=act:0x4640 mode=taylor src=act:0x2700 k=act:0x2fc0 k_stride=16 sums=act:0x3600 rows=r0 cols=16 params=wgt:0x100d00 accumulate=set
   23  center dst=act:0x2fc0 dst_stride=16 src=act:0x2730 src_stride=96 rows=r0 cols=16 mult=1080240374 shift=30
   24  matmul dst=act:0x3100 dst_stride=16 a=act:0x2fc0 a_stride=16 b=act:0x2750 b_stride=96 m=16 k=r0 n=16 layout=tn a_type=i8
   25  requant dst=act:0x3500 dst_stride=16 src=act:0x3100 src_stride=16 rows=16 cols=16 params=wgt:0x100c40 out=i8
   26  colsum dst=act:0x3600 src=act:0x2750 stride=96 rows=r0 cols=16
   27  colsum dst=act:0x3640 src=act:0x2fc0 stride=16 rows=r0 cols=16
   28  matmul dst=act:0x3680 dst_stride=16 a=act:0x2710 a_stride=96 b=act:0x3500 b_stride=16 m=r0 k=16 n=16 layout=nn a_type=i8
   29  divrow dst=act:0x2d90 dst_stride=32 num=act:0x3680 q=act:0x2710 q_stride=96 sums=act:0x3600 rows=r0 cols=16 params=wgt:0x100cc0
   30  clsscore dst=act:0x4640 mode=taylor src=act:0x2710 k=act:0x2fc0 k_stride=16 sums=act:0x3600 rows=r0 cols=16 params=wgt:0x100d00 accumulate=add
   31  spgemm dst=act:0xd80 src=act:0x2d80 src_stride=32 rows=r0 k=32 n=32 wgt=wgt:0x100d40 bias=wgt:0x100f40 index=wgt:0x1010c0
   32  requant dst=act:0x5c80 dst_stride=32 src=act:0xd80 src_stride=32 rows=r0 cols=32 params=wgt:0x100fc0 out=i8
   33  add dst=act:0x6c0 a=act:0x240 b=act:0x5c80 rows=r0 cols=32 mult_a=1082241437 mult_b=164172590 shift=30
   34  topk.ws dst=act:0x46c0 src=act:0x4640 rows=r0 out_reg=r3 kept_reg=r1 keep_num=12 keep_den=16
   35  fuse dst=act:0x900 src=act:0x6c0 index=act:0x46c0 scores=act:0x4640 rows=r0 kept=r1 cols=32 divisor=131072
   36  store.wc src=act:0x46c0 dst=dram:0x4200 rows=1 row_bytes=64 stride=64
   37  layernorm dst=act:0xb40 src=act:0x900 rows=r3 cols=32 params=wgt:0x101140
   38  spgemm dst=act:0xd80 src=act:0xb40 src_stride=32 rows=r3 k=32 n=64 wgt=wgt:0x101280 bias=wgt:0x101780 index=wgt:0x101a80
   39  requant dst=act:0x4740 dst_stride=64 src=act:0xd80 src_stride=64 rows=r3 cols=64 params=wgt:0x101880 out=i32
   40  gelu dst=act:0x5840 src=act:0x4740 rows=r3 cols=64 params=wgt:0x101b00
   41  spgemm dst=act:0xd80 src=act:0x5840 src_stride=64 rows=r3 k=64 n=32 wgt=wgt:0x101b40 bias=wgt:0x102140 index=wgt:0x1022c0
   42  requant dst=act:0x5c80 dst_stride=32 src=act:0xd80 src_stride=32 rows=r3 cols=32 params=wgt:0x1021c0 out=i8
   43  add.ws dst=act:0x480 a=act:0x900 b=act:0x5c80 rows=r3 cols=32 mult_a=2054469964 mult_b=881564138 shift=31
   44  store.wc src=act:0x480 dst=dram:0x4240 rows=r3 row_bytes=32 stride=32
   45  layernorm.wl dst=act:0xb40 src=act:0x480 rows=r3 cols=32 params=wgt:0x0
   46  load.wc space=wgt dst=wgt:0x100000 src=dram:0x3b80 bytes=976
   47  spgemm dst=act:0xd80 src=act:0xb40 src_stride=32 rows=r3 k=32 n=48 wgt=wgt:0x140 bias=wgt:0x340 index=wgt:0x580
   48  requant dst=act:0x2700 dst_stride=48 src=act:0xd80 src_stride=48 rows=r3 cols=48 params=wgt:0x400 out=i8
   49  center dst=act:0x2fc0 dst_stride=16 src=act:0x2710 src_stride=48 rows=r3 cols=16 mult=1118409676 shift=30
   50  matmul dst=act:0x3100 dst_stride=16 a=act:0x2fc0 a_stride=16 b=act:0x2720 b_stride=48 m=16 k=r3 n=16 layout=tn a_type=i8
   51  requant dst=act:0x3500 dst_stride=16 src=act:0x3100 src_stride=16 rows=16 cols=16 params=wgt:0x600 out=i8
   52  colsum dst=act:0x3600 src=act:0x2720 stride=48 rows=r3 cols=16
   53  colsum dst=act:0x3640 src=act:0x2fc0 stride=16 rows=r3 cols=16
   54  matmul dst=act:0x3680 dst_stride=16 a=act:0x2700 a_stride=48 b=act:0x3500 b_stride=16 m=r3 k=16 n=16 layout=nn a_type=i8
   55  divrow dst=act:0x2d80 dst_stride=16 num=act:0x3680 q=act:0x2700 q_stride=48 sums=act:0x3600 rows=r3 cols=16 params=wgt:0x680
   56  clsscore dst=act:0x4640 mode=taylor src=act:0x2700 k=act:0x2fc0 k_stride=16 sums=act:0x3600 rows=r3 cols=16 params=wgt:0x6c0 accumulate=set
   57  spgemm dst=act:0xd80 src=act:0x2d80 src_stride=16 rows=r3 k=16 n=32 wgt=wgt:0x700 bias=wgt:0x800 index=wgt:0x980
   58  requant dst=act:0x5c80 dst_stride=32 src=act:0xd80 src_stride=32 rows=r3 cols=32 params=wgt:0x880 out=i8
   59  add dst=act:0x6c0 a=act:0x480 b=act:0x5c80 rows=r3 cols=32 mult_a=1073741824 mult_b=120607248 shift=30
   60  topk.ws dst=act:0x46c0 src=act:0x4640 rows=r3 out_reg=r4 kept_reg=r1 keep_num=10 keep_den=13
   61  fuse dst=act:0x900 src=act:0x6c0 index=act:0x46c0 scores=act:0x4640 rows=r3 kept=r1 cols=32 divisor=65536
   62  store.wc src=act:0x46c0 dst=dram:0x4400 rows=1 row_bytes=52 stride=52
   63  layernorm dst=act:0xb40 src=act:0x900 rows=r4 cols=32 params=wgt:0xa00
   64  spgemm dst=act:0xd80 src=act:0xb40 src_stride=32 rows=r4 k=32 n=32 wgt=wgt:0xb40 bias=wgt:0xc40 index=wgt:0xdc0
   65  requant dst=act:0x4740 dst_stride=32 src=act:0xd80 src_stride=32 rows=r4 cols=32 params=wgt:0xcc0 out=i32
   66  gelu dst=act:0x5840 src=act:0x4740 rows=r4 cols=32 params=wgt:0xe40
   67  spgemm dst=act:0xd80 src=act:0x5840 src_stride=32 rows=r4 k=32 n=32 wgt=wgt:0xe80 bias=wgt:0x1080 index=wgt:0x1200
   68  requant dst=act:0x5c80 dst_stride=32 src=act:0xd80 src_stride=32 rows=r4 cols=32 params=wgt:0x1100 out=i8
   69  add.ws dst=act:0x240 a=act:0x900 b=act:0x5c80 rows=r4 cols=32 mult_a=1073741824 mult_b=237846093 shift=30
   70  store.wc src=act:0x240 dst=dram:0x4440 rows=r4 row_bytes=32 stride=32
   71  layernorm.wl dst=act:0x5ec0 src=act:0x240 rows=1 cols=32 params=wgt:0x100000
   72  gemm dst=act:0xd80 src=act:0x5ec0 src_stride=32 rows=1 k=32 n=10 wgt=wgt:0x100140 bias=wgt:0x100340
   73  requant dst=act:0x5f00 dst_stride=10 src=act:0xd80 src_stride=10 rows=1 cols=10 params=wgt:0x100380 out=i32
   74  store.wc src=act:0x5f00 dst=dram:0x45c0 rows=1 row_bytes=40 stride=40
   75  sync.wl.wc.ws
   76  finish
