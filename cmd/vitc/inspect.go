package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"vitc/blockprune"
	"vitc/export/bundle"
	"vitc/vit"
)

type inspectOptions struct {
	Path      string
	Model     string
	Attention string
	JSON      bool
	readFlags
}

func newInspectCmd() *cobra.Command {
	o := &inspectOptions{}
	cmd := &cobra.Command{
		Use:   "inspect FILE|BUNDLE",
		Short: "Summarise a checkpoint (architecture, parameters, FLOPs) or an export bundle (verified)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Path = args[0]
			return runInspect(o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Model, "model", "", "preset of a checkpoint without vitc metadata")
	f.StringVar(&o.Attention, "attention", "", "attention kind of a checkpoint without vitc metadata")
	f.BoolVar(&o.JSON, "json", false, "print one JSON object")
	o.readFlags.bind(f, true)
	return cmd
}

type inspectReport struct {
	Path string `json:"path"`
	// Facts say how the architecture, normalisation and names were
	// settled (a file without vitc metadata: from its tensors, a
	// config.json, flags or timm's defaults).
	Facts         []vit.Fact `json:"facts"`
	Config        vit.Config `json:"config"`
	Params        int        `json:"params"`
	FLOPsPerImage int64      `json:"flops_per_image"`
	Dataset       string     `json:"dataset,omitempty"`
	Classes       []string   `json:"class_names,omitempty"`
}

func runInspect(o *inspectOptions, stdout, stderr io.Writer) error {
	if isBundle(o.Path) {
		return runInspectBundle(o, stdout)
	}
	if o.Model != "" {
		if _, err := vit.Preset(o.Model); err != nil {
			return fmt.Errorf("--model: %w", err)
		}
	}
	opts, err := o.readFlags.options(o.Model, o.Attention)
	if err != nil {
		return err
	}
	n := newNotes(stderr)
	ck, err := openCheckpoint("checkpoint", o.Path, opts, n)
	if err != nil {
		return err
	}
	m, err := ck.Model()
	if err != nil {
		return err
	}
	meta := ck.Meta
	n.flush()
	rep := inspectReport{Path: ck.Path, Facts: ck.Facts, Config: m.Config, Params: m.Params.Count(), FLOPsPerImage: m.FLOPs(),
		Dataset: meta.Dataset, Classes: meta.ClassNames}
	// A block-pruned checkpoint's FLOPs skip its pruned blocks.
	masks, pruned, err := blockprune.ReadExtension(meta)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", o.Path, err)
	}
	if pruned {
		rep.FLOPsPerImage = m.SparseFLOPs(masks.DensityOf)
	}
	if o.JSON {
		return printJSON(stdout, rep)
	}
	c := m.Config
	fmt.Fprintf(stdout, "%s\n", ck.Path)
	fmt.Fprintf(stdout, "  architecture  ViT: %dx%dx%d input, patch %d (%d tokens), dim %d, depth %d, heads %d, mlp %d\n",
		c.Channels, c.Image, c.Image, c.Patch, c.Tokens(), c.Dim, c.Depth, c.Heads, c.Hidden())
	switch {
	case c.DistHead:
		fmt.Fprintf(stdout, "  deit          distillation token after the cls token; logits: mean of head and head_dist\n")
	case c.DistToken:
		fmt.Fprintf(stdout, "  deit          distillation token after the cls token; logits: head on the cls token\n")
	}
	fmt.Fprintf(stdout, "  attention     %s\n", c.Attention)
	fmt.Fprintf(stdout, "  layernorm eps %g\n", c.Eps())
	if len(meta.NormMean) > 0 {
		fmt.Fprintf(stdout, "  normalisation mean %s std %s\n", floatList(meta.NormMean), floatList(meta.NormStd))
	}
	fmt.Fprintf(stdout, "  classes       %d\n", c.Classes)
	fmt.Fprintf(stdout, "  parameters    %d (%.2f M)\n", rep.Params, float64(rep.Params)/1e6)
	fmt.Fprintf(stdout, "  FLOPs/image   %d (%.3f GFLOPs)\n", rep.FLOPsPerImage, float64(rep.FLOPsPerImage)/1e9)
	if c.LayerHeads != nil {
		fmt.Fprintf(stdout, "  pruned        heads per block %v, MLP units per block %v\n", c.LayerHeads, c.LayerHidden)
	}
	if pruned {
		fmt.Fprintf(stdout, "  block masks   %d×%d blocks in %d matrices, %d weights in pruned blocks\n", masks.Block, masks.Block, len(masks.Masks), masks.PrunedValues())
	}
	if len(c.TokenLayers) > 0 {
		tokens := make([]int, c.Depth)
		for i := range tokens {
			_, tokens[i] = c.TokensAt(i)
		}
		fmt.Fprintf(stdout, "  token pruning keep %.3g after blocks %v: tokens per block %v\n", c.TokenKeep, c.TokenLayers, tokens)
	}
	if len(meta.ClassNames) > 0 {
		fmt.Fprintf(stdout, "  class names   %s\n", strings.Join(meta.ClassNames, ", "))
	}
	if meta.Dataset != "" {
		acc := ""
		if meta.TestAccuracy > 0 {
			acc = fmt.Sprintf(" (%.2f%% test accuracy)", 100*meta.TestAccuracy)
		}
		fmt.Fprintf(stdout, "  trained on    %s%s\n", meta.Dataset, acc)
	}
	return nil
}

// isBundle says whether path is an export bundle (a folder with a bundle
// manifest) rather than a checkpoint or a folder holding one.
func isBundle(path string) bool {
	st, err := os.Stat(path)
	if err != nil || !st.IsDir() {
		return false
	}
	for _, f := range []string{bundle.ManifestFile, bundle.SumsFile} {
		if _, err := os.Stat(filepath.Join(path, f)); err == nil {
			return true
		}
	}
	return false
}

// floatList prints statistics rounded, as people read them.
func floatList(v []float32) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatFloat(float64(x), 'g', 4, 32)
	}
	return "[" + strings.Join(parts, " ") + "]"
}
