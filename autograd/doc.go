// Package autograd is vitc's compute engine: float32 tensors, a reverse-mode
// tape of explicit forward/backward pairs, the fused ops a ViT needs, the
// parameter store keyed by timm names, AdamW, learning-rate schedules and
// gradient checking.
//
// Each op is written as a forward function that records its own backward
// closure on a Tape (llm.c style), so every gradient is hand-written, tested
// against finite differences, and free of graph-construction overhead. Matrix
// products go through BLAS (OpenBLAS with the `openblas` build tag, gonum's
// pure-Go kernels otherwise). This is the native engine; vit/gorgoniavit runs
// the same ops as a Gorgonia graph (`--engine gorgonia`), and docs/engine.md
// compares the two.
package autograd
