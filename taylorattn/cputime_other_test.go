//go:build !unix

package taylorattn

func ProcessCPU() float64 { return 0 }
