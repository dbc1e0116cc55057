package vit

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"vitc/internal/safetensors"
)

// FuzzLoadCheckpoint feeds arbitrary files that the safetensors layer
// accepts to the checkpoint loader: hostile vitc metadata (configs that
// claim huge models, bad JSON, wrong kinds) and wrong or missing tensors
// must give one-line errors, never a panic or an allocation the file's size
// does not justify. Seeds: a small valid checkpoint of each attention kind
// (added here) and the committed corpus in testdata/fuzz.
func FuzzLoadCheckpoint(f *testing.F) {
	for _, attn := range []string{"softmax", "taylor"} {
		cfg := Config{Image: 8, Channels: 1, Patch: 4, Dim: 8, Depth: 1, Heads: 2, MLPRatio: 1, Classes: 3, Attention: attn}
		m, err := New(cfg, 1)
		if err != nil {
			f.Fatal(err)
		}
		var buf bytes.Buffer
		if err := m.Encode(&buf, Meta{Dataset: "synthetic"}); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
		// The same tensors as a bare timm file: the architecture is
		// inferred from their shapes.
		var ts []safetensors.WriteTensor
		for _, p := range m.Params.List() {
			ts = append(ts, safetensors.WriteTensor{Name: p.Name, Shape: p.Shape, Data: p.Data})
		}
		buf.Reset()
		if err := safetensors.Encode(&buf, ts, nil); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	// Hugging Face names (mapped onto timm's, query/key/value fused) from
	// the PyTorch-written fixture of testdata/formats.
	hf, err := os.ReadFile("testdata/formats/hf_vit/model.safetensors")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(hf)
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := safetensors.Parse(b)
		if err != nil {
			return // the safetensors layer's own fuzz target covers these
		}
		for _, opts := range []LoadOptions{{}, {Heads: 2, LNEps: 1e-5}, {Preset: "micro"}, {Preset: "micro", Attention: "taylor"}, {KeyMap: []string{`^(\w+)\.in_proj_(weight|bias)$=${1}.qkv.${2}`, `^drop\..*=`}}} {
			m, _, err := loadParsed("fuzz.safetensors", file, opts)
			if err != nil {
				if m != nil {
					t.Fatal("model returned with an error")
				}
				if strings.Contains(err.Error(), "\n") {
					t.Fatalf("error %q is not one line", err)
				}
				continue
			}
			// Whatever loads must run.
			x := make([]float32, m.Channels*m.Image*m.Image)
			if logits := Predict(m, x, 1, 1); len(logits) != m.Classes {
				t.Fatalf("%d logits for %d classes", len(logits), m.Classes)
			}
		}
	})
}
