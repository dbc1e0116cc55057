package vit

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"

	"vitc/internal/safetensors"
)

// MetadataKey is the safetensors __metadata__ key holding vitc's JSON.
const MetadataKey = "vitc"

// Meta is what a checkpoint records beyond its weights: where the model came
// from and how to feed it.
type Meta struct {
	Dataset    string    `json:"dataset,omitempty"`
	NormMean   []float32 `json:"norm_mean,omitempty"`
	NormStd    []float32 `json:"norm_std,omitempty"`
	ClassNames []string  `json:"class_names,omitempty"`
	// Extensions holds technique state (pruning masks, ...) by technique
	// name, so adding one never changes this format.
	Extensions map[string]json.RawMessage `json:"extensions,omitempty"`
}

// metadata is the JSON stored under MetadataKey: config keys at the top
// level, so tools outside vitc read them directly.
type metadata struct {
	Format int `json:"format"`
	Config
	Meta
}

// checkpointFormat is the version of the vitc metadata this build writes
// and reads.
const checkpointFormat = 1

// Save writes the model as a timm-layout safetensors file, atomically.
func (m *Model) Save(path string, meta Meta) error {
	tensors, md, err := m.checkpoint(meta)
	if err != nil {
		return err
	}
	return safetensors.WriteFile(path, tensors, md)
}

// Encode writes the same bytes as Save to w (the exporter embeds the float
// model in a bundle this way).
func (m *Model) Encode(w io.Writer, meta Meta) error {
	tensors, md, err := m.checkpoint(meta)
	if err != nil {
		return err
	}
	return safetensors.Encode(w, tensors, md)
}

func (m *Model) checkpoint(meta Meta) ([]safetensors.WriteTensor, map[string]string, error) {
	js, err := json.Marshal(metadata{Format: checkpointFormat, Config: m.Config, Meta: meta})
	if err != nil {
		return nil, nil, err
	}
	tensors := make([]safetensors.WriteTensor, 0, len(m.Params.List()))
	for _, p := range m.Params.List() {
		tensors = append(tensors, safetensors.WriteTensor{Name: p.Name, Shape: p.Shape, Data: p.Data})
	}
	return tensors, map[string]string{MetadataKey: string(js)}, nil
}

// LoadOptions say how to read a checkpoint that has no vitc metadata (a
// timm/DeiT file). Without Preset the architecture is read from the tensor
// shapes; what they cannot tell takes these options or timm's defaults.
type LoadOptions struct {
	Preset    string // take the body from this preset instead of the tensors
	Attention string // attention kind (softmax if empty)
	Heads     int    // 0: dim/64, as timm's ViT/DeiT presets
	LNEps     float64
	// Mean and Std are the input normalisation (nil: ImageNet's for 3
	// channels, 0.5 otherwise, as timm's pretrained configs).
	Mean, Std []float32
	// Log, if set, receives one line per value inferred or defaulted.
	Log func(format string, args ...any)
}

// Load reads a checkpoint written by vitc, or a timm-layout one given
// opts.Preset. Every tensor the model needs must be present with its exact
// shape; the error names the first one that is not.
func Load(path string, opts LoadOptions) (*Model, Meta, error) {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return nil, Meta{}, err
	}
	return loadParsed(path, f, opts)
}

// LoadBytes is Load for a checkpoint held in memory; name labels errors.
func LoadBytes(name string, b []byte, opts LoadOptions) (*Model, Meta, error) {
	f, err := safetensors.Parse(b)
	if err != nil {
		return nil, Meta{}, fmt.Errorf("checkpoint %s: %w", name, err)
	}
	return loadParsed(name, f, opts)
}

