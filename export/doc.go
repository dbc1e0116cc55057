// Package export compiles a vitc checkpoint for the FPGA accelerator:
// calibration, int8 quantization with integer-only kernels (export/intmath),
// tiling and block-sparse packing to the PE array, the instruction stream
// (export/isa), golden vectors and the bundle directory (export/bundle).
// The integer reference model here applies the quantized parameters layer
// by layer; export/sim executes a bundle alone and must match it bit for bit.
package export
