/* Code generated from export/isa/table.go by "go generate ./export/isa"; DO NOT EDIT. */

/*
 * vitc_isa.h: instruction set of the vitc Vision-Transformer accelerator.
 *
 * Every instruction is 32 bytes, little-endian: bit i is bit (i % 8) of
 * byte (i / 8). Bits 0..7 hold the opcode, bits 8..15 the flags, and the
 * fields follow from bit 16 in the order listed below, each LSB first.
 * All bits after an opcode's last field (VITC_<OP>_END) are zero.
 *
 * Read a field with
 *     vitc_isa_field(instr, VITC_GEMM_ROWS_LSB, VITC_GEMM_ROWS_BITS)
 */

#ifndef VITC_ISA_H
#define VITC_ISA_H

#include <stdint.h>

#define VITC_ISA_INSTR_BYTES 32
#define VITC_ISA_OPCODE_LSB 0
#define VITC_ISA_OPCODE_BITS 8
#define VITC_ISA_FLAGS_LSB 8
#define VITC_ISA_FLAGS_BITS 8
#define VITC_ISA_FIELDS_LSB 16

/* Flags: the instruction does not start before every earlier instruction
 * of the named queue has finished. The other flag bits are reserved (0). */
#define VITC_FLAG_WAIT_LOAD 0x01u
#define VITC_FLAG_WAIT_COMPUTE 0x02u
#define VITC_FLAG_WAIT_STORE 0x04u
#define VITC_FLAG_RESERVED_MASK 0xf8u

/* Queues; each opcode belongs to one (VITC_<OP>_QUEUE). */
#define VITC_QUEUE_LOAD 0
#define VITC_QUEUE_COMPUTE 1
#define VITC_QUEUE_STORE 2

/* Memory spaces of address fields:
 *   act   on-chip activation buffer
 *   dram  external memory (DRAM)
 *   wgt   on-chip weight/parameter buffer
 */

/* Register file: 16 x uint32_t, r0..r15. */
#define VITC_NUM_REGS 16

/* Dim fields: 17 bits. Bit 16 clear: the value is bits 0..15.
 * Bit 16 set: the value is register bits 0..3; bits 4..15 are zero. */
#define VITC_DIM_BITS 17
#define VITC_DIM_REG_FLAG 0x10000u
#define VITC_DIM_IS_REG(v) (((v) & VITC_DIM_REG_FLAG) != 0)
#define VITC_DIM_REG(v) ((unsigned)((v) & 0xfu))
#define VITC_DIM_IMM(v) ((unsigned)((v) & 0xffffu))

/* Opcodes. */
#define VITC_OP_LOAD 0x01
#define VITC_OP_STORE 0x02
#define VITC_OP_SETR 0x03
#define VITC_OP_GEMM 0x04
#define VITC_OP_SPGEMM 0x05
#define VITC_OP_MATMUL 0x06
#define VITC_OP_COLSUM 0x07
#define VITC_OP_CENTER 0x08
#define VITC_OP_REQUANT 0x09
#define VITC_OP_ADD 0x0a
#define VITC_OP_LAYERNORM 0x0b
#define VITC_OP_GELU 0x0c
#define VITC_OP_SOFTMAX 0x0d
#define VITC_OP_DIVROW 0x0e
#define VITC_OP_CLSSCORE 0x0f
#define VITC_OP_TOPK 0x10
#define VITC_OP_FUSE 0x11
#define VITC_OP_SYNC 0x12
#define VITC_OP_FINISH 0x13

/* load (0x01, load queue): Copies a contiguous block of DRAM to an on-chip
 * buffer. It runs on the load queue, so it overlaps compute and stores
 * unless a later instruction waits for it. */
#define VITC_LOAD_QUEUE VITC_QUEUE_LOAD
/* load.space (enum 0=act, 1=wgt, bits 16..17): On-chip buffer that
 * receives the data: act (activation buffer) or wgt (weight/parameter
 * buffer). */
#define VITC_LOAD_SPACE_LSB 16
#define VITC_LOAD_SPACE_BITS 2
#define VITC_LOAD_SPACE_ACT 0
#define VITC_LOAD_SPACE_WGT 1
/* load.dst (addr act/wgt, per space, bits 18..49): Destination byte
 * address in the buffer named by space. */
#define VITC_LOAD_DST_LSB 18
#define VITC_LOAD_DST_BITS 32
/* load.src (addr dram, bits 50..81): Source byte address in DRAM. */
#define VITC_LOAD_SRC_LSB 50
#define VITC_LOAD_SRC_BITS 32
/* load.bytes (imm, bits 82..113): Number of bytes to copy. */
#define VITC_LOAD_BYTES_LSB 82
#define VITC_LOAD_BYTES_BITS 32
#define VITC_LOAD_END 114

/* store (0x02, store queue): Copies rows x row_bytes bytes from the
 * activation buffer to DRAM. Source rows are stride bytes apart; in DRAM
 * the rows are written back to back. */