// loadParsed is Load after the safetensors layer has validated the file.
func loadParsed(path string, f *safetensors.File, opts LoadOptions) (*Model, Meta, error) {
	cfg, meta, err := configOf(path, f, opts)
	if err != nil {
		return nil, Meta{}, err
	}
	// Sizes in metadata or a header cost nothing to claim: refuse a config
	// that needs more values than the file holds before New allocates it.
	var stored int64
	for _, t := range f.Tensors {
		stored += int64(len(t.Data)) // every dtype is at least a byte per value
	}
	if need := paramCount(cfg); need > float64(stored) {
		return nil, Meta{}, fmt.Errorf("checkpoint %s: model %+v needs %.4g parameters, but the file holds only %d bytes of tensor data", path, cfg, need, stored)
	}
	if cfg.Classes == 0 {
		return nil, Meta{}, fmt.Errorf("checkpoint %s has no head (a feature extractor): fine-tune it with train --init to get a classifier", path)
	}
	m, err := New(cfg, 0)
	if err != nil {
		return nil, Meta{}, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if err := m.loadTensors(f, absentQKVBias(f)); err != nil {
		return nil, Meta{}, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return m, meta, nil
}

func configOf(path string, f *safetensors.File, opts LoadOptions) (Config, Meta, error) {
	if js, ok := f.Metadata[MetadataKey]; ok {
		var md metadata
		if err := json.Unmarshal([]byte(js), &md); err != nil {
			return Config{}, Meta{}, fmt.Errorf("checkpoint %s: bad vitc metadata: %v", path, err)
		}
		if md.Format != checkpointFormat {
			return Config{}, Meta{}, fmt.Errorf("checkpoint %s: vitc metadata format %d, this build reads format %d", path, md.Format, checkpointFormat)
		}
		if err := md.Config.Validate(); err != nil {
			return Config{}, Meta{}, fmt.Errorf("checkpoint %s: %w", path, err)
		}
		return md.Config, md.Meta, nil
	}
	if opts.Preset == "" {
		return inferConfig(path, f, opts)
	}
	cfg, err := Preset(opts.Preset)
	if err != nil {
		return Config{}, Meta{}, err
	}
	if opts.Attention != "" {
		cfg.Attention = opts.Attention
	}
	if opts.Heads != 0 {
		cfg.Heads = opts.Heads
	}
	cfg.LNEps = opts.LNEps
	// Fine-tuned timm checkpoints keep the preset's body but change the
	// input and the head; read those from the tensors themselves.
	if t, ok := f.Lookup("head.weight"); ok && len(t.Shape) == 2 {
		cfg.Classes = t.Shape[0]
	}
	if t, ok := f.Lookup("patch_embed.proj.weight"); ok && len(t.Shape) == 4 {
		cfg.Channels = t.Shape[1]
	}
	if t, ok := f.Lookup("pos_embed"); ok && len(t.Shape) == 3 {
		side := isqrt(t.Shape[1] - 1)
		if side*side == t.Shape[1]-1 {
			cfg.Image = side * cfg.Patch
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, Meta{}, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	meta := Meta{NormMean: opts.Mean, NormStd: opts.Std}
	if err := checkNorm(meta, cfg.Channels); err != nil {
		return Config{}, Meta{}, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return cfg, meta, nil
}

// absentQKVBias skips the qkv biases of a file written with
// qkv_bias=False: they stay at New's zeros, which is the same function.
func absentQKVBias(f *safetensors.File) func(string) bool {
	return func(name string) bool {
		if !strings.HasSuffix(name, ".attn.qkv.bias") {
			return false
		}
		_, ok := f.Lookup(name)
		return !ok
	}
}

// isqrt is floor(sqrt(n)) for any int n (0 for n <= 0), without overflow.
func isqrt(n int) int {
	if n <= 0 {
		return 0
	}
	r := int(math.Sqrt(float64(n)))
	for r > n/r {
		r--
	}
	for r+1 <= n/(r+1) {
		r++
	}
	return r
}

// paramCount is the number of values in a model of c, in float64 so that no
// config, however absurd, overflows it.
func paramCount(c Config) float64 {
	d := float64(c.Dim)
	side := float64(c.Image / c.Patch)
	patch := d*float64(c.Channels)*float64(c.Patch)*float64(c.Patch) + d
	embed := d + (side*side+1)*d // cls_token, pos_embed
	var blocks float64
	for i := 0; i < c.Depth; i++ {
		a := float64(c.HeadsAt(i) * c.HeadDim()) // attention width
		h := float64(c.HiddenAt(i))
		blocks += 4*d + 3*a*d + 3*a + d*a + d + h*d + h + d*h + d
	}
	return patch + embed + blocks + 2*d + float64(c.Classes)*(d+1)
}

// loadTensors copies every parameter from f, converting dtypes. Names for
// which skip returns true are left as initialised.
func (m *Model) loadTensors(f *safetensors.File, skip func(name string) bool) error {
	for _, p := range m.Params.List() {
		if skip != nil && skip(p.Name) {
			continue
		}
		t, ok := f.Lookup(p.Name)
		if !ok {
			return fmt.Errorf("missing tensor %s", p.Name)
		}
		if err := p.CheckShape(t.Shape); err != nil {
			return err
		}
		vals, err := t.Float32s()
		if err != nil {
			return err // already names the tensor
		}
		copy(p.Data, vals)
	}
	return nil
}

// LoadWeightsFrom initialises m from another checkpoint (fine-tuning,
// conversion between attention kinds). A head whose class count differs is
// left freshly initialised, as timm does when num_classes changes.
func (m *Model) LoadWeightsFrom(path string) error {
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return err
	}
	skipHead := func(name string) bool {
		if !strings.HasPrefix(name, "head.") {
			return false
		}
		t, ok := f.Lookup(name)
		p, _ := m.Params.Get(name)
		return ok && p.CheckShape(t.Shape) != nil
	}
	if err := m.loadTensors(f, skipHead); err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return nil
}
