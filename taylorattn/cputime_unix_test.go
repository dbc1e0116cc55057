//go:build unix

package taylorattn

import "syscall"

// ProcessCPU is the CPU time (user and system, all threads) the process has
// used so far, in seconds: on a shared machine it moves far less than
// wall-clock time.
func ProcessCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