#define VITC_STORE_QUEUE VITC_QUEUE_STORE
/* store.src (addr act, bits 16..47): Byte address of the first source row. */
#define VITC_STORE_SRC_LSB 16
#define VITC_STORE_SRC_BITS 32
/* store.dst (addr dram, bits 48..79): Destination byte address in DRAM. */
#define VITC_STORE_DST_LSB 48
#define VITC_STORE_DST_BITS 32
/* store.rows (dim, bits 80..96): Number of rows to copy; the register form
 * follows a token count that pruning changed at run time. */
#define VITC_STORE_ROWS_LSB 80
#define VITC_STORE_ROWS_BITS 17
/* store.row_bytes (imm, bits 97..112): Bytes copied per row. */
#define VITC_STORE_ROW_BYTES_LSB 97
#define VITC_STORE_ROW_BYTES_BITS 16
/* store.stride (imm, bits 113..128): Bytes between the starts of
 * consecutive source rows. */
#define VITC_STORE_STRIDE_LSB 113
#define VITC_STORE_STRIDE_BITS 16
#define VITC_STORE_END 129

/* setr (0x03, compute queue): Sets a register. Registers hold token counts
 * that later instructions read through register-form dims. */
#define VITC_SETR_QUEUE VITC_QUEUE_COMPUTE
/* setr.reg (reg, bits 16..19): Register to write. */
#define VITC_SETR_REG_LSB 16
#define VITC_SETR_REG_BITS 4
/* setr.value (imm, bits 20..51): Value written to the register. */
#define VITC_SETR_VALUE_LSB 20
#define VITC_SETR_VALUE_BITS 32
#define VITC_SETR_END 52

/* gemm (0x04, compute queue): Activation times weight matrix plus bias,
 * int8 (or int16) x int8 -> int32: dst[r][o] = bias[o] + sum_i
 * src[r][i]*W[o][i] for r < rows, o < n, i < k, wrapping to 32 bits. */
#define VITC_GEMM_QUEUE VITC_QUEUE_COMPUTE
/* gemm.dst (addr act, bits 16..47): int32 output, rows x n, row stride n
 * elements. */
#define VITC_GEMM_DST_LSB 16
#define VITC_GEMM_DST_BITS 32
/* gemm.src (addr act, bits 48..79): int8 input, rows x k. */
#define VITC_GEMM_SRC_LSB 48
#define VITC_GEMM_SRC_BITS 32
/* gemm.src_stride (imm, bits 80..95): Elements between the starts of
 * consecutive src rows. */
#define VITC_GEMM_SRC_STRIDE_LSB 80
#define VITC_GEMM_SRC_STRIDE_BITS 16
/* gemm.rows (dim, bits 96..112): Number of rows (tokens). */
#define VITC_GEMM_ROWS_LSB 96
#define VITC_GEMM_ROWS_BITS 17
/* gemm.k (imm, bits 113..128): Input features (reduction length). */
#define VITC_GEMM_K_LSB 113
#define VITC_GEMM_K_BITS 16
/* gemm.n (imm, bits 129..144): Output features. */
#define VITC_GEMM_N_LSB 129
#define VITC_GEMM_N_BITS 16
/* gemm.wgt (addr wgt, bits 145..176): int8 weights W (n x k), stored as
 * block x block tiles. */
#define VITC_GEMM_WGT_LSB 145
#define VITC_GEMM_WGT_BITS 32
/* gemm.bias (addr wgt, bits 177..208): int32 bias, n values. */
#define VITC_GEMM_BIAS_LSB 177
#define VITC_GEMM_BIAS_BITS 32
/* gemm.act (enum 0=i8, 1=i16, bits 209..209): Element type of src: i8, or
 * i16 (16-bit activations; src_stride counts elements of 2 bytes). */
#define VITC_GEMM_ACT_LSB 209
#define VITC_GEMM_ACT_BITS 1
#define VITC_GEMM_ACT_I8 0
#define VITC_GEMM_ACT_I16 1
#define VITC_GEMM_END 210

/* spgemm (0x05, compute queue): Block-sparse gemm: the same operands and
 * result as gemm, but only the weight tiles listed in the index table are
 * stored and multiplied; missing tiles count as zero. */
#define VITC_SPGEMM_QUEUE VITC_QUEUE_COMPUTE
/* spgemm.dst (addr act, bits 16..47): int32 output, rows x n, row stride n
 * elements. */
#define VITC_SPGEMM_DST_LSB 16
#define VITC_SPGEMM_DST_BITS 32
/* spgemm.src (addr act, bits 48..79): int8 input, rows x k. */
#define VITC_SPGEMM_SRC_LSB 48
#define VITC_SPGEMM_SRC_BITS 32
/* spgemm.src_stride (imm, bits 80..95): Elements between the starts of
 * consecutive src rows. */
#define VITC_SPGEMM_SRC_STRIDE_LSB 80
#define VITC_SPGEMM_SRC_STRIDE_BITS 16
/* spgemm.rows (dim, bits 96..112): Number of rows (tokens). */
#define VITC_SPGEMM_ROWS_LSB 96
#define VITC_SPGEMM_ROWS_BITS 17
/* spgemm.k (imm, bits 113..128): Input features (reduction length). */
#define VITC_SPGEMM_K_LSB 113
#define VITC_SPGEMM_K_BITS 16
/* spgemm.n (imm, bits 129..144): Output features. */
#define VITC_SPGEMM_N_LSB 129
#define VITC_SPGEMM_N_BITS 16
/* spgemm.wgt (addr wgt, bits 145..176): int8 weights W (n x k), stored as
 * block x block tiles. */
