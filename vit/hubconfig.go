package vit

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The files a model hub publishes beside the weights: timm's config.json
// (architecture, num_classes, label_names, model_args, pretrained_cfg) or
// Hugging Face's (hidden_size, num_attention_heads, layer_norm_eps,
// id2label, ...) with its preprocessor_config.json (image_mean, image_std).
const (
	HubConfigFile    = "config.json"
	hubPreprocessor  = "preprocessor_config.json"
	hubWeightsFile   = "model.safetensors"
	hubTorchWeights  = "pytorch_model.bin"
	maxHubConfigSize = 1 << 20
)

// hubConfig is what vitc reads from those files; zero values are absent.
type hubConfig struct {
	path string

	// timm
	Architecture string   `json:"architecture"`
	NumClasses   int      `json:"num_classes"`
	LabelNames   []string `json:"label_names"`
	ModelArgs    struct {
		EmbedDim  int     `json:"embed_dim"`
		Depth     int     `json:"depth"`
		NumHeads  int     `json:"num_heads"`
		MLPRatio  float64 `json:"mlp_ratio"`
		PatchSize int     `json:"patch_size"`
		ImgSize   int     `json:"img_size"`
		InChans   int     `json:"in_chans"`
	} `json:"model_args"`
	PretrainedCfg struct {
		InputSize  []int     `json:"input_size"`
		Mean       []float32 `json:"mean"`
		Std        []float32 `json:"std"`
		NumClasses int       `json:"num_classes"`
	} `json:"pretrained_cfg"`

	// Hugging Face transformers
	HiddenSize        int               `json:"hidden_size"`
	NumHiddenLayers   int               `json:"num_hidden_layers"`
	NumAttentionHeads int               `json:"num_attention_heads"`
	IntermediateSize  int               `json:"intermediate_size"`
	LayerNormEps      float64           `json:"layer_norm_eps"`
	ImageSize         int               `json:"image_size"`
	PatchSize         int               `json:"patch_size"`
	NumChannels       int               `json:"num_channels"`
	ID2Label          map[string]string `json:"id2label"`
	ModelType         string            `json:"model_type"`
	HiddenAct         string            `json:"hidden_act"`
	QKVBias           *bool             `json:"qkv_bias"`

	mean, std []float32 // the normalisation, from whichever file gives it
}

// locate resolves path to the weights file and the hub config beside it
// (nil: none). A folder must hold model.safetensors or exactly one
// .safetensors file.
func locate(path string) (string, *hubConfig, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", nil, err
	}
	dir, file := filepath.Dir(path), path
	if st.IsDir() {
		dir = path
		file = ""
		// The hub's names first (transformers wrote pytorch_model.bin before
		// safetensors), then a folder's only weights file of either format.
		for _, name := range []string{hubWeightsFile, hubTorchWeights} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				file = filepath.Join(dir, name)
				break
			}
		}
		if file == "" {
			var matches []string
			for _, ext := range []string{"*.safetensors", "*.pth", "*.pt", "*.bin"} {
				m, _ := filepath.Glob(filepath.Join(dir, ext))
				matches = append(matches, m...)
			}
			if len(matches) != 1 {
				return "", nil, fmt.Errorf("checkpoint folder %s: no %s or %s, and %d other weights files (.safetensors, .pth, .pt, .bin)", path, hubWeightsFile, hubTorchWeights, len(matches))
			}
			file = matches[0]
		}
	}
	hub, err := readHubConfig(dir)
	if err != nil {
		return "", nil, err
	}
	return file, hub, nil
}

// readHubConfig reads dir's config.json and preprocessor_config.json (nil,
// nil when there is neither).
func readHubConfig(dir string) (*hubConfig, error) {
	read := func(name string) ([]byte, error) {
		p := filepath.Join(dir, name)
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxHubConfigSize+1))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		if len(b) > maxHubConfigSize {
			return nil, fmt.Errorf("%s: larger than %d bytes: not a model config", p, maxHubConfigSize)
		}
		return b, nil
	}
	cfg, err := read(HubConfigFile)
	if err != nil {
		return nil, err
	}
	pre, err := read(hubPreprocessor)
	if err != nil {
		return nil, err
	}
	return parseHubConfig(dir, cfg, pre)
}

