package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"vitc/datasets"
	"vitc/internal/opterr"
	"vitc/vit"
)

// readFlags say how every checkpoint a command reads is read (--checkpoint,
// --init, --teacher, --from): what a file without vitc metadata cannot tell
// (heads, LayerNorm eps, input normalisation), and a change of attention
// kind. The same flags and the same printed line for every command, so that
// one file gives one model everywhere.
type readFlags struct {
	Heads     int
	LNEps     float64
	Mean, Std []float32
	KeyMap    []string
}

// bindRead adds --heads (unless the command has it already, as train's
// architecture flag), --ln-eps, --mean and --std.
func (r *readFlags) bind(f *pflag.FlagSet, withHeads bool) {
	if withHeads {
		f.IntVar(&r.Heads, "heads", 0, "attention heads of a checkpoint without vitc metadata (default: its config.json's, else dim/64 as timm)")
	}
	f.Float64Var(&r.LNEps, "ln-eps", 0, "LayerNorm eps of a checkpoint without vitc metadata (default: its config.json's, else 1e-6, timm's)")
	f.Float32SliceVar(&r.Mean, "mean", nil, "input mean per channel: a checkpoint without vitc metadata's (default: its config.json's, else ImageNet's for RGB and 0.5 otherwise), or a change of a vitc checkpoint's")
	f.Float32SliceVar(&r.Std, "std", nil, "input std per channel, with --mean")
	// An array, not a slice: a regular expression may hold commas.
	f.StringArrayVar(&r.KeyMap, "key-map", nil, "rename a checkpoint's tensors without vitc metadata to timm's names: 'REGEXP=NAME' (Go syntax, ${1} for a group; empty NAME drops the tensor), repeatable, applied in order before the built-in rules for nn.MultiheadAttention, nn.TransformerEncoder and torchvision")
}

// options maps the flags onto vit.LoadOptions.
func (r *readFlags) options(preset, attention string) (vit.LoadOptions, error) {
	switch {
	case r.Heads < 0:
		return vit.LoadOptions{}, fmt.Errorf("--heads %d must be positive", r.Heads)
	case r.LNEps < 0:
		return vit.LoadOptions{}, fmt.Errorf("--ln-eps %g must be positive", r.LNEps)
	case (r.Mean == nil) != (r.Std == nil):
		return vit.LoadOptions{}, fmt.Errorf("--mean and --std go together")
	case len(r.Mean) != len(r.Std):
		return vit.LoadOptions{}, fmt.Errorf("--mean has %d values and --std %d: give one per channel", len(r.Mean), len(r.Std))
	}
	for _, rule := range r.KeyMap {
		if _, err := vit.ParseKeyRule(rule); err != nil {
			return vit.LoadOptions{}, flagError(err)
		}
	}
	return vit.LoadOptions{Preset: preset, Attention: attention, Heads: r.Heads, LNEps: r.LNEps, Mean: r.Mean, Std: r.Std, KeyMap: r.KeyMap}, nil
}

// given reports whether any flag describes a file.
func (r *readFlags) given() bool {
	return r.Heads != 0 || r.LNEps != 0 || r.Mean != nil || len(r.KeyMap) > 0
}

// factFlag names the flag that sets each fact a reader settles.
func factFlag(fact string) string {
	switch fact {
	case vit.FactHeads:
		return "--heads"
	case vit.FactLNEps:
		return "--ln-eps"
	case vit.FactNorm:
		return "--mean/--std"
	case vit.FactAttention:
		return "--attention"
	case vit.FactClassNames:
		return "--class-names"
	case vit.FactKeyMap:
		return "--key-map"
	}
	return ""
}

// notes hold the lines a command prints about what it read until its
// set-up has succeeded, so that refused input prints one line.
type notes struct {
	w   io.Writer
	buf bytes.Buffer
}

func newNotes(w io.Writer) *notes { return &notes{w: w} }

func (n *notes) printf(format string, args ...any) {
	fmt.Fprintf(&n.buf, "vitc: "+format+"\n", args...)
}

// flush prints the held lines.
func (n *notes) flush() {
	if n.w != nil {
		_, _ = n.w.Write(n.buf.Bytes())
	}
	n.buf.Reset()
}

// openCheckpoint reads path the one way every command does and notes one
// line saying what was read and what was assumed, labelled with its role
// ("checkpoint", "init", "teacher", ...).
func openCheckpoint(role, path string, opts vit.LoadOptions, n *notes) (*vit.Checkpoint, error) {
	c, err := vit.Open(path, opts)
	if err != nil {
		return nil, flagError(err)
	}
	if n != nil {
		n.printf("%s %s", role, c.Describe(factFlag))
	}
	return c, nil
}

// openSecond reads another checkpoint of the same command (a teacher beside
// an --init, a student beside a teacher): the same file as first gives the
// same checkpoint; another file is read with the same flags where it has no
// vitc metadata (a vitc file keeps what it records).
func openSecond(role, path string, first *vit.Checkpoint, opts vit.LoadOptions, n *notes) (*vit.Checkpoint, error) {
	if first != nil && samePath(path, first.Path) {
		if n != nil {
			n.printf("%s %s: the same file as %s, read the same way", role, path, first.Path)
		}
		return first, nil
	}
	opts.BareOnly = true
	return openCheckpoint(role, path, opts, n)
}

