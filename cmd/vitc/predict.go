package main

import (
	"fmt"
	"io"
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
}

func newPredictCmd() *cobra.Command {
	o := &predictOptions{}
	cmd := &cobra.Command{
		Use:   "predict",
		Short: "Write a model's logits for a .npy batch, an image file or a folder of images",
		Long: `Write float32 logits [B, classes] as .npy. --input is a .npy float32
[B,C,H,W] of already-normalised model input, or a PNG/JPEG file or a folder of
them (sorted by name), normalised with the checkpoint's statistics.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPredict(o, cmd.OutOrStdout())
		},
	}
	o.bind(cmd)
	f := cmd.Flags()
	f.StringVar(&o.Input, "input", "", "input .npy, image file or folder of images")
	f.StringVar(&o.Output, "output", "", "output .npy of logits")
	f.IntVar(&o.Batch, "batch", 64, "batch size")
	_ = cmd.MarkFlagRequired("input")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

func runPredict(o *predictOptions, stdout io.Writer) error {
	m, meta, err := o.load()
	if err != nil {
		return err
	}
	x, n, err := readModelInput(o.Input, m, meta)
	if err != nil {
		return err
	}
	logits := vit.Predict(m, x, n, max(1, o.Batch))
	if err := npy.WriteFile(o.Output, logits, []int{n, m.Classes}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote logits [%d, %d] to %s\n", n, m.Classes, o.Output)
	return nil
}

// readModelInput returns n normalised images (n, C, H, W) for the model.
func readModelInput(path string, m *vit.Model, meta vit.Meta) ([]float32, int, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, 0, fmt.Errorf("input %s: %w", path, err)
	}
	c, s := m.Channels, m.Image
	if strings.EqualFold(filepath.Ext(path), ".npy") {
		data, shape, err := npy.ReadFile(path)
		if err != nil {
			return nil, 0, err
		}
		if len(shape) != 4 || shape[1] != c || shape[2] != s || shape[3] != s {
			return nil, 0, fmt.Errorf("input %s has shape %v, the model takes [B, %d, %d, %d]", path, shape, c, s, s)
		}
		return data, shape[0], nil
	}
	files := []string{path}
	if st.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, 0, err
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
			return nil, 0, fmt.Errorf("input folder %s has no .png or .jpg images", path)
		}
	}
	stats := statsFor(meta, nil)
	x := make([]float32, 0, len(files)*c*s*s)
	for _, f := range files {
		im, err := datasets.LoadImage(f)
		if err != nil {
			return nil, 0, err
		}
		if im.H != s || im.W != s {
			return nil, 0, fmt.Errorf("image %s is %dx%d, the model takes %dx%d", f, im.W, im.H, s, s)
		}
		x = append(x, im.Channels(c)...)
	}
	stats.Normalize(x, c, s, s)
	return x, len(files), nil
}
