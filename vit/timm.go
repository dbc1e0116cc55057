package vit

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"vitc/internal/safetensors"
)

// Normalisation timm's pretrained configs use when a file records none:
// ImageNet's statistics for RGB models, (0.5, 0.5) otherwise (timm's
// IMAGENET_INCEPTION_MEAN/STD, the usual choice for grey or other inputs).
var (
	ImageNetMean = []float32{0.485, 0.456, 0.406}
	ImageNetStd  = []float32{0.229, 0.224, 0.225}
)

// timmHeadWidth is the head width every timm ViT/DeiT preset uses
// (tiny 192/3, small 384/6, base 768/12, large 1024/16): the head count a
// file cannot tell defaults to dim/64.
const timmHeadWidth = 64

// timmTensor matches the tensor names vitc's model has; anything else in a
// file is a part of the architecture vitc cannot represent.
var timmTensor = regexp.MustCompile(`^(patch_embed\.proj\.(weight|bias)|cls_token|dist_token|pos_embed|` +
	`blocks\.\d+\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias)|norm\.(weight|bias)|head(_dist)?\.(weight|bias))$`)

// unsupportedWhy explains, by a substring of the tensor name, why a known
// timm extension is refused.
var unsupportedWhy = []struct{ sub, why string }{
	{"reg_token", "register tokens"},
	{"ls1", "layer scale"},
	{"ls2", "layer scale"},
	{"gamma", "layer scale"},
	{"relative_position", "relative position bias"},
	{"fc_norm", "global-pool norm (fc_norm): vitc classifies from the cls token"},
	{"q_norm", "qk-norm"},
	{"k_norm", "qk-norm"},
	{"q_bias", "split q/v biases (BEiT)"},
	{"v_bias", "split q/v biases (BEiT)"},
	{"attn_pool", "attention pooling"},
	{"norm_pre", "a pre-norm before the blocks"},
	{"patch_embed.norm", "a patch-embedding norm"},
	{"pre_logits", "a pre-logits layer"},
	{"head.fc", "a head with hidden layers"},
}

// ErrNeedHeads: the file's dim is no multiple of 64, so timm's default head
// count does not apply and LoadOptions.Heads must give it.
var ErrNeedHeads = errors.New("the head count must be given")

// UnsupportedError names the first tensor of a file that vitc's ViT has no
// place for.
type UnsupportedError struct {
	Path, Tensor, Why string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("checkpoint %s: tensor %s (%s) is not supported by vitc's ViT", e.Path, e.Tensor, e.Why)
}