#define VITC_SPGEMM_WGT_LSB 145
#define VITC_SPGEMM_WGT_BITS 32
/* spgemm.bias (addr wgt, bits 177..208): int32 bias, n values. */
#define VITC_SPGEMM_BIAS_LSB 177
#define VITC_SPGEMM_BIAS_BITS 32
/* spgemm.index (addr wgt, bits 209..240): Block index table: which weight
 * tiles are present and the processing element each one is assigned to. */
#define VITC_SPGEMM_INDEX_LSB 209
#define VITC_SPGEMM_INDEX_BITS 32
/* spgemm.act (enum 0=i8, 1=i16, bits 241..241): Element type of src: i8,
 * or i16 (16-bit activations; src_stride counts elements of 2 bytes). */
#define VITC_SPGEMM_ACT_LSB 241
#define VITC_SPGEMM_ACT_BITS 1
#define VITC_SPGEMM_ACT_I8 0
#define VITC_SPGEMM_ACT_I16 1
#define VITC_SPGEMM_END 242

/* matmul (0x06, compute queue): Activation times activation, int8 or int16
 * each -> int32: C[i][j] = (sum_l A(i,l)*B(l,j) + 2^(shift-1)) >> shift
 * (no rounding term for shift 0), wrapped to 32 bits, for i < m, j < n, l
 * < k, stored at dst[i*dst_stride+j]. layout says which operand is read
 * transposed; a_type and b_type give the element types. */
#define VITC_MATMUL_QUEUE VITC_QUEUE_COMPUTE
/* matmul.dst (addr act, bits 16..47): int32 result C. */
#define VITC_MATMUL_DST_LSB 16
#define VITC_MATMUL_DST_BITS 32
/* matmul.dst_stride (imm, bits 48..63): Elements between the starts of
 * consecutive rows of C. */
#define VITC_MATMUL_DST_STRIDE_LSB 48
#define VITC_MATMUL_DST_STRIDE_BITS 16
/* matmul.a (addr act, bits 64..95): Operand A, elements of type a_type. */
#define VITC_MATMUL_A_LSB 64
#define VITC_MATMUL_A_BITS 32
/* matmul.a_stride (imm, bits 96..111): Elements between consecutive rows
 * of a as stored. */
#define VITC_MATMUL_A_STRIDE_LSB 96
#define VITC_MATMUL_A_STRIDE_BITS 16
/* matmul.b (addr act, bits 112..143): Operand B, elements of type b_type. */
#define VITC_MATMUL_B_LSB 112
#define VITC_MATMUL_B_BITS 32
/* matmul.b_stride (imm, bits 144..159): Elements between consecutive rows
 * of b as stored. */
#define VITC_MATMUL_B_STRIDE_LSB 144
#define VITC_MATMUL_B_STRIDE_BITS 16
/* matmul.m (dim, bits 160..176): Rows of C. */
#define VITC_MATMUL_M_LSB 160
#define VITC_MATMUL_M_BITS 17
/* matmul.k (dim, bits 177..193): Reduction length. */
#define VITC_MATMUL_K_LSB 177
#define VITC_MATMUL_K_BITS 17
/* matmul.n (dim, bits 194..210): Columns of C. */
#define VITC_MATMUL_N_LSB 194
#define VITC_MATMUL_N_BITS 17
/* matmul.layout (enum 0=nn, 1=tn, 2=nt, bits 211..212): A(i,l) is
 * a[i*a_stride+l] for nn and nt, a[l*a_stride+i] for tn; B(l,j) is
 * b[l*b_stride+j] for nn and tn, b[j*b_stride+l] for nt. */
#define VITC_MATMUL_LAYOUT_LSB 211
#define VITC_MATMUL_LAYOUT_BITS 2
#define VITC_MATMUL_LAYOUT_NN 0
#define VITC_MATMUL_LAYOUT_TN 1
#define VITC_MATMUL_LAYOUT_NT 2
/* matmul.a_type (enum 0=i8, 1=i16, bits 213..213): Element type of A: i8,
 * or i16 (little-endian; strides count elements of 2 bytes), the softmax
 * probabilities of P.V or 16-bit activations. */
#define VITC_MATMUL_A_TYPE_LSB 213
#define VITC_MATMUL_A_TYPE_BITS 1
#define VITC_MATMUL_A_TYPE_I8 0
#define VITC_MATMUL_A_TYPE_I16 1
/* matmul.b_type (enum 0=i8, 1=i16, bits 214..214): Element type of B: i8,
 * or i16 (16-bit activations; strides count elements of 2 bytes). */
#define VITC_MATMUL_B_TYPE_LSB 214
#define VITC_MATMUL_B_TYPE_BITS 1
#define VITC_MATMUL_B_TYPE_I8 0
#define VITC_MATMUL_B_TYPE_I16 1
/* matmul.shift (imm, bits 215..219): Rounding right shift of the sum: 0
 * for int8 operands; int16 x int16 products reach 2^30, so their sums are
 * shifted back into int32. */