// parseHubConfig decodes the two files' contents (nil: absent).
func parseHubConfig(dir string, cfg, pre []byte) (*hubConfig, error) {
	if cfg == nil && pre == nil {
		return nil, nil
	}
	h := &hubConfig{path: filepath.Join(dir, HubConfigFile)}
	if cfg == nil {
		h.path = filepath.Join(dir, hubPreprocessor)
	} else if err := json.Unmarshal(cfg, h); err != nil {
		return nil, fmt.Errorf("%s: %v", filepath.Join(dir, HubConfigFile), err)
	}
	var p struct {
		ImageMean []float32 `json:"image_mean"`
		ImageStd  []float32 `json:"image_std"`
	}
	if pre != nil {
		if err := json.Unmarshal(pre, &p); err != nil {
			return nil, fmt.Errorf("%s: %v", filepath.Join(dir, hubPreprocessor), err)
		}
	}
	switch {
	case len(h.PretrainedCfg.Mean) > 0:
		h.mean, h.std = h.PretrainedCfg.Mean, h.PretrainedCfg.Std
	case len(p.ImageMean) > 0:
		h.mean, h.std = p.ImageMean, p.ImageStd
	}
	if len(h.mean) != len(h.std) {
		return nil, fmt.Errorf("%s: %d means and %d stds", h.path, len(h.mean), len(h.std))
	}
	for _, s := range h.std {
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return nil, fmt.Errorf("%s: std %v must be positive", h.path, h.std)
		}
	}
	if h.LayerNormEps < 0 || h.LayerNormEps > 1 || math.IsNaN(h.LayerNormEps) {
		return nil, fmt.Errorf("%s: layer_norm_eps %g is not in [0, 1]", h.path, h.LayerNormEps)
	}
	if h.heads() < 0 {
		return nil, fmt.Errorf("%s: %d attention heads", h.path, h.heads())
	}
	return h, nil
}

func (h *hubConfig) heads() int {
	if h == nil {
		return 0
	}
	return cmp.Or(h.ModelArgs.NumHeads, h.NumAttentionHeads)
}

func (h *hubConfig) eps() float64 {
	if h == nil {
		return 0
	}
	return h.LayerNormEps
}

func (h *hubConfig) hasNorm() bool { return h != nil && len(h.mean) > 0 }

// classNames are the config's label names in label order (nil: none).
func (h *hubConfig) classNames() []string {
	if h == nil {
		return nil
	}
	if len(h.LabelNames) > 0 {
		return h.LabelNames
	}
	if len(h.ID2Label) == 0 {
		return nil
	}
	ids := make([]int, 0, len(h.ID2Label))
	for k := range h.ID2Label {
		id, err := strconv.Atoi(k)
		if err != nil {
			return nil
		}
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for i, id := range ids {
		if id != i { // not 0..n-1: not a label list vitc can use
			return nil
		}
	}
	names := make([]string, len(ids))
	for i := range names {
		names[i] = h.ID2Label[strconv.Itoa(i)]
	}
	// transformers writes LABEL_0, LABEL_1, ... when nobody named them.
	if strings.HasPrefix(names[0], "LABEL_") {
		return nil
	}
	return names
}

// check refuses a config that describes other weights than the tensors.
func (h *hubConfig) check(cfg Config) error {
	var side int
	if n := len(h.PretrainedCfg.InputSize); n == 3 {
		side = h.PretrainedCfg.InputSize[2]
	}
	for _, c := range []struct {
		what      string
		said, has int
	}{
		{"embed_dim", cmp.Or(h.ModelArgs.EmbedDim, h.HiddenSize), cfg.Dim},
		{"depth", cmp.Or(h.ModelArgs.Depth, h.NumHiddenLayers), cfg.Depth},
		{"patch_size", cmp.Or(h.ModelArgs.PatchSize, h.PatchSize), cfg.Patch},
		{"img_size", cmp.Or(h.ModelArgs.ImgSize, side, h.ImageSize), cfg.Image},
		{"in_chans", cmp.Or(h.ModelArgs.InChans, h.NumChannels), cfg.Channels},
		{"num_classes", cmp.Or(h.NumClasses, h.PretrainedCfg.NumClasses), cfg.Classes},
		{"intermediate_size", h.IntermediateSize, cfg.Hidden()},
	} {
		if c.said != 0 && c.said != c.has {
			return fmt.Errorf("%s says %s %d, the tensors %d: it describes other weights", h.path, c.what, c.said, c.has)
		}
	}
	if len(h.mean) > 0 && len(h.mean) != cfg.Channels {
		return fmt.Errorf("%s gives %d means for a %d-channel model", h.path, len(h.mean), cfg.Channels)
	}
	return nil
}

// noteInt is the note on an option that replaced the config's value.
func (h *hubConfig) noteInt(what string, v int) string {
	if h == nil || v == 0 {
		return ""
	}
	return fmt.Sprintf("%s says %s %d", filepath.Base(h.path), what, v)
}

func (h *hubConfig) noteFloat(what string, v float64) string {
	if h == nil || v == 0 {
		return ""
	}
	return fmt.Sprintf("%s says %s %g", filepath.Base(h.path), what, v)
}

func (h *hubConfig) noteNorm() string {
	if !h.hasNorm() {
		return ""
	}
	return filepath.Base(h.path) + " says " + normString(h.mean, h.std)
}
