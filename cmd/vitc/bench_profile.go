package main

import (
	"bytes"
	"fmt"
	"io"
	"runtime/pprof"

	"vitc/internal/atomicfile"
)

// stepProfile is `vitc bench --cpuprofile`: one pprof CPU profile that
// starts with the first timed step, so set-up and the training warm-up stay
// out of it, and is written atomically when the benchmark ends. A nil
// profile (no flag) does nothing.
type stepProfile struct {
	path    string
	buf     bytes.Buffer
	running bool
}

func newStepProfile(path string) *stepProfile {
	if path == "" {
		return nil
	}
	return &stepProfile{path: path}
}

func (p *stepProfile) start() error {
	if p == nil || p.running {
		return nil
	}
	if err := pprof.StartCPUProfile(&p.buf); err != nil {
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	p.running = true
	return nil
}

// save stops profiling and writes the profile.
func (p *stepProfile) save() error {
	if p == nil || !p.running {
		return nil
	}
	pprof.StopCPUProfile()
	p.running = false
	return atomicfile.WriteFile(p.path, func(w io.Writer) error {
		_, err := w.Write(p.buf.Bytes())
		return err
	})
}

// discard stops a profile that an error left running, writing nothing.
func (p *stepProfile) discard() {
	if p != nil && p.running {
		pprof.StopCPUProfile()
		p.running = false
	}
}