#define VITC_MATMUL_SHIFT_LSB 215
#define VITC_MATMUL_SHIFT_BITS 5
#define VITC_MATMUL_END 220

/* colsum (0x07, compute queue): Column sums of an int8 (or int16) matrix:
 * dst[c] = sum_r src[r*stride+c] for r < rows, c < cols. */
#define VITC_COLSUM_QUEUE VITC_QUEUE_COMPUTE
/* colsum.dst (addr act, bits 16..47): int32 sums, cols values. */
#define VITC_COLSUM_DST_LSB 16
#define VITC_COLSUM_DST_BITS 32
/* colsum.src (addr act, bits 48..79): int8 input matrix. */
#define VITC_COLSUM_SRC_LSB 48
#define VITC_COLSUM_SRC_BITS 32
/* colsum.stride (imm, bits 80..95): Elements between the starts of
 * consecutive src rows. */
#define VITC_COLSUM_STRIDE_LSB 80
#define VITC_COLSUM_STRIDE_BITS 16
/* colsum.rows (dim, bits 96..112): Rows summed over. */
#define VITC_COLSUM_ROWS_LSB 96
#define VITC_COLSUM_ROWS_BITS 17
/* colsum.cols (imm, bits 113..128): Number of columns. */
#define VITC_COLSUM_COLS_LSB 113
#define VITC_COLSUM_COLS_BITS 16
/* colsum.act (enum 0=i8, 1=i16, bits 129..129): Element type of src: i8,
 * or i16 (strides count elements of 2 bytes). */
#define VITC_COLSUM_ACT_LSB 129
#define VITC_COLSUM_ACT_BITS 1
#define VITC_COLSUM_ACT_I8 0
#define VITC_COLSUM_ACT_I16 1
#define VITC_COLSUM_END 130

/* center (0x08, compute queue): Subtracts each column's rounded mean over
 * the rows and requantises the difference to int8 with mult and shift.
 * Centres the keys over the tokens for Taylor attention. */
#define VITC_CENTER_QUEUE VITC_QUEUE_COMPUTE
/* center.dst (addr act, bits 16..47): int8 centred output. */
#define VITC_CENTER_DST_LSB 16
#define VITC_CENTER_DST_BITS 32
/* center.dst_stride (imm, bits 48..63): Elements between the starts of
 * consecutive dst rows. */
#define VITC_CENTER_DST_STRIDE_LSB 48
#define VITC_CENTER_DST_STRIDE_BITS 16
/* center.src (addr act, bits 64..95): int8 input. */
#define VITC_CENTER_SRC_LSB 64
#define VITC_CENTER_SRC_BITS 32
/* center.src_stride (imm, bits 96..111): Elements between the starts of
 * consecutive src rows. */
#define VITC_CENTER_SRC_STRIDE_LSB 96
#define VITC_CENTER_SRC_STRIDE_BITS 16
/* center.rows (dim, bits 112..128): Rows (tokens) the means are taken
 * over. */
#define VITC_CENTER_ROWS_LSB 112
#define VITC_CENTER_ROWS_BITS 17
/* center.cols (imm, bits 129..144): Number of columns. */
#define VITC_CENTER_COLS_LSB 129
#define VITC_CENTER_COLS_BITS 16
/* center.mult (imm, bits 145..176): Requantisation multiplier. */
#define VITC_CENTER_MULT_LSB 145
#define VITC_CENTER_MULT_BITS 32
/* center.shift (imm, bits 177..184): Requantisation right shift. */
#define VITC_CENTER_SHIFT_LSB 177
#define VITC_CENTER_SHIFT_BITS 8
/* center.act (enum 0=i8, 1=i16, bits 185..185): Element type of src and
 * dst: i8, or i16 (saturated to int16; strides count elements of 2 bytes). */
#define VITC_CENTER_ACT_LSB 185
#define VITC_CENTER_ACT_BITS 1
#define VITC_CENTER_ACT_I8 0
#define VITC_CENTER_ACT_I16 1
#define VITC_CENTER_END 186

/* requant (0x09, compute queue): Requantises an int32 matrix column by
 * column with a per-column multiplier and shift, writing int8 (saturated),
 * int32 or int16 (saturated). */
#define VITC_REQUANT_QUEUE VITC_QUEUE_COMPUTE
/* requant.dst (addr act, bits 16..47): Output, element type chosen by out. */
#define VITC_REQUANT_DST_LSB 16
#define VITC_REQUANT_DST_BITS 32
/* requant.dst_stride (imm, bits 48..63): Elements between the starts of
 * consecutive dst rows. */
#define VITC_REQUANT_DST_STRIDE_LSB 48
#define VITC_REQUANT_DST_STRIDE_BITS 16
/* requant.src (addr act, bits 64..95): int32 input. */
#define VITC_REQUANT_SRC_LSB 64
#define VITC_REQUANT_SRC_BITS 32
/* requant.src_stride (imm, bits 96..111): Elements between the starts of
 * consecutive src rows. */