// samePath says whether two paths name the same file (a folder and the
// model.safetensors or pytorch_model.bin in it count as the same).
func samePath(a, b string) bool {
	clean := func(p string) string {
		p, _ = filepath.Abs(p)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			p = filepath.Join(p, "model.safetensors")
			if _, err := os.Stat(p); err != nil {
				// transformers' older weights file (vit.Open's order)
				p = filepath.Join(filepath.Dir(p), "pytorch_model.bin")
			}
		}
		return filepath.Clean(p)
	}
	return clean(a) == clean(b)
}

// checkpointFlags are the commands that read one model: the file, and how
// to read it.
type checkpointFlags struct {
	Checkpoint string
	Model      string
	Attention  string
	readFlags
	cmd   *cobra.Command
	notes *notes
}

func (c *checkpointFlags) bind(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&c.Checkpoint, "checkpoint", "", "model checkpoint: a .safetensors or torch.save (.pth/.pt/.bin) file, or a folder holding model.safetensors or pytorch_model.bin (and a config.json)")
	f.StringVar(&c.Model, "model", "", "preset body of a checkpoint without vitc metadata (default: read the architecture from its tensors)")
	f.StringVar(&c.Attention, "attention", "", "attention kind: of a checkpoint without vitc metadata (default softmax), or a change of a vitc checkpoint's")
	c.readFlags.bind(f, true)
	_ = cmd.MarkFlagRequired("checkpoint")
	c.cmd = cmd
}

// open reads --checkpoint; its line waits in c.notes until flushed.
func (c *checkpointFlags) open() (*vit.Checkpoint, error) {
	if c.Model != "" {
		if _, err := vit.Preset(c.Model); err != nil {
			return nil, fmt.Errorf("--model: %w", err)
		}
	}
	opts, err := c.readFlags.options(c.Model, c.Attention)
	if err != nil {
		return nil, err
	}
	c.notes = newNotes(c.cmd.ErrOrStderr())
	return openCheckpoint("checkpoint", c.Checkpoint, opts, c.notes)
}

// load reads --checkpoint and builds its model.
func (c *checkpointFlags) load() (*vit.Model, vit.Meta, *vit.Checkpoint, error) {
	ck, err := c.open()
	if err != nil {
		return nil, vit.Meta{}, nil, err
	}
	m, err := ck.Model()
	if err != nil {
		return nil, vit.Meta{}, nil, err
	}
	return m, ck.Meta, ck, nil
}

// flagError names the flag where a library error names an option.
func flagError(err error) error {
	var ce *vit.ConflictError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		flag := map[string]string{"Heads": "--heads", "LNEps": "--ln-eps"}[ce.Option]
		return fmt.Errorf("%s %s: %s records %s (the flag describes checkpoints without vitc metadata)", flag, ce.Given, ce.Path, ce.Records)
	}
	var oe *opterr.Error
	if errors.As(err, &oe) {
		if flag, ok := optionFlags[oe.Option]; ok {
			return oe.With(flag)
		}
	}
	return err
}

// optionFlags name the flag of each library option an opterr.Error asks for.
var optionFlags = map[string]string{
	"LoadOptions.Heads":           "--heads N",
	"LoadOptions.KeyMap":          "--key-map",
	"Options.ImageSize":           "--image-size N",
	"Options.SkipBadImages":       "--skip-bad-images",
	"FitOptions.Adapt":            "--adapt-data",
	"datasets.Options.ClassNames": "--class-names",
	"Distill.AllowWeakTeacher":    "--allow-weak-teacher",
}

// statsFor returns the normalisation a model was trained with, or the
// given data's own statistics for a checkpoint that recorded none.
func statsFor(meta vit.Meta, ds *datasets.Dataset) datasets.Stats {
	if len(meta.NormMean) > 0 {
		return datasets.Stats{Mean: meta.NormMean, Std: meta.NormStd}
	}
	if ds != nil {
		return datasets.ComputeStats(ds)
	}
	return datasets.Stats{}
}

// checkHeads refuses a file whose head count was assumed when another
// scores clearly better on the test split of ds (vit.CheckAssumedHeads);
// when it holds, the scores are noted.
func checkHeads(role string, ck *vit.Checkpoint, ds *datasets.Dataset, n *notes) error {
	scores, err := vit.CheckAssumedHeads(ck, ds, &ds.Test, statsFor(ck.Meta, ds))
	if err != nil {
		return flagError(err)
	}
	if len(scores) > 1 {
		parts := make([]string, len(scores))
		for i, s := range scores {
			parts[i] = fmt.Sprintf("%d heads %.1f%%", s.Heads, 100*s.Accuracy)
		}
		n.printf("%s %s: its head count was assumed; on test images %s", role, ck.Path, strings.Join(parts, ", "))
	}
	return nil
}
