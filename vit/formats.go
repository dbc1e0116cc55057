package vit

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"vitc/internal/safetensors"
	"vitc/internal/torchfile"
)

// hfLayerNormEps is transformers' ViTConfig default layer_norm_eps, the
// eps of a Hugging Face file whose config does not say.
const hfLayerNormEps = 1e-12

// readWeights reads a weights file of either format Open takes:
// safetensors, or a torch.save zip (.pth, .pt, .bin), told apart by their
// first bytes rather than their names. A torch file's tensors are returned
// in safetensors' form, so everything after this reads one kind of file.
func readWeights(path string) (f *safetensors.File, format, under string, err error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, "", "", fmt.Errorf("checkpoint: %w", err)
	}
	head := make([]byte, 16)
	n, _ := io.ReadFull(fh, head)
	fh.Close()
	head = head[:n]
	if !torchfile.IsZip(head) && !torchfile.IsLegacy(head) {
		f, err := safetensors.ReadFile(path)
		return f, FormatSafetensors, "", err
	}
	tf, err := torchfile.ReadFile(path)
	if err != nil {
		return nil, "", "", err
	}
	return fromTorch(tf), FormatTorch, tf.Under, nil
}

// fromTorch is a torch.save file's tensors as a safetensors file without
// metadata (a torch file never carries vitc's).
func fromTorch(tf *torchfile.File) *safetensors.File {
	f := &safetensors.File{Metadata: map[string]string{}}
	for _, t := range tf.Tensors {
		f.Tensors = append(f.Tensors, safetensors.Tensor{Name: t.Name, DType: t.DType, Shape: t.Shape, Data: t.Data})
	}
	return f
}

// uniformNorm is the same mean and std for each of c channels.
func uniformNorm(c int, mean, std float32) ([]float32, []float32) {
	m, s := make([]float32, c), make([]float32, c)
	for i := range m {
		m[i], s[i] = mean, std
	}
	return m, s
}

// hfModelTypes are the transformers model types whose names and maths
// hfRules read (DeiT's distillation token is refused by name).
var hfModelTypes = []string{"vit", "deit"}

// layoutFacts records how a bare file's names were read, and checks what
// its config says against the layout: an activation other than the exact
// GELU, or a qkv bias the tensors do not have, would give another function.
func (c *Checkpoint) layoutFacts(rn *renamed, hub *hubConfig) error {
	if c.Format == FormatTorch && c.Under != "" {
		c.fact(FactStateDict, fmt.Sprintf("under %q", c.Under), FromTensors, "a training checkpoint's dict")
	}
	switch rn.layout {
	case LayoutHF:
		c.fact(FactLayout, "Hugging Face ViT (transformers' names, mapped to timm's)", FromTensors, "")
		if hub != nil && hub.ModelType != "" && !slices.Contains(hfModelTypes, hub.ModelType) {
			return fmt.Errorf("checkpoint %s: %s says model_type %q: vitc reads transformers' ViT (%s)", c.Path, hub.path, hub.ModelType, strings.Join(hfModelTypes, ", "))
		}
	case LayoutRenamed:
		var how []string
		if rn.strippedModule {
			how = append(how, "DataParallel's module. prefix dropped")
		}
		if rn.byBuiltin > 0 {
			how = append(how, fmt.Sprintf("%d by the built-in PyTorch rules", rn.byBuiltin))
		}
		if rn.byRules > 0 {
			c.fact(FactKeyMap, fmt.Sprintf("%d tensors renamed", rn.byRules), FromOption, "")
		}
		if len(how) > 0 {
			c.fact(FactLayout, "PyTorch names mapped to timm's ("+strings.Join(how, ", ")+")", FromTensors, "")
		}
		if rn.byBuiltin > 0 {
			c.fact(FactBlocks, "pre-norm with the exact GELU", FromDefault, `a ViT's: nn.TransformerEncoderLayer(norm_first=True, activation="gelu")`)
		}
	}
	if len(rn.dropped) > 0 {
		why := "by the key-map rules"
		if rn.layout == LayoutHF {
			why = "ViTModel's pooler: ViTForImageClassification has none"
		}
		c.fact(FactDropped, shortList(rn.dropped), FromTensors, why)
	}
	if hub == nil {
		return nil
	}
	if a := hub.HiddenAct; a != "" && a != "gelu" && a != "gelu_python" {
		return fmt.Errorf("checkpoint %s: %s says hidden_act %q: vitc's ViT uses the exact (erf) GELU, transformers' \"gelu\"", c.Path, hub.path, a)
	}
	if hub.QKVBias != nil {
		_, has := c.file.Lookup("blocks.0.attn.qkv.bias")
		if *hub.QKVBias != has {
			return fmt.Errorf("checkpoint %s: %s says qkv_bias %v, but the tensors have %s", c.Path, hub.path, *hub.QKVBias, map[bool]string{true: "them", false: "none"}[has])
		}
	}
	return nil
}

// source is how Describe names a bare file.
func (c *Checkpoint) source() string {
	var s string
	switch c.Layout {
	case LayoutHF:
		s = "Hugging Face ViT weights"
	case LayoutRenamed:
		s = "PyTorch weights"
	default:
		s = "timm weights"
	}
	if c.Format == FormatTorch {
		s += " (a torch.save state dict)"
	}
	return s + " without vitc metadata"
}