#define VITC_REQUANT_SRC_STRIDE_LSB 96
#define VITC_REQUANT_SRC_STRIDE_BITS 16
/* requant.rows (dim, bits 112..128): Number of rows. */
#define VITC_REQUANT_ROWS_LSB 112
#define VITC_REQUANT_ROWS_BITS 17
/* requant.cols (imm, bits 129..144): Number of columns. */
#define VITC_REQUANT_COLS_LSB 129
#define VITC_REQUANT_COLS_BITS 16
/* requant.params (addr wgt, bits 145..176): Two int32 words per column:
 * multiplier and right shift. */
#define VITC_REQUANT_PARAMS_LSB 145
#define VITC_REQUANT_PARAMS_BITS 32
/* requant.out (enum 0=i8, 1=i32, 2=i16, bits 177..178): Output element
 * type: i8 (saturated), i32, or i16 (saturated; dst_stride counts elements
 * of 2 bytes). */
#define VITC_REQUANT_OUT_LSB 177
#define VITC_REQUANT_OUT_BITS 2
#define VITC_REQUANT_OUT_I8 0
#define VITC_REQUANT_OUT_I32 1
#define VITC_REQUANT_OUT_I16 2
#define VITC_REQUANT_END 179

/* add (0x0a, compute queue): Residual add of two int8 (or int16) tensors:
 * each is scaled by its multiplier, the sum is shifted right by shift and
 * saturated to the element type. */
#define VITC_ADD_QUEUE VITC_QUEUE_COMPUTE
/* add.dst (addr act, bits 16..47): int8 sum, rows x cols, contiguous. */
#define VITC_ADD_DST_LSB 16
#define VITC_ADD_DST_BITS 32
/* add.a (addr act, bits 48..79): First int8 input, rows x cols,
 * contiguous. */
#define VITC_ADD_A_LSB 48
#define VITC_ADD_A_BITS 32
/* add.b (addr act, bits 80..111): Second int8 input, rows x cols,
 * contiguous. */
#define VITC_ADD_B_LSB 80
#define VITC_ADD_B_BITS 32
/* add.rows (dim, bits 112..128): Number of rows (tokens). */
#define VITC_ADD_ROWS_LSB 112
#define VITC_ADD_ROWS_BITS 17
/* add.cols (imm, bits 129..144): Number of columns. */
#define VITC_ADD_COLS_LSB 129
#define VITC_ADD_COLS_BITS 16
/* add.mult_a (imm, bits 145..176): Multiplier applied to a. */
#define VITC_ADD_MULT_A_LSB 145
#define VITC_ADD_MULT_A_BITS 32
/* add.mult_b (imm, bits 177..208): Multiplier applied to b. */
#define VITC_ADD_MULT_B_LSB 177
#define VITC_ADD_MULT_B_BITS 32
/* add.shift (imm, bits 209..216): Right shift applied to the scaled sum. */
#define VITC_ADD_SHIFT_LSB 209
#define VITC_ADD_SHIFT_BITS 8
/* add.act (enum 0=i8, 1=i16, bits 217..217): Element type of a, b and dst:
 * i8 or i16. */
#define VITC_ADD_ACT_LSB 217
#define VITC_ADD_ACT_BITS 1
#define VITC_ADD_ACT_I8 0
#define VITC_ADD_ACT_I16 1
#define VITC_ADD_END 218

/* layernorm (0x0b, compute queue): Integer LayerNorm of each int8 (or
 * int16) row to the same type (integer mean, variance and square root;
 * docs/bundle.md gives the arithmetic). */
#define VITC_LAYERNORM_QUEUE VITC_QUEUE_COMPUTE
/* layernorm.dst (addr act, bits 16..47): Normalised output, rows x cols,
 * contiguous. */
#define VITC_LAYERNORM_DST_LSB 16
#define VITC_LAYERNORM_DST_BITS 32
/* layernorm.src (addr act, bits 48..79): Input, rows x cols, contiguous. */
#define VITC_LAYERNORM_SRC_LSB 48
#define VITC_LAYERNORM_SRC_BITS 32
/* layernorm.rows (dim, bits 80..96): Number of rows (tokens). */
#define VITC_LAYERNORM_ROWS_LSB 80
#define VITC_LAYERNORM_ROWS_BITS 17
/* layernorm.cols (imm, bits 97..112): Row length the statistics are taken
 * over. */
#define VITC_LAYERNORM_COLS_LSB 97
#define VITC_LAYERNORM_COLS_BITS 16
/* layernorm.params (addr wgt, bits 113..144): 1 + 2*cols words: eps, then
 * gamma and beta per column, each over the output scale with 12 fraction
 * bits. */
#define VITC_LAYERNORM_PARAMS_LSB 113
#define VITC_LAYERNORM_PARAMS_BITS 32
/* layernorm.act (enum 0=i8, 1=i16, bits 145..145): Element type of src and
 * dst: i8, or i16 (the reciprocal keeps 16 more bits; docs/bundle.md). */
#define VITC_LAYERNORM_ACT_LSB 145
#define VITC_LAYERNORM_ACT_BITS 1
#define VITC_LAYERNORM_ACT_I8 0
#define VITC_LAYERNORM_ACT_I16 1
#define VITC_LAYERNORM_END 146

/* gelu (0x0c, compute queue): Integer GELU applied element by element to
 * an int32 matrix, producing int8 (or int16). */
