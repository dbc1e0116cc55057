package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"vitc/datasets"
	"vitc/internal/npy"
	"vitc/vit"
)

type predictOptions struct {
	checkpointFlags
	Input  string
	Output string
	Batch  int
	TopK   int
	JSON   bool
}

func newPredictCmd() *cobra.Command {
	o := &predictOptions{}
	cmd := &cobra.Command{
		Use:   "predict",
		Short: "Classify images, or write a model's logits for a .npy batch, an image file or a folder of images",
		Long: `Print the top classes (names and probabilities) of each input, and with
--output write float32 logits [B, classes] as .npy. --input is a .npy float32
[B,C,H,W] of already-normalised model input, or a PNG/JPEG file or a folder of
them (sorted by name), resized as eval does (shorter side to size/0.875, centre
crop) when not the model's size, and normalised with the checkpoint's statistics.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPredict(o, cmd.OutOrStdout())
		},
	}
	o.checkpointFlags.bind(cmd)
	f := cmd.Flags()
	f.StringVar(&o.Input, "input", "", "input .npy, image file or folder of images")
	f.StringVar(&o.Output, "output", "", "output .npy of logits (default: print the top classes only)")
	f.IntVar(&o.Batch, "batch", 64, "batch size")
	f.IntVar(&o.TopK, "topk", 5, "classes printed per input (0: none)")
	f.BoolVar(&o.JSON, "json", false, "print the top classes as one JSON object")
	_ = cmd.MarkFlagRequired("input")
	return cmd
}

func runPredict(o *predictOptions, stdout io.Writer) error {
	if o.TopK < 0 {
		return fmt.Errorf("--topk %d must not be negative", o.TopK)
	}
	m, meta, _, err := o.load()
	if err != nil {
		return err
	}
	x, names, err := readModelInput(o.Input, m, meta, o.notes)
	if err != nil {
		return err
	}
	o.notes.flush()
	n := len(names)
	logits := vit.Predict(m, x, n, max(1, o.Batch))
	if o.Output != "" {
		if err := npy.WriteFile(o.Output, logits, []int{n, m.Classes}); err != nil {
			return err
		}
		if !o.JSON {
			fmt.Fprintf(stdout, "wrote logits [%d, %d] to %s\n", n, m.Classes, o.Output)
		}
	}
	if o.TopK == 0 && !o.JSON {
		return nil
	}
	preds := topClasses(logits, names, m.Classes, min(o.TopK, m.Classes), meta.ClassNames)
	if o.JSON {
		return printJSON(stdout, struct {
			Predictions []prediction `json:"predictions"`
		}{preds})
	}
	for _, p := range preds {
		fmt.Fprintf(stdout, "%s\n", p.Input)
		for _, c := range p.Top {
			fmt.Fprintf(stdout, "  %6.2f%%  %s\n", 100*c.Prob, c.Name)
		}
	}
	return nil
}

type prediction struct {
	Input string       `json:"input"`
	Top   []classScore `json:"top"`
}

type classScore struct {
	Class int     `json:"class"`
	Name  string  `json:"name"`
	Prob  float64 `json:"prob"`
}

// topClasses turns each row of logits (n, classes) into its k most
// probable classes (softmax), named from the checkpoint when it has names.
func topClasses(logits []float32, inputs []string, classes, k int, names []string) []prediction {
	out := make([]prediction, len(inputs))
	for r, in := range inputs {
		row := logits[r*classes : (r+1)*classes]
		mx := float64(row[0])
		for _, v := range row {
			mx = math.Max(mx, float64(v))
		}
		var sum float64
		p := make([]float64, classes)
		for i, v := range row {
			p[i] = math.Exp(float64(v) - mx)
			sum += p[i]
		}
		idx := make([]int, classes)
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return p[idx[a]] > p[idx[b]] })
		out[r].Input = in
		out[r].Top = []classScore{}
		for _, c := range idx[:k] {
			name := fmt.Sprint(c)
			if c < len(names) {
				name = names[c]
			}
			out[r].Top = append(out[r].Top, classScore{Class: c, Name: name, Prob: p[c] / sum})
		}
	}
	return out
}

// readModelInput returns n normalised images (n, C, H, W) for the model and
// a label for each (its file, or its index in a .npy batch). The
// conversions a photo needed (channels, size) go to n, one line for all the
// inputs that needed the same.
func readModelInput(path string, m *vit.Model, meta vit.Meta, n *notes) ([]float32, []string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("input %s: %w", path, err)
	}
	c, s := m.Channels, m.Image
	if strings.EqualFold(filepath.Ext(path), ".npy") {
		data, shape, err := npy.ReadFile(path)
		if err != nil {
			return nil, nil, err
		}
		if len(shape) != 4 || shape[1] != c || shape[2] != s || shape[3] != s {
			return nil, nil, fmt.Errorf("input %s has shape %v, the model takes [B, %d, %d, %d]", path, shape, c, s, s)
		}
		labels := make([]string, shape[0])
		for i := range labels {
			labels[i] = fmt.Sprintf("%s[%d]", path, i)
		}
		return data, labels, nil
	}
	files := []string{path}
	if st.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, nil, err
		}
		files = files[:0]
		for _, e := range entries {
			switch strings.ToLower(filepath.Ext(e.Name())) {
			case ".png", ".jpg", ".jpeg":
				files = append(files, filepath.Join(path, e.Name()))
			}
		}
		sort.Strings(files)
		if len(files) == 0 {
			return nil, nil, fmt.Errorf("input folder %s has no .png or .jpg images", path)
		}
	}
	stats := statsFor(meta, nil)
	x := make([]float32, 0, len(files)*c*s*s)
	var conversions []string // in order of first use
	count := map[string]int{}
	example := map[string]string{}
	for _, f := range files {
		im, err := datasets.LoadImage(f)
		if err != nil {
			return nil, nil, err
		}
		for _, cv := range photoConversions(im, c, s) {
			if count[cv] == 0 {
				conversions = append(conversions, cv)
				example[cv] = f
			}
			count[cv]++
		}
		x = append(x, im.EvalResize(s, datasets.DefaultCropPct).Channels(c)...)
	}
	for _, cv := range conversions {
		if count[cv] == 1 {
			n.printf("%s: %s", example[cv], cv)
		} else {
			n.printf("%d of the %d images (e.g. %s): %s", count[cv], len(files), example[cv], cv)
		}
	}
	if len(stats.Mean) > 0 {
		n.printf("normalised with mean %s std %s (the checkpoint's)", floatList(stats.Mean), floatList(stats.Std))
	}
	stats.Normalize(x, c, s, s)
	return x, files, nil
}

// photoConversions says what a photo goes through to become the model's
// input: its colours, then its size (timm's eval transform).
func photoConversions(im datasets.Image, c, s int) []string {
	var out []string
	switch {
	case im.C == 3 && c == 1:
		out = append(out, "colour photo turned grey (luma), the model takes 1 channel")
	case im.C == 1 && c == 3:
		out = append(out, "grey image repeated over 3 channels, the model takes RGB")
	}
	if im.H != s || im.W != s {
		short := int(float64(s) / datasets.DefaultCropPct)
		out = append(out, fmt.Sprintf("resized from %d×%d to %d×%d (shorter side to %d, centre crop)", im.W, im.H, s, s, short))
	}
	return out
}