// inferConfig reads a metadata-less timm ViT's body from its tensor shapes
// (not the heads, eps or attention: the caller settles those). A file
// without a head gives Classes 0: it can only initialise a model.
func inferConfig(path string, f *safetensors.File) (Config, error) {
	names := make([]string, 0, len(f.Tensors))
	for _, t := range f.Tensors {
		names = append(names, t.Name)
	}
	sort.Strings(names)
	for _, n := range names {
		if timmTensor.MatchString(n) {
			continue
		}
		why := "not part of a timm ViT"
		for _, u := range unsupportedWhy {
			if strings.Contains(n, u.sub) {
				why = u.why
				break
			}
		}
		return Config{}, &UnsupportedError{Path: path, Tensor: n, Why: why}
	}
	bad := func(format string, args ...any) (Config, error) {
		return Config{}, fmt.Errorf("checkpoint %s: %s", path, fmt.Sprintf(format, args...))
	}
	shape := func(name string, rank int) []int {
		if t, ok := f.Lookup(name); ok && len(t.Shape) == rank {
			return t.Shape
		}
		return nil
	}

	pw := shape("patch_embed.proj.weight", 4) // (D, C, p, p)
	if pw == nil || pw[2] != pw[3] {
		return bad("no square patch_embed.proj.weight [dim, channels, patch, patch]: not a timm ViT")
	}
	cfg := Config{Dim: pw[0], Channels: pw[1], Patch: pw[2]}
	if shape("cls_token", 3) == nil {
		return bad("no cls_token: vitc classifies from the cls token")
	}
	// A distilled DeiT: dist_token after the cls token, and maybe head_dist.
	cfg.DistToken = shape("dist_token", 3) != nil
	_, cfg.DistHead = f.Lookup("head_dist.weight")
	if cfg.DistHead && !cfg.DistToken {
		return bad("head_dist without dist_token")
	}
	extra, what := 1, "a cls token" // tokens before the patches
	if cfg.DistToken {
		extra, what = 2, "the cls and distillation tokens"
	}
	pe := shape("pos_embed", 3) // (1, extra+side², D)
	if pe == nil {
		return bad("no pos_embed [1, tokens, dim]")
	}
	side := isqrt(pe[1] - extra)
	if side*side != pe[1]-extra {
		return bad("pos_embed holds %d tokens: not %s and a square patch grid", pe[1], what)
	}
	cfg.Image = side * cfg.Patch

	for shape(fmt.Sprintf("blocks.%d.norm1.weight", cfg.Depth), 1) != nil {
		cfg.Depth++
	}
	if cfg.Depth == 0 {
		return bad("no blocks.0.norm1.weight: no transformer blocks")
	}
	for _, n := range names {
		if rest, ok := strings.CutPrefix(n, "blocks."); ok {
			i, err := strconv.Atoi(rest[:strings.IndexByte(rest, '.')])
			if err != nil || i >= cfg.Depth {
				return bad("tensor %s, but blocks.%d is missing", n, cfg.Depth)
			}
		}
	}
	hidden := make([]int, cfg.Depth)
	for i := range hidden {
		fc1 := shape(fmt.Sprintf("blocks.%d.mlp.fc1.weight", i), 2) // (hidden, D)
		if fc1 == nil {
			return bad("no blocks.%d.mlp.fc1.weight [hidden, dim]", i)
		}
		hidden[i] = fc1[0]
	}
	cfg.MLPRatio = float64(hidden[0]) / float64(cfg.Dim)
	if cfg.Hidden() != hidden[0] {
		return bad("MLP width %d is not int(dim·ratio) for any ratio vitc can store", hidden[0])
	}
	for _, h := range hidden {
		if h != hidden[0] {
			// A pruned model written without metadata: per-block widths.
			cfg.LayerHidden = hidden
			cfg.MLPRatio = float64(maxInt(hidden)) / float64(cfg.Dim)
			if cfg.Hidden() != maxInt(hidden) {
				return bad("MLP width %d is not int(dim·ratio) for any ratio vitc can store", maxInt(hidden))
			}
			break
		}
	}
	if hw := shape("head.weight", 2); hw != nil {
		cfg.Classes = hw[0]
	} else if _, ok := f.Lookup("head.bias"); ok {
		return bad("head.bias without head.weight")
	}
	if shape("norm.weight", 1) == nil {
		return bad("no final norm.weight")
	}

	return cfg, nil
}

// DefaultNorm is the normalisation timm assumes for a model with c input
// channels when its pretrained config is unknown.
func DefaultNorm(c int) (mean, std []float32) {
	if c == 3 {
		return append([]float32(nil), ImageNetMean...), append([]float32(nil), ImageNetStd...)
	}
	mean, std = make([]float32, c), make([]float32, c)
	for i := range mean {
		mean[i], std[i] = 0.5, 0.5
	}
	return mean, std
}

// checkNorm validates given statistics (both or neither, one value per
// channel, positive std).
func checkNorm(m Meta, c int) error {
	if m.NormMean == nil && m.NormStd == nil {
		return nil
	}
	if len(m.NormMean) != c || len(m.NormStd) != c {
		return fmt.Errorf("normalisation: mean has %d and std %d values, the model has %d channels", len(m.NormMean), len(m.NormStd), c)
	}
	for _, s := range m.NormStd {
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return fmt.Errorf("normalisation: std %v must be positive", m.NormStd)
		}
	}
	return nil
}

func maxInt(xs []int) int {
	m := xs[0]
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
