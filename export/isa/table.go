package isa

// Table is the instruction set. Everything else in the package (encoder,
// decoder, disassembler, C header, Markdown reference) is derived from it, so
// an opcode or field is added, resized or reordered here and nowhere else;
// afterwards run `go generate ./export/isa` to rewrite vitc_isa.h and
// docs/isa.md.
//
// Fields are packed from bit 16 in the order listed. Docs are single ASCII
// lines because they are pasted into C comments and Markdown table cells.
//
// The package indexes Table once, at initialisation (panicking if it breaks
// a rule of validateTable); changing it at run time does not change the
// encoding.
var Table = []OpSpec{
	{
		Op: OpLoad, Name: "load", Queue: QueueLoad,
		Doc: "Copies a contiguous block of DRAM to an on-chip buffer. It runs on the load queue, so it overlaps compute and stores unless a later instruction waits for it.",
		Fields: []Field{
			{Name: "space", Bits: 2, Kind: Enum, Enum: []string{"act", "wgt"}, Doc: "On-chip buffer that receives the data: act (activation buffer) or wgt (weight/parameter buffer)."},
			{Name: "dst", Bits: 32, Kind: Addr, Doc: "Destination byte address in the buffer named by space."},
			{Name: "src", Bits: 32, Kind: Addr, Space: "dram", Doc: "Source byte address in DRAM."},
			{Name: "bytes", Bits: 32, Kind: Imm, Doc: "Number of bytes to copy."},
		},
	},
	{
		Op: OpStore, Name: "store", Queue: QueueStore,
		Doc: "Copies rows x row_bytes bytes from the activation buffer to DRAM. Source rows are stride bytes apart; in DRAM the rows are written back to back.",
		Fields: []Field{
			{Name: "src", Bits: 32, Kind: Addr, Space: "act", Doc: "Byte address of the first source row."},
			{Name: "dst", Bits: 32, Kind: Addr, Space: "dram", Doc: "Destination byte address in DRAM."},
			{Name: "rows", Bits: 17, Kind: Dim, Doc: "Number of rows to copy; the register form follows a token count that pruning changed at run time."},
			{Name: "row_bytes", Bits: 16, Kind: Imm, Doc: "Bytes copied per row."},
			{Name: "stride", Bits: 16, Kind: Imm, Doc: "Bytes between the starts of consecutive source rows."},
		},
	},
	{
		Op: OpSetr, Name: "setr", Queue: QueueCompute,
		Doc: "Sets a register. Registers hold token counts that later instructions read through register-form dims.",
		Fields: []Field{
			{Name: "reg", Bits: 4, Kind: Reg, Doc: "Register to write."},
			{Name: "value", Bits: 32, Kind: Imm, Doc: "Value written to the register."},
		},
	},
	{
		Op: OpGemm, Name: "gemm", Queue: QueueCompute,
		Doc:    "Activation times weight matrix plus bias, int8 (or int16) x int8 -> int32: dst[r][o] = bias[o] + sum_i src[r][i]*W[o][i] for r < rows, o < n, i < k, wrapping to 32 bits.",
		Fields: append(gemmFields(), srcTypeField),
	},
	{
		Op: OpSpgemm, Name: "spgemm", Queue: QueueCompute,
		Doc: "Block-sparse gemm: the same operands and result as gemm, but only the weight tiles listed in the index table are stored and multiplied; missing tiles count as zero.",
		Fields: append(gemmFields(),
			Field{Name: "index", Bits: 32, Kind: Addr, Space: "wgt", Doc: "Block index table: which weight tiles are present and the processing element each one is assigned to."},
			srcTypeField,
		),
	},
	{
		Op: OpMatmul, Name: "matmul", Queue: QueueCompute,
		Doc: "Activation times activation, int8 or int16 each -> int32: C[i][j] = (sum_l A(i,l)*B(l,j) + 2^(shift-1)) >> shift (no rounding term for shift 0), wrapped to 32 bits, for i < m, j < n, l < k, stored at dst[i*dst_stride+j]. layout says which operand is read transposed; a_type and b_type give the element types.",
		Fields: []Field{
			{Name: "dst", Bits: 32, Kind: Addr, Space: "act", Doc: "int32 result C."},
			{Name: "dst_stride", Bits: 16, Kind: Imm, Doc: "Elements between the starts of consecutive rows of C."},
			{Name: "a", Bits: 32, Kind: Addr, Space: "act", Doc: "Operand A, elements of type a_type."},
			{Name: "a_stride", Bits: 16, Kind: Imm, Doc: "Elements between consecutive rows of a as stored."},
			{Name: "b", Bits: 32, Kind: Addr, Space: "act", Doc: "Operand B, elements of type b_type."},
			{Name: "b_stride", Bits: 16, Kind: Imm, Doc: "Elements between consecutive rows of b as stored."},
			{Name: "m", Bits: 17, Kind: Dim, Doc: "Rows of C."},
			{Name: "k", Bits: 17, Kind: Dim, Doc: "Reduction length."},
			{Name: "n", Bits: 17, Kind: Dim, Doc: "Columns of C."},
			{Name: "layout", Bits: 2, Kind: Enum, Enum: []string{"nn", "tn", "nt"}, Doc: "A(i,l) is a[i*a_stride+l] for nn and nt, a[l*a_stride+i] for tn; B(l,j) is b[l*b_stride+j] for nn and tn, b[j*b_stride+l] for nt."},
			{Name: "a_type", Bits: 1, Kind: Enum, Enum: []string{"i8", "i16"}, Doc: "Element type of A: i8, or i16 (little-endian; strides count elements of 2 bytes), the softmax probabilities of P.V or 16-bit activations."},
			{Name: "b_type", Bits: 1, Kind: Enum, Enum: []string{"i8", "i16"}, Doc: "Element type of B: i8, or i16 (16-bit activations; strides count elements of 2 bytes)."},
			{Name: "shift", Bits: 5, Kind: Imm, Doc: "Rounding right shift of the sum: 0 for int8 operands; int16 x int16 products reach 2^30, so their sums are shifted back into int32."},
		},
	},
	{
		Op: OpColsum, Name: "colsum", Queue: QueueCompute,
		Doc: "Column sums of an int8 (or int16) matrix: dst[c] = sum_r src[r*stride+c] for r < rows, c < cols.",
		Fields: []Field{
			{Name: "dst", Bits: 32, Kind: Addr, Space: "act", Doc: "int32 sums, cols values."},
			{Name: "src", Bits: 32, Kind: Addr, Space: "act", Doc: "int8 input matrix."},
			{Name: "stride", Bits: 16, Kind: Imm, Doc: "Elements between the starts of consecutive src rows."},
			{Name: "rows", Bits: 17, Kind: Dim, Doc: "Rows summed over."},
			{Name: "cols", Bits: 16, Kind: Imm, Doc: "Number of columns."},
			actField("Element type of src: i8, or i16 (strides count elements of 2 bytes)."),
		},
	},
	{
		Op: OpCenter, Name: "center", Queue: QueueCompute,
		Doc: "Subtracts each column's rounded mean over the rows and requantises the difference to int8 with mult and shift. Centres the keys over the tokens for Taylor attention.",
		Fields: []Field{
			{Name: "dst", Bits: 32, Kind: Addr, Space: "act", Doc: "int8 centred output."},
			{Name: "dst_stride", Bits: 16, Kind: Imm, Doc: "Elements between the starts of consecutive dst rows."},
			{Name: "src", Bits: 32, Kind: Addr, Space: "act", Doc: "int8 input."},
			{Name: "src_stride", Bits: 16, Kind: Imm, Doc: "Elements between the starts of consecutive src rows."},
			{Name: "rows", Bits: 17, Kind: Dim, Doc: "Rows (tokens) the means are taken over."},
			{Name: "cols", Bits: 16, Kind: Imm, Doc: "Number of columns."},
			{Name: "mult", Bits: 32, Kind: Imm, Doc: "Requantisation multiplier."},
			{Name: "shift", Bits: 8, Kind: Imm, Doc: "Requantisation right shift."},
			actField("Element type of src and dst: i8, or i16 (saturated to int16; strides count elements of 2 bytes)."),
		},
	},
	{
		Op: OpRequant, Name: "requant", Queue: QueueCompute,
		Doc: "Requantises an int32 matrix column by column with a per-column multiplier and shift, writing int8 (saturated), int32 or int16 (saturated).",
		Fields: []Field{
			{Name: "dst", Bits: 32, Kind: Addr, Space: "act", Doc: "Output, element type chosen by out."},
			{Name: "dst_stride", Bits: 16, Kind: Imm, Doc: "Elements between the starts of consecutive dst rows."},
			{Name: "src", Bits: 32, Kind: Addr, Space: "act", Doc: "int32 input."},
			{Name: "src_stride", Bits: 16, Kind: Imm, Doc: "Elements between the starts of consecutive src rows."},
			{Name: "rows", Bits: 17, Kind: Dim, Doc: "Number of rows."},
			{Name: "cols", Bits: 16, Kind: Imm, Doc: "Number of columns."},
			{Name: "params", Bits: 32, Kind: Addr, Space: "wgt", Doc: "Two int32 words per column: multiplier and right shift."},
			{Name: "out", Bits: 2, Kind: Enum, Enum: []string{"i8", "i32", "i16"}, Doc: "Output element type: i8 (saturated), i32, or i16 (saturated; dst_stride counts elements of 2 bytes)."},
		},
	},
	{
		Op: OpAdd, Name: "add", Queue: QueueCompute,
		Doc: "Residual add of two int8 (or int16) tensors: each is scaled by its multiplier, the sum is shifted right by shift and saturated to the element type.",
		Fields: []Field{
			{Name: "dst", Bits: 32, Kind: Addr, Space: "act", Doc: "int8 sum, rows x cols, contiguous."},
			{Name: "a", Bits: 32, Kind: Addr, Space: "act", Doc: "First int8 input, rows x cols, contiguous."},
			{Name: "b", Bits: 32, Kind: Addr, Space: "act", Doc: "Second int8 input, rows x cols, contiguous."},
			{Name: "rows", Bits: 17, Kind: Dim, Doc: "Number of rows (tokens)."},
			{Name: "cols", Bits: 16, Kind: Imm, Doc: "Number of columns."},
			{Name: "mult_a", Bits: 32, Kind: Imm, Doc: "Multiplier applied to a."},
			{Name: "mult_b", Bits: 32, Kind: Imm, Doc: "Multiplier applied to b."},
			{Name: "shift", Bits: 8, Kind: Imm, Doc: "Right shift applied to the scaled sum."},
			actField("Element type of a, b and dst: i8 or i16."),
		},
	},
	{
		Op: OpLayerNorm, Name: "layernorm", Queue: QueueCompute,
		Doc: "Integer LayerNorm of each int8 (or int16) row to the same type (integer mean, variance and square root; docs/bundle.md gives the arithmetic).",
		Fields: []Field{
			{Name: "dst", Bits: 32, Kind: Addr, Space: "act", Doc: "Normalised output, rows x cols, contiguous."},
			{Name: "src", Bits: 32, Kind: Addr, Space: "act", Doc: "Input, rows x cols, contiguous."},
			{Name: "rows", Bits: 17, Kind: Dim, Doc: "Number of rows (tokens)."},
			{Name: "cols", Bits: 16, Kind: Imm, Doc: "Row length the statistics are taken over."},
			{Name: "params", Bits: 32, Kind: Addr, Space: "wgt", Doc: "1 + 2*cols words: eps, then gamma and beta per column, each over the output scale with 12 fraction bits."},
			actField("Element type of src and dst: i8, or i16 (the reciprocal keeps 16 more bits; docs/bundle.md)."),
		},
	},
	{
		Op: OpGelu, Name: "gelu", Queue: QueueCompute,
		Doc: "Integer GELU applied element by element to an int32 matrix, producing int8 (or int16).",
		Fields: []Field{
			{Name: "dst", Bits: 32, Kind: Addr, Space: "act", Doc: "int8 output, rows x cols, contiguous."},
			{Name: "src", Bits: 32, Kind: Addr, Space: "act", Doc: "int32 input, rows x cols, contiguous."},
			{Name: "rows", Bits: 17, Kind: Dim, Doc: "Number of rows (tokens)."},
			{Name: "cols", Bits: 16, Kind: Imm, Doc: "Number of columns."},
			{Name: "params", Bits: 32, Kind: Addr, Space: "wgt", Doc: "Five words: clip, coef, shift, output multiplier and output shift (docs/bundle.md)."},
			{Name: "out", Bits: 1, Kind: Enum, Enum: []string{"i8", "i16"}, Doc: "Output element type: i8 or i16 (saturated)."},
		},
	},
	{
		Op: OpSoftmax, Name: "softmax", Queue: QueueCompute,
		Doc: "Integer softmax of each row of an int32 score matrix, producing int8 probabilities (1.0 = 127) or int16 ones (1.0 = 32767). cols is a dim because attention rows are as long as the pruned token count.",
		Fields: []Field{
			{Name: "dst", Bits: 32, Kind: Addr, Space: "act", Doc: "Probabilities, elements of type out."},
			{Name: "dst_stride", Bits: 16, Kind: Imm, Doc: "Elements between the starts of consecutive dst rows."},
			{Name: "src", Bits: 32, Kind: Addr, Space: "act", Doc: "int32 scores."},
			{Name: "src_stride", Bits: 16, Kind: Imm, Doc: "Elements between the starts of consecutive src rows."},
			{Name: "rows", Bits: 17, Kind: Dim, Doc: "Number of rows."},
			{Name: "cols", Bits: 17, Kind: Dim, Doc: "Row length the softmax is taken over."},
			{Name: "params", Bits: 32, Kind: Addr, Space: "wgt", Doc: "Two words (multiplier, shift) taking scores to the exponent argument with 12 fraction bits."},
			{Name: "out", Bits: 1, Kind: Enum, Enum: []string{"i8", "i16"}, Doc: "Output element type: i8 (1.0 = 127), or i16 (1.0 = 32767, little-endian; dst_stride counts elements of 2 bytes)."},
		},
	},
	{
		Op: OpDivrow, Name: "divrow", Queue: QueueCompute,
		Doc: "Taylor-attention normaliser: divides each row of the numerator by that row's own denominator, formed from its query and the column sums, and writes int8.",
		Fields: []Field{
			{Name: "dst", Bits: 32, Kind: Addr, Space: "act", Doc: "int8 output."},
			{Name: "dst_stride", Bits: 16, Kind: Imm, Doc: "Elements between the starts of consecutive dst rows."},
			{Name: "num", Bits: 32, Kind: Addr, Space: "act", Doc: "int32 numerators, row stride cols."},
			{Name: "q", Bits: 32, Kind: Addr, Space: "act", Doc: "int8 queries, one row per output row."},
			{Name: "q_stride", Bits: 16, Kind: Imm, Doc: "Elements between the starts of consecutive q rows."},
			{Name: "sums", Bits: 32, Kind: Addr, Space: "act", Doc: "int32 column sums: v-bar, then k-bar, cols values each."},
			{Name: "rows", Bits: 17, Kind: Dim, Doc: "Number of rows (tokens)."},
			{Name: "cols", Bits: 16, Kind: Imm, Doc: "Row length (head dimension)."},
			{Name: "params", Bits: 32, Kind: Addr, Space: "wgt", Doc: "Six words: (multiplier, shift) for v-bar, for q.G and for q.k-bar (docs/bundle.md)."},
			actField("Element type of q and dst: i8, or i16 (q.k-bar shifted right by 8 first; strides count elements of 2 bytes)."),
		},
	},
	{
		Op: OpClsscore, Name: "clsscore", Queue: QueueCompute,
		Doc: "Attention score of every token from the cls token, for one head. Accumulating over the heads gives the ranking that topk prunes by.",
		Fields: []Field{
			{Name: "dst", Bits: 32, Kind: Addr, Space: "act", Doc: "int32 scores, one per token (rows values)."},
			{Name: "mode", Bits: 1, Kind: Enum, Enum: []string{"softmax", "taylor"}, Doc: "Attention kind the scores follow: softmax or taylor."},
			{Name: "src", Bits: 32, Kind: Addr, Space: "act", Doc: "taylor: the int8 query row of the cls token (token 0) for this head; softmax: the int32 score matrix, whose row 0 (rows values) is used."},
			{Name: "k", Bits: 32, Kind: Addr, Space: "act", Doc: "taylor: int8 centred keys of this head, rows x cols; unused (0) in softmax mode."},
			{Name: "k_stride", Bits: 16, Kind: Imm, Doc: "Elements between the starts of consecutive key rows."},
			{Name: "sums", Bits: 32, Kind: Addr, Space: "act", Doc: "taylor: int32 column sums laid out as for divrow (k-bar is the second half); unused (0) in softmax mode."},
			{Name: "rows", Bits: 17, Kind: Dim, Doc: "Number of tokens."},
			{Name: "cols", Bits: 16, Kind: Imm, Doc: "Head dimension."},
			{Name: "params", Bits: 32, Kind: Addr, Space: "wgt", Doc: "Two words (multiplier, shift): q.k-hat to 16 fraction bits (taylor), or scores to the exponent argument (softmax, the softmax table)."},
			{Name: "accumulate", Bits: 1, Kind: Enum, Enum: []string{"set", "add"}, Doc: "set overwrites dst; add adds to it, so the heads sum into one score."},
			actField("taylor: element type of the query and keys, i8 or i16 (q.k-hat shifted right by 8 first; k_stride counts elements of 2 bytes)."),
		},
	},
	{
		Op: OpTopk, Name: "topk", Queue: QueueCompute,
		Doc: "Keeps k = ceil(keep_num/keep_den*(rows-1)), clamped to 1..rows-1, highest-scoring patch tokens (token 0, the cls token, is not ranked; equal scores keep the lower index), writes the kept then the dropped token indices (each ascending), k to kept_reg, and the new token count (k+2, or rows when nothing is dropped) to out_reg.",
		Fields: []Field{
			{Name: "dst", Bits: 32, Kind: Addr, Space: "act", Doc: "int32 token indices: kept tokens first, then dropped ones."},
			{Name: "src", Bits: 32, Kind: Addr, Space: "act", Doc: "int32 scores, one per token."},
			{Name: "rows", Bits: 17, Kind: Dim, Doc: "Number of tokens, the cls token included."},
			{Name: "out_reg", Bits: 4, Kind: Reg, Doc: "Register that receives the new token count."},
			{Name: "kept_reg", Bits: 4, Kind: Reg, Doc: "Register that receives k, the number of patch tokens kept."},
			{Name: "keep_num", Bits: 16, Kind: Imm, Doc: "Numerator of the keep rate."},
			{Name: "keep_den", Bits: 16, Kind: Imm, Doc: "Denominator of the keep rate."},
		},
	},
	{
		Op: OpFuse, Name: "fuse", Queue: QueueCompute,
		Doc: "Gathers the cls token and the kept tokens into dst and fuses the dropped ones into a single token weighted by their scores; with kept >= rows-1 nothing is dropped and src is copied.",
		Fields: []Field{
			{Name: "dst", Bits: 32, Kind: Addr, Space: "act", Doc: "int8 pruned tokens, (kept+2) x cols, contiguous."},
			{Name: "src", Bits: 32, Kind: Addr, Space: "act", Doc: "int8 tokens before pruning, rows x cols, contiguous."},
			{Name: "index", Bits: 32, Kind: Addr, Space: "act", Doc: "int32 token indices as written by topk."},
			{Name: "scores", Bits: 32, Kind: Addr, Space: "act", Doc: "int32 cls scores that weight the dropped tokens."},
			{Name: "rows", Bits: 17, Kind: Dim, Doc: "Number of tokens before pruning."},
			{Name: "kept", Bits: 17, Kind: Dim, Doc: "Number of patch tokens kept (topk's kept_reg)."},
			{Name: "cols", Bits: 16, Kind: Imm, Doc: "Embedding dimension."},
			{Name: "divisor", Bits: 32, Kind: Imm, Doc: "heads x 65536: the fused token is sum_j score_j*x_j / divisor, rounded, so the head-summed 16-bit scores become their mean."},
			actField("Element type of src and dst: i8 or i16."),
		},
	},
	{
		Op: OpSync, Name: "sync", Queue: QueueCompute,
		Doc: "Does nothing but wait for the queues named by its flags: a barrier between queues.",
	},
	{
		Op: OpFinish, Name: "finish", Queue: QueueCompute,
		Doc: "Ends the program; its flags name the queues that must drain first.",
	},
}

