package vit

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"vitc/internal/atomicfile"
	"vitc/internal/safetensors"
)

// Layouts Convert writes.
const (
	ToHF   = "hf"
	ToTimm = "timm"
)

// ErrNotPortable: the model has parts another library's ViT cannot build.
var ErrNotPortable = errors.New("not a plain ViT")

// Portable says why another library's ViT (timm's VisionTransformer,
// transformers' ViTForImageClassification) cannot hold m, or nil: both
// build softmax attention with the same heads and MLP width in every block
// and no token pruning.
func (m *Model) Portable() error {
	switch {
	case m.Attention != "softmax":
		return fmt.Errorf("%w: %s attention has no equivalent in timm or transformers (export it with --format onnx)", ErrNotPortable, m.Attention)
	case m.LayerHeads != nil || m.LayerHidden != nil:
		return fmt.Errorf("%w: a pruned model has per-block heads and MLP widths, which no ViT config of timm or transformers states (export it with --format onnx)", ErrNotPortable)
	case m.DistToken:
		return fmt.Errorf("%w: vitc writes plain ViTs, not DeiT's distillation token and head (export it with --format onnx; vitc's own checkpoint keeps them)", ErrNotPortable)
	case m.TokenKeep > 0 && m.TokenKeep < 1 && len(m.TokenLayers) > 0:
		return fmt.Errorf("%w: token pruning has no equivalent in timm or transformers (export it with --format onnx)", ErrNotPortable)
	}
	return nil
}

// Convert writes m to the folder dir in another library's layout: ToHF is
// transformers' ViTForImageClassification (model.safetensors with its
// names, config.json, preprocessor_config.json), ToTimm a timm hub folder
// (model.safetensors with timm's names and vitc's metadata, timm's
// config.json). Both read back through Open with no options. The folder
// is written beside dir and renamed into place, so a failure leaves
// nothing; an existing dir must be empty.
func (m *Model) Convert(dir, to string, meta Meta) error {
	if err := m.Portable(); err != nil {
		return err
	}
	files := map[string]func(path string) error{}
	switch to {
	case ToHF:
		var ts []safetensors.WriteTensor
		d := m.Dim
		for _, p := range m.Params.List() {
			if name, ok := HFNames(p.Name); ok {
				ts = append(ts, safetensors.WriteTensor{Name: name, Shape: p.Shape, Data: p.Data})
				continue
			}
			// qkv rows are [q; k; v]: transformers keeps three Linear layers.
			var blk int
			var kind string
			if _, err := fmt.Sscanf(p.Name, "blocks.%d.attn.qkv.%s", &blk, &kind); err != nil {
				return fmt.Errorf("tensor %s has no place in transformers' ViT", p.Name)
			}
			for i, part := range []string{"q", "k", "v"} {
				name, _ := HFNames(fmt.Sprintf("blocks.%d.attn.%s.%s", blk, part, kind))
				shape := []int{d}
				if kind == "weight" {
					shape = []int{d, d}
				}
				n := 1
				for _, s := range shape {
					n *= s
				}
				ts = append(ts, safetensors.WriteTensor{Name: name, Shape: shape, Data: p.Data[i*n : (i+1)*n]})
			}
		}
		// transformers' save_pretrained marks its safetensors files so.
		files[hubWeightsFile] = func(p string) error { return safetensors.WriteFile(p, ts, map[string]string{"format": "pt"}) }
		files[HubConfigFile] = jsonFile(m.hfConfig(meta))
		files[hubPreprocessor] = jsonFile(m.hfPreprocessor(meta))
	case ToTimm:
		files[hubWeightsFile] = func(p string) error { return m.Save(p, meta) }
		files[HubConfigFile] = jsonFile(m.timmConfig(meta))
	default:
		return fmt.Errorf("unknown layout %q (want %s or %s)", to, ToHF, ToTimm)
	}
	return writeFolder(dir, files)
}

