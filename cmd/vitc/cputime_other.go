//go:build !unix

package main

// processCPU is not measured here: bench reports CPU time as 0.
func processCPU() float64 { return 0 }