#define VITC_GELU_QUEUE VITC_QUEUE_COMPUTE
/* gelu.dst (addr act, bits 16..47): int8 output, rows x cols, contiguous. */
#define VITC_GELU_DST_LSB 16
#define VITC_GELU_DST_BITS 32
/* gelu.src (addr act, bits 48..79): int32 input, rows x cols, contiguous. */
#define VITC_GELU_SRC_LSB 48
#define VITC_GELU_SRC_BITS 32
/* gelu.rows (dim, bits 80..96): Number of rows (tokens). */
#define VITC_GELU_ROWS_LSB 80
#define VITC_GELU_ROWS_BITS 17
/* gelu.cols (imm, bits 97..112): Number of columns. */
#define VITC_GELU_COLS_LSB 97
#define VITC_GELU_COLS_BITS 16
/* gelu.params (addr wgt, bits 113..144): Five words: clip, coef, shift,
 * output multiplier and output shift (docs/bundle.md). */
#define VITC_GELU_PARAMS_LSB 113
#define VITC_GELU_PARAMS_BITS 32
/* gelu.out (enum 0=i8, 1=i16, bits 145..145): Output element type: i8 or
 * i16 (saturated). */
#define VITC_GELU_OUT_LSB 145
#define VITC_GELU_OUT_BITS 1
#define VITC_GELU_OUT_I8 0
#define VITC_GELU_OUT_I16 1
#define VITC_GELU_END 146

/* softmax (0x0d, compute queue): Integer softmax of each row of an int32
 * score matrix, producing int8 probabilities (1.0 = 127) or int16 ones
 * (1.0 = 32767). cols is a dim because attention rows are as long as the
 * pruned token count. */
#define VITC_SOFTMAX_QUEUE VITC_QUEUE_COMPUTE
/* softmax.dst (addr act, bits 16..47): Probabilities, elements of type
 * out. */
#define VITC_SOFTMAX_DST_LSB 16
#define VITC_SOFTMAX_DST_BITS 32
/* softmax.dst_stride (imm, bits 48..63): Elements between the starts of
 * consecutive dst rows. */
#define VITC_SOFTMAX_DST_STRIDE_LSB 48
#define VITC_SOFTMAX_DST_STRIDE_BITS 16
/* softmax.src (addr act, bits 64..95): int32 scores. */
#define VITC_SOFTMAX_SRC_LSB 64
#define VITC_SOFTMAX_SRC_BITS 32
/* softmax.src_stride (imm, bits 96..111): Elements between the starts of
 * consecutive src rows. */
#define VITC_SOFTMAX_SRC_STRIDE_LSB 96
#define VITC_SOFTMAX_SRC_STRIDE_BITS 16
/* softmax.rows (dim, bits 112..128): Number of rows. */
#define VITC_SOFTMAX_ROWS_LSB 112
#define VITC_SOFTMAX_ROWS_BITS 17
/* softmax.cols (dim, bits 129..145): Row length the softmax is taken over. */
#define VITC_SOFTMAX_COLS_LSB 129
#define VITC_SOFTMAX_COLS_BITS 17
/* softmax.params (addr wgt, bits 146..177): Two words (multiplier, shift)
 * taking scores to the exponent argument with 12 fraction bits. */
#define VITC_SOFTMAX_PARAMS_LSB 146
#define VITC_SOFTMAX_PARAMS_BITS 32
/* softmax.out (enum 0=i8, 1=i16, bits 178..178): Output element type: i8
 * (1.0 = 127), or i16 (1.0 = 32767, little-endian; dst_stride counts
 * elements of 2 bytes). */
#define VITC_SOFTMAX_OUT_LSB 178
#define VITC_SOFTMAX_OUT_BITS 1
#define VITC_SOFTMAX_OUT_I8 0
#define VITC_SOFTMAX_OUT_I16 1
#define VITC_SOFTMAX_END 179

/* divrow (0x0e, compute queue): Taylor-attention normaliser: divides each
 * row of the numerator by that row's own denominator, formed from its
 * query and the column sums, and writes int8. */
#define VITC_DIVROW_QUEUE VITC_QUEUE_COMPUTE
/* divrow.dst (addr act, bits 16..47): int8 output. */
#define VITC_DIVROW_DST_LSB 16
#define VITC_DIVROW_DST_BITS 32
/* divrow.dst_stride (imm, bits 48..63): Elements between the starts of
 * consecutive dst rows. */
#define VITC_DIVROW_DST_STRIDE_LSB 48
#define VITC_DIVROW_DST_STRIDE_BITS 16
/* divrow.num (addr act, bits 64..95): int32 numerators, row stride cols. */
#define VITC_DIVROW_NUM_LSB 64
#define VITC_DIVROW_NUM_BITS 32
/* divrow.q (addr act, bits 96..127): int8 queries, one row per output row. */
#define VITC_DIVROW_Q_LSB 96
#define VITC_DIVROW_Q_BITS 32
/* divrow.q_stride (imm, bits 128..143): Elements between the starts of
 * consecutive q rows. */
