// Package rss reads the process's resident memory: the figure vitc's
// memory claims are stated in (docs/memory.md).
package rss

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Peak is the process's peak resident set (VmHWM) where /proc has it, else
// the memory the Go runtime has obtained from the OS, which misses memory
// outside the Go heap (such as BLAS buffers). The second result names the
// source: "VmHWM" or "go-runtime".
func Peak() (int64, string) {
	if b, ok := Status("VmHWM"); ok {
		return b, "VmHWM"
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.Sys), "go-runtime"
}

// Status reads one "Field: N kB" line of /proc/self/status, in bytes.
func Status(field string) (int64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), field+":")
		if !ok {
			continue
		}
		fields := strings.Fields(rest) // "12345 kB"
		if len(fields) == 2 && fields[1] == "kB" {
			if kb, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
				return kb << 10, true
			}
		}
	}
	return 0, false
}

// ResetPeak starts a new peak: Linux resets VmHWM to the current resident
// set when "5" is written to /proc/self/clear_refs, so that a later Peak is
// the most used since. It reports whether the reset took (false without
// /proc, or on kernels before 4.0: Peak then stays the process's).
func ResetPeak() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}
