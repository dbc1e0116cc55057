//go:build !unix

package export

func processCPU() float64 { return 0 }