#define VITC_DIVROW_Q_STRIDE_LSB 128
#define VITC_DIVROW_Q_STRIDE_BITS 16
/* divrow.sums (addr act, bits 144..175): int32 column sums: v-bar, then
 * k-bar, cols values each. */
#define VITC_DIVROW_SUMS_LSB 144
#define VITC_DIVROW_SUMS_BITS 32
/* divrow.rows (dim, bits 176..192): Number of rows (tokens). */
#define VITC_DIVROW_ROWS_LSB 176
#define VITC_DIVROW_ROWS_BITS 17
/* divrow.cols (imm, bits 193..208): Row length (head dimension). */
#define VITC_DIVROW_COLS_LSB 193
#define VITC_DIVROW_COLS_BITS 16
/* divrow.params (addr wgt, bits 209..240): Six words: (multiplier, shift)
 * for v-bar, for q.G and for q.k-bar (docs/bundle.md). */
#define VITC_DIVROW_PARAMS_LSB 209
#define VITC_DIVROW_PARAMS_BITS 32
/* divrow.act (enum 0=i8, 1=i16, bits 241..241): Element type of q and dst:
 * i8, or i16 (q.k-bar shifted right by 8 first; strides count elements of
 * 2 bytes). */
#define VITC_DIVROW_ACT_LSB 241
#define VITC_DIVROW_ACT_BITS 1
#define VITC_DIVROW_ACT_I8 0
#define VITC_DIVROW_ACT_I16 1
#define VITC_DIVROW_END 242

/* clsscore (0x0f, compute queue): Attention score of every token from the
 * cls token, for one head. Accumulating over the heads gives the ranking
 * that topk prunes by. */
#define VITC_CLSSCORE_QUEUE VITC_QUEUE_COMPUTE
/* clsscore.dst (addr act, bits 16..47): int32 scores, one per token (rows
 * values). */
#define VITC_CLSSCORE_DST_LSB 16
#define VITC_CLSSCORE_DST_BITS 32
/* clsscore.mode (enum 0=softmax, 1=taylor, bits 48..48): Attention kind
 * the scores follow: softmax or taylor. */
#define VITC_CLSSCORE_MODE_LSB 48
#define VITC_CLSSCORE_MODE_BITS 1
#define VITC_CLSSCORE_MODE_SOFTMAX 0
#define VITC_CLSSCORE_MODE_TAYLOR 1
/* clsscore.src (addr act, bits 49..80): taylor: the int8 query row of the
 * cls token (token 0) for this head; softmax: the int32 score matrix,
 * whose row 0 (rows values) is used. */
#define VITC_CLSSCORE_SRC_LSB 49
#define VITC_CLSSCORE_SRC_BITS 32
/* clsscore.k (addr act, bits 81..112): taylor: int8 centred keys of this
 * head, rows x cols; unused (0) in softmax mode. */
#define VITC_CLSSCORE_K_LSB 81
#define VITC_CLSSCORE_K_BITS 32
/* clsscore.k_stride (imm, bits 113..128): Elements between the starts of
 * consecutive key rows. */
#define VITC_CLSSCORE_K_STRIDE_LSB 113
#define VITC_CLSSCORE_K_STRIDE_BITS 16
/* clsscore.sums (addr act, bits 129..160): taylor: int32 column sums laid
 * out as for divrow (k-bar is the second half); unused (0) in softmax
 * mode. */
#define VITC_CLSSCORE_SUMS_LSB 129
#define VITC_CLSSCORE_SUMS_BITS 32
/* clsscore.rows (dim, bits 161..177): Number of tokens. */
#define VITC_CLSSCORE_ROWS_LSB 161
#define VITC_CLSSCORE_ROWS_BITS 17
/* clsscore.cols (imm, bits 178..193): Head dimension. */
#define VITC_CLSSCORE_COLS_LSB 178
#define VITC_CLSSCORE_COLS_BITS 16
/* clsscore.params (addr wgt, bits 194..225): Two words (multiplier,
 * shift): q.k-hat to 16 fraction bits (taylor), or scores to the exponent
 * argument (softmax, the softmax table). */
#define VITC_CLSSCORE_PARAMS_LSB 194
#define VITC_CLSSCORE_PARAMS_BITS 32
/* clsscore.accumulate (enum 0=set, 1=add, bits 226..226): set overwrites
 * dst; add adds to it, so the heads sum into one score. */
#define VITC_CLSSCORE_ACCUMULATE_LSB 226
#define VITC_CLSSCORE_ACCUMULATE_BITS 1
#define VITC_CLSSCORE_ACCUMULATE_SET 0
#define VITC_CLSSCORE_ACCUMULATE_ADD 1
/* clsscore.act (enum 0=i8, 1=i16, bits 227..227): taylor: element type of
 * the query and keys, i8 or i16 (q.k-hat shifted right by 8 first;
 * k_stride counts elements of 2 bytes). */
#define VITC_CLSSCORE_ACT_LSB 227
#define VITC_CLSSCORE_ACT_BITS 1
#define VITC_CLSSCORE_ACT_I8 0
#define VITC_CLSSCORE_ACT_I16 1
#define VITC_CLSSCORE_END 228