// srcTypeField is gemm's and spgemm's last field; the act fields come
// last in every instruction so that programs written before them decode
// unchanged (zero = int8).
var srcTypeField = actField("Element type of src: i8, or i16 (16-bit activations; src_stride counts elements of 2 bytes).")

func actField(doc string) Field {
	return Field{Name: "act", Bits: 1, Kind: Enum, Enum: []string{"i8", "i16"}, Doc: doc}
}

// gemmFields returns a fresh slice each call so that spgemm can append its
// index field without writing into gemm's backing array.
func gemmFields() []Field {
	return []Field{
		{Name: "dst", Bits: 32, Kind: Addr, Space: "act", Doc: "int32 output, rows x n, row stride n elements."},
		{Name: "src", Bits: 32, Kind: Addr, Space: "act", Doc: "int8 input, rows x k."},
		{Name: "src_stride", Bits: 16, Kind: Imm, Doc: "Elements between the starts of consecutive src rows."},
		{Name: "rows", Bits: 17, Kind: Dim, Doc: "Number of rows (tokens)."},
		{Name: "k", Bits: 16, Kind: Imm, Doc: "Input features (reduction length)."},
		{Name: "n", Bits: 16, Kind: Imm, Doc: "Output features."},
		{Name: "wgt", Bits: 32, Kind: Addr, Space: "wgt", Doc: "int8 weights W (n x k), stored as block x block tiles."},
		{Name: "bias", Bits: 32, Kind: Addr, Space: "wgt", Doc: "int32 bias, n values."},
	}
}
