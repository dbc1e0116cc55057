//go:build openblas && cgo

package gorgoniavit

import (
	"gonum.org/v1/netlib/blas/netlib"
	"gorgonia.org/gorgonia"
)

// The openblas build gives Gorgonia's own ops the OpenBLAS vitc's kernels
// use (autograd links it and pins it to one thread); the pure-Go build
// leaves Gorgonia on gonum's kernels, its default.
func init() { gorgonia.Use(netlib.Implementation{}) }
