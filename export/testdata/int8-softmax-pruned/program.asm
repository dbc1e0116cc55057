    0  setr reg=r0 value=17
    1  setr reg=r2 value=16
    2  load space=wgt dst=wgt:0x0 src=dram:0x0 bytes=1440
    3  load space=act dst=act:0x0 src=dram:0x3f00 bytes=64
    4  load space=act dst=act:0x40 src=dram:0x380 bytes=512
    5  load space=act dst=act:0x240 src=dram:0x580 bytes=32
    6  gemm.wl dst=act:0xd80 src=act:0x0 src_stride=4 rows=r2 k=4 n=32 wgt=wgt:0x0 bias=wgt:0x200
    7  load.wc space=wgt dst=wgt:0x100000 src=dram:0x5c0 bytes=8960
    8  requant dst=act:0x5c80 dst_stride=32 src=act:0xd80 src_stride=32 rows=r2 cols=32 params=wgt:0x280 out=i8
    9  add dst=act:0x260 a=act:0x5c80 b=act:0x40 rows=r2 cols=32 mult_a=1761786896 mult_b=1018007068 shift=31
   10  store.wc src=act:0x240 dst=dram:0x3f40 rows=r0 row_bytes=32 stride=32
   11  layernorm.wl dst=act:0xb40 src=act:0x240 rows=r0 cols=32 params=wgt:0x100000
   12  load.wc space=wgt dst=wgt:0x0 src=dram:0x28c0 bytes=4656
   13  spgemm dst=act:0xd80 src=act:0xb40 src_stride=32 rows=r0 k=32 n=96 wgt=wgt:0x100140 bias=wgt:0x100740 index=wgt:0x100bc0
   14  requant dst=act:0x2700 dst_stride=96 src=act:0xd80 src_stride=96 rows=r0 cols=96 params=wgt:0x1008c0 out=i8
   15  matmul dst=act:0x3ac0 dst_stride=17 a=act:0x2700 a_stride=96 b=act:0x2720 b_stride=96 m=r0 k=16 n=r0 layout=nt a_type=i8
   16  softmax dst=act:0x3f80 dst_stride=17 src=act:0x3ac0 src_stride=17 rows=r0 cols=r0 params=wgt:0x100c40 out=i16
   17  clsscore dst=act:0x4640 mode=softmax src=act:0x3ac0 k=act:0x0 k_stride=0 sums=act:0x0 rows=r0 cols=0 params=wgt:0x100c40 accumulate=set
   18  matmul dst=act:0x4200 dst_stride=16 a=act:0x3f80 a_stride=17 b=act:0x2740 b_stride=96 m=r0 k=r0 n=16 layout=nn a_type=i16
   19  requant dst=act:0x2d80 dst_stride=32 src=act:0x4200 src_stride=16 rows=r0 cols=16 params=wgt:0x100c80 out=i8
   20  matmul dst=act:0x3ac0 dst_stride=17 a=act:0x2710 a_stride=96 b=act:0x2730 b_stride=96 m=r0 k=16 n=r0 layout=nt a_type=i8
   21  softmax dst=act:0x3f80 dst_stride=17 src=act:0x3ac0 src_stride=17 rows=r0 cols=r0 params=wgt:0x100c40 out=i16
   22  clsscore dst=act:0x4640 mode=softmax src=act:0x3ac0 k=act:0x0 k_stride=0 sums=act:0x0 rows=r0 cols=0 params=wgt:0x100c40 accumulate=add
   23  matmul dst=act:0x4200 dst_stride=16 a=act:0x3f80 a_stride=17 b=act:0x2750 b_stride=96 m=r0 k=r0 n=16 layout=nn a_type=i16
   24  requant dst=act:0x2d90 dst_stride=32 src=act:0x4200 src_stride=16 rows=r0 cols=16 params=wgt:0x100c80 out=i8
   25  spgemm dst=act:0xd80 src=act:0x2d80 src_stride=32 rows=r0 k=32 n=32 wgt=wgt:0x100d00 bias=wgt:0x100f00 index=wgt:0x101080
   26  requant dst=act:0x5c80 dst_stride=32 src=act:0xd80 src_stride=32 rows=r0 cols=32 params=wgt:0x100f80 out=i8
   27  add dst=act:0x6c0 a=act:0x240 b=act:0x5c80 rows=r0 cols=32 mult_a=1082241437 mult_b=164172590 shift=30
   28  topk.ws dst=act:0x46c0 src=act:0x4640 rows=r0 out_reg=r3 kept_reg=r1 keep_num=12 keep_den=16
   29  fuse dst=act:0x900 src=act:0x6c0 index=act:0x46c0 scores=act:0x4640 rows=r0 kept=r1 cols=32 divisor=131072
   30  store.wc src=act:0x46c0 dst=dram:0x4180 rows=1 row_bytes=64 stride=64
   31  layernorm dst=act:0xb40 src=act:0x900 rows=r3 cols=32 params=wgt:0x101100
   32  spgemm dst=act:0xd80 src=act:0xb40 src_stride=32 rows=r3 k=32 n=64 wgt=wgt:0x101240 bias=wgt:0x101740 index=wgt:0x101a40
   33  requant dst=act:0x4740 dst_stride=64 src=act:0xd80 src_stride=64 rows=r3 cols=64 params=wgt:0x101840 out=i32
   34  gelu dst=act:0x5840 src=act:0x4740 rows=r3 cols=64 params=wgt:0x101ac0
   35  spgemm dst=act:0xd80 src=act:0x5840 src_stride=64 rows=r3 k=64 n=32 wgt=wgt:0x101b00 bias=wgt:0x102100 index=wgt:0x102280
   36  requant dst=act:0x5c80 dst_stride=32 src=act:0xd80 src_stride=32 rows=r3 cols=32 params=wgt:0x102180 out=i8
   37  add.ws dst=act:0x480 a=act:0x900 b=act:0x5c80 rows=r3 cols=32 mult_a=2054469964 mult_b=881564138 shift=31
   38  store.wc src=act:0x480 dst=dram:0x41c0 rows=r3 row_bytes=32 stride=32
   39  layernorm.wl dst=act:0xb40 src=act:0x480 rows=r3 cols=32 params=wgt:0x0
   40  load.wc space=wgt dst=wgt:0x100000 src=dram:0x3b00 bytes=976
   41  spgemm dst=act:0xd80 src=act:0xb40 src_stride=32 rows=r3 k=32 n=48 wgt=wgt:0x140 bias=wgt:0x340 index=wgt:0x580
   42  requant dst=act:0x2700 dst_stride=48 src=act:0xd80 src_stride=48 rows=r3 cols=48 params=wgt:0x400 out=i8
   43  matmul dst=act:0x3ac0 dst_stride=17 a=act:0x2700 a_stride=48 b=act:0x2710 b_stride=48 m=r3 k=16 n=r3 layout=nt a_type=i8
   44  softmax dst=act:0x3f80 dst_stride=17 src=act:0x3ac0 src_stride=17 rows=r3 cols=r3 params=wgt:0x600 out=i16
   45  clsscore dst=act:0x4640 mode=softmax src=act:0x3ac0 k=act:0x0 k_stride=0 sums=act:0x0 rows=r3 cols=0 params=wgt:0x600 accumulate=set
   46  matmul dst=act:0x4200 dst_stride=16 a=act:0x3f80 a_stride=17 b=act:0x2720 b_stride=48 m=r3 k=r3 n=16 layout=nn a_type=i16
   47  requant dst=act:0x2d80 dst_stride=16 src=act:0x4200 src_stride=16 rows=r3 cols=16 params=wgt:0x640 out=i8
   48  spgemm dst=act:0xd80 src=act:0x2d80 src_stride=16 rows=r3 k=16 n=32 wgt=wgt:0x6c0 bias=wgt:0x7c0 index=wgt:0x940
   49  requant dst=act:0x5c80 dst_stride=32 src=act:0xd80 src_stride=32 rows=r3 cols=32 params=wgt:0x840 out=i8
   50  add dst=act:0x6c0 a=act:0x480 b=act:0x5c80 rows=r3 cols=32 mult_a=1073741824 mult_b=120607248 shift=30
   51  topk.ws dst=act:0x46c0 src=act:0x4640 rows=r3 out_reg=r4 kept_reg=r1 keep_num=10 keep_den=13
   52  fuse dst=act:0x900 src=act:0x6c0 index=act:0x46c0 scores=act:0x4640 rows=r3 kept=r1 cols=32 divisor=65536
   53  store.wc src=act:0x46c0 dst=dram:0x4380 rows=1 row_bytes=52 stride=52
   54  layernorm dst=act:0xb40 src=act:0x900 rows=r4 cols=32 params=wgt:0x9c0
   55  spgemm dst=act:0xd80 src=act:0xb40 src_stride=32 rows=r4 k=32 n=32 wgt=wgt:0xb00 bias=wgt:0xc00 index=wgt:0xd80
   56  requant dst=act:0x4740 dst_stride=32 src=act:0xd80 src_stride=32 rows=r4 cols=32 params=wgt:0xc80 out=i32
   57  gelu dst=act:0x5840 src=act:0x4740 rows=r4 cols=32 params=wgt:0xe00
   58  spgemm dst=act:0xd80 src=act:0x5840 src_stride=32 rows=r4 k=32 n=32 wgt=wgt:0xe40 bias=wgt:0x1040 index=wgt:0x11c0
   59  requant dst=act:0x5c80 dst_stride=32 src=act:0xd80 src_stride=32 rows=r4 cols=32 params=wgt:0x10c0 out=i8
   60  add.ws dst=act:0x240 a=act:0x900 b=act:0x5c80 rows=r4 cols=32 mult_a=1073741824 mult_b=237846093 shift=30
   61  store.wc src=act:0x240 dst=dram:0x43c0 rows=r4 row_bytes=32 stride=32
   62  layernorm.wl dst=act:0x5ec0 src=act:0x240 rows=1 cols=32 params=wgt:0x100000
   63  gemm dst=act:0xd80 src=act:0x5ec0 src_stride=32 rows=1 k=32 n=10 wgt=wgt:0x100140 bias=wgt:0x100340
   64  requant dst=act:0x5f00 dst_stride=10 src=act:0xd80 src_stride=10 rows=1 cols=10 params=wgt:0x100380 out=i32
   65  store.wc src=act:0x5f00 dst=dram:0x4540 rows=1 row_bytes=40 stride=40
   66  sync.wl.wc.ws
   67  finish