/* topk (0x10, compute queue): Keeps k = ceil(keep_num/keep_den*(rows-1)),
 * clamped to 1..rows-1, highest-scoring patch tokens (token 0, the cls
 * token, is not ranked; equal scores keep the lower index), writes the
 * kept then the dropped token indices (each ascending), k to kept_reg, and
 * the new token count (k+2, or rows when nothing is dropped) to out_reg. */
#define VITC_TOPK_QUEUE VITC_QUEUE_COMPUTE
/* topk.dst (addr act, bits 16..47): int32 token indices: kept tokens
 * first, then dropped ones. */
#define VITC_TOPK_DST_LSB 16
#define VITC_TOPK_DST_BITS 32
/* topk.src (addr act, bits 48..79): int32 scores, one per token. */
#define VITC_TOPK_SRC_LSB 48
#define VITC_TOPK_SRC_BITS 32
/* topk.rows (dim, bits 80..96): Number of tokens, the cls token included. */
#define VITC_TOPK_ROWS_LSB 80
#define VITC_TOPK_ROWS_BITS 17
/* topk.out_reg (reg, bits 97..100): Register that receives the new token
 * count. */
#define VITC_TOPK_OUT_REG_LSB 97
#define VITC_TOPK_OUT_REG_BITS 4
/* topk.kept_reg (reg, bits 101..104): Register that receives k, the number
 * of patch tokens kept. */
#define VITC_TOPK_KEPT_REG_LSB 101
#define VITC_TOPK_KEPT_REG_BITS 4
/* topk.keep_num (imm, bits 105..120): Numerator of the keep rate. */
#define VITC_TOPK_KEEP_NUM_LSB 105
#define VITC_TOPK_KEEP_NUM_BITS 16
/* topk.keep_den (imm, bits 121..136): Denominator of the keep rate. */
#define VITC_TOPK_KEEP_DEN_LSB 121
#define VITC_TOPK_KEEP_DEN_BITS 16
#define VITC_TOPK_END 137

/* fuse (0x11, compute queue): Gathers the cls token and the kept tokens
 * into dst and fuses the dropped ones into a single token weighted by
 * their scores; with kept >= rows-1 nothing is dropped and src is copied. */
#define VITC_FUSE_QUEUE VITC_QUEUE_COMPUTE
/* fuse.dst (addr act, bits 16..47): int8 pruned tokens, (kept+2) x cols,
 * contiguous. */
#define VITC_FUSE_DST_LSB 16
#define VITC_FUSE_DST_BITS 32
/* fuse.src (addr act, bits 48..79): int8 tokens before pruning, rows x
 * cols, contiguous. */
#define VITC_FUSE_SRC_LSB 48
#define VITC_FUSE_SRC_BITS 32
/* fuse.index (addr act, bits 80..111): int32 token indices as written by
 * topk. */
#define VITC_FUSE_INDEX_LSB 80
#define VITC_FUSE_INDEX_BITS 32
/* fuse.scores (addr act, bits 112..143): int32 cls scores that weight the
 * dropped tokens. */
#define VITC_FUSE_SCORES_LSB 112
#define VITC_FUSE_SCORES_BITS 32
/* fuse.rows (dim, bits 144..160): Number of tokens before pruning. */
#define VITC_FUSE_ROWS_LSB 144
#define VITC_FUSE_ROWS_BITS 17
/* fuse.kept (dim, bits 161..177): Number of patch tokens kept (topk's
 * kept_reg). */
#define VITC_FUSE_KEPT_LSB 161
#define VITC_FUSE_KEPT_BITS 17
/* fuse.cols (imm, bits 178..193): Embedding dimension. */
#define VITC_FUSE_COLS_LSB 178
#define VITC_FUSE_COLS_BITS 16
/* fuse.divisor (imm, bits 194..225): heads x 65536: the fused token is
 * sum_j score_j*x_j / divisor, rounded, so the head-summed 16-bit scores
 * become their mean. */
#define VITC_FUSE_DIVISOR_LSB 194
#define VITC_FUSE_DIVISOR_BITS 32
/* fuse.act (enum 0=i8, 1=i16, bits 226..226): Element type of src and dst:
 * i8 or i16. */
#define VITC_FUSE_ACT_LSB 226
#define VITC_FUSE_ACT_BITS 1
#define VITC_FUSE_ACT_I8 0
#define VITC_FUSE_ACT_I16 1
#define VITC_FUSE_END 227

/* sync (0x12, compute queue): Does nothing but wait for the queues named
 * by its flags: a barrier between queues. */
#define VITC_SYNC_QUEUE VITC_QUEUE_COMPUTE
#define VITC_SYNC_END 16

/* finish (0x13, compute queue): Ends the program; its flags name the
 * queues that must drain first. */
#define VITC_FINISH_QUEUE VITC_QUEUE_COMPUTE
#define VITC_FINISH_END 16

/* Returns bits lsb..lsb+bits-1 of an instruction (bits <= 64). */
static inline uint64_t vitc_isa_field(const uint8_t instr[32], unsigned lsb, unsigned bits)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < bits; i++) {
		unsigned b = lsb + i;
		v |= (uint64_t)((instr[b >> 3] >> (b & 7u)) & 1u) << i;
	}
	return v;
}

#endif /* VITC_ISA_H */