func jsonFile(v any) func(string) error {
	return func(path string) error {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		return atomicfile.WriteBytes(path, append(b, '\n'))
	}
}

// labels are the class names, or transformers' LABEL_i where none are known.
func (m *Model) labels(meta Meta) []string {
	if len(meta.ClassNames) == m.Classes {
		return meta.ClassNames
	}
	out := make([]string, m.Classes)
	for i := range out {
		out[i] = "LABEL_" + strconv.Itoa(i)
	}
	return out
}

// hfConfig is the config.json transformers' ViTConfig.save_pretrained
// writes for m.
func (m *Model) hfConfig(meta Meta) map[string]any {
	id2label, label2id := map[string]string{}, map[string]int{}
	for i, n := range m.labels(meta) {
		id2label[strconv.Itoa(i)] = n
		label2id[n] = i
	}
	return map[string]any{
		"architectures":                []string{"ViTForImageClassification"},
		"model_type":                   "vit",
		"hidden_size":                  m.Dim,
		"num_hidden_layers":            m.Depth,
		"num_attention_heads":          m.Heads,
		"intermediate_size":            m.Hidden(),
		"hidden_act":                   "gelu",
		"hidden_dropout_prob":          0.0,
		"attention_probs_dropout_prob": 0.0,
		"initializer_range":            0.02,
		"layer_norm_eps":               m.Eps(),
		"image_size":                   m.Image,
		"patch_size":                   m.Patch,
		"num_channels":                 m.Channels,
		"qkv_bias":                     true,
		"encoder_stride":               m.Patch,
		"id2label":                     id2label,
		"label2id":                     label2id,
		"problem_type":                 "single_label_classification",
		"torch_dtype":                  "float32",
	}
}

func (m *Model) normFor(meta Meta) ([]float32, []float32) {
	if len(meta.NormMean) == m.Channels {
		return meta.NormMean, meta.NormStd
	}
	return DefaultNorm(m.Channels)
}

// hfPreprocessor is ViTImageProcessor's preprocessor_config.json: resize to
// the model's input, scale to [0, 1], normalise with m's statistics.
func (m *Model) hfPreprocessor(meta Meta) map[string]any {
	mean, std := m.normFor(meta)
	return map[string]any{
		"image_processor_type": "ViTImageProcessor",
		"do_resize":            true,
		"size":                 map[string]int{"height": m.Image, "width": m.Image},
		"resample":             2,
		"do_rescale":           true,
		"rescale_factor":       1.0 / 255,
		"do_normalize":         true,
		"image_mean":           mean,
		"image_std":            std,
	}
}

// timmConfig is the config.json timm's push_to_hf_hub writes.
func (m *Model) timmConfig(meta Meta) map[string]any {
	mean, std := m.normFor(meta)
	return map[string]any{
		"architecture":   "vit_custom",
		"num_classes":    m.Classes,
		"num_features":   m.Dim,
		"global_pool":    "token",
		"label_names":    m.labels(meta),
		"model_args":     map[string]any{"embed_dim": m.Dim, "depth": m.Depth, "num_heads": m.Heads, "mlp_ratio": m.MLPRatio, "patch_size": m.Patch, "img_size": m.Image, "in_chans": m.Channels},
		"pretrained_cfg": map[string]any{"input_size": []int{m.Channels, m.Image, m.Image}, "fixed_input_size": true, "interpolation": "bicubic", "crop_pct": 1.0, "crop_mode": "center", "mean": mean, "std": std, "num_classes": m.Classes, "first_conv": "patch_embed.proj", "classifier": "head"},
	}
}

// writeFolder writes files into a fresh folder beside dir, then renames it
// to dir (which may exist only empty).
func writeFolder(dir string, files map[string]func(path string) error) (err error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s exists and is not empty: convert writes a new folder", dir)
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	for name, write := range files {
		if err := write(filepath.Join(tmp, name)); err != nil {
			return err
		}
	}
	_ = os.Remove(dir) // an empty folder the caller made
	return os.Rename(tmp, dir)
}
