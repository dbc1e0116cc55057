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
