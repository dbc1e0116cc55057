package vit

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"vitc/datasets"
	"vitc/internal/opterr"
)

// ErrWrongHeads: a file's head count was assumed (timm's dim/64) and
// another head count scores clearly better on the data at hand. The tensors
// of a ViT cannot tell its head count, but its accuracy can: a published
// model read with the wrong one loses tens of points, silently.
var ErrWrongHeads = errors.New("the assumed head count scores clearly worse than another")

// HeadScore is a head count's top-1 on the probe images.
type HeadScore struct {
	Heads    int     `json:"heads"`
	Accuracy float64 `json:"accuracy"`
}

// probeImages caps the images a probe scores: enough to tell a right head
// count from a wrong one (tens of points apart), cheap at any model size.
const probeImages = 256

// probeMargin is how much better another head count must score to count as
// clearly better: well above the noise of a few hundred images.
const probeMargin = 0.05

// headWidths are the per-head widths published ViTs use.
var headWidths = []int{16, 24, 32, 48, 64, 80, 96, 128}

// CheckAssumedHeads scores c's model with each plausible head count on up
// to probeImages images of split (normalised with stats) when c's head
// count was assumed, and refuses it when another scores clearly better.
// The scores are returned either way (nil: nothing was assumed).
func CheckAssumedHeads(c *Checkpoint, ds *datasets.Dataset, split *datasets.Split, stats datasets.Stats) ([]HeadScore, error) {
	if !c.Bare || !slices.ContainsFunc(c.Facts, func(f Fact) bool { return f.Name == FactHeads && f.From == FromDefault }) {
		return nil, nil
	}
	n := min(split.Len(), probeImages)
	if n == 0 {
		return nil, nil
	}
	// Evenly spaced through the split: splits are often stored class by
	// class, and the first images alone would be one or two classes.
	chw := ds.C * ds.H * ds.W
	sub := datasets.Split{X: make([]float32, n*chw), Y: make([]int, 0, n)}
	for k := range n {
		i := k * split.Len() / n
		ds.Image(split, i, sub.X[k*chw:(k+1)*chw])
		sub.Y = append(sub.Y, split.Y[i])
	}
	x, y, n := datasets.NewLoader(ds, &sub, datasets.LoaderOptions{Batch: n, Stats: stats}).Batch(0, 0)
	var scores []HeadScore
	for _, w := range headWidths {
		if c.Config.Dim%w != 0 {
			continue
		}
		cfg := c.Config
		cfg.Heads = c.Config.Dim / w
		m, err := New(cfg, 0)
		if err != nil {
			continue
		}
		if err := m.loadTensors(c.file, absentQKVBias(c.file)); err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", c.Path, err)
		}
		logits := Predict(m, x, n, 64)
		correct := 0
		for i := range n {
			if Argmax(logits[i*cfg.Classes:(i+1)*cfg.Classes]) == y[i] {
				correct++
			}
		}
		scores = append(scores, HeadScore{Heads: cfg.Heads, Accuracy: float64(correct) / float64(n)})
	}
	assumed, best := HeadScore{}, HeadScore{}
	for _, s := range scores {
		if s.Heads == c.Config.Heads {
			assumed = s
		}
		if s.Accuracy > best.Accuracy {
			best = s
		}
	}
	if best.Accuracy > assumed.Accuracy+probeMargin {
		// All the scores: neighbouring counts can score alike (a head split
		// in two often still works), so the best is a hint, not an answer.
		parts := make([]string, len(scores))
		for i, s := range scores {
			parts[i] = fmt.Sprintf("%d heads %.1f%%", s.Heads, 100*s.Accuracy)
		}
		return scores, &opterr.Error{What: fmt.Sprintf("checkpoint %s: its head count was assumed (%d, timm's dim/64), which scores clearly worse than another on %d test images (%s)",
			c.Path, c.Config.Heads, n, strings.Join(parts, ", ")), Advice: "give the head count it was trained with %s", Option: "LoadOptions.Heads", Kind: ErrWrongHeads}
	}
	return scores, nil
}
