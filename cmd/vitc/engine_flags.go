package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"vitc/vit/pipeline"
)

// bindEngine adds --engine (train, prune, bench).
func bindEngine(f *pflag.FlagSet, p *string) {
	f.StringVar(p, "engine", pipeline.Engines[0], "what runs the forward and backward passes: "+
		"native (vitc's own, the fastest) or gorgonia (the model as a Gorgonia graph on a TapeMachine)")
}

// checkEngine refuses an unknown --engine before any work is done.
func checkEngine(name string) error {
	if !slices.Contains(pipeline.Engines, name) {
		return fmt.Errorf("--engine %q: want %s", name, strings.Join(pipeline.Engines, " or "))
	}
	return nil
}

// memoryFlags are the training commands' memory settings (train, prune).
type memoryFlags struct {
	Recompute bool
	MaxSteps  int
}

func (m *memoryFlags) bind(f *pflag.FlagSet) {
	f.BoolVar(&m.Recompute, "recompute", false, "recompute each block in the backward pass instead of keeping its activations (activation checkpointing: far less memory, about a third more time, the same results)")
	f.IntVar(&m.MaxSteps, "max-steps-per-epoch", 0, "end each epoch after this many batches (for measuring memory and speed on a large set; 0: all)")
	_ = f.MarkHidden("max-steps-per-epoch")
}

// check refuses what the engine cannot do, before any work is done.
func (m *memoryFlags) check(engine string) error {
	if m.Recompute && engine != "native" {
		return fmt.Errorf("--recompute runs on the native engine only, not --engine %s", engine)
	}
	if m.MaxSteps < 0 {
		return fmt.Errorf("--max-steps-per-epoch (%d) must not be negative", m.MaxSteps)
	}
	return nil
}

// mib writes a byte count in MiB for people ("?" when unknown).
func mib(b int64) string {
	if b <= 0 {
		return "?"
	}
	return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
}
