package vit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"vitc/datasets"
	"vitc/internal/opterr"
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
	// ValSplit is the fraction of each class held out as Dataset's test
	// split when the folder has no test/ (0: its own test split), so that
	// later commands score the same images.
	ValSplit float64 `json:"val_split,omitempty"`
	// TestAccuracy is the model's top-1 accuracy on Dataset's test split
	// when it was written (0: not measured), so that a reader can tell a
	// checkpoint read wrongly from one that is merely weak.
	TestAccuracy float64 `json:"test_accuracy,omitempty"`
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

// LoadOptions say how to read a checkpoint: what a file without vitc
// metadata (a timm/DeiT file) cannot tell, and what the caller changes on
// purpose. Without Preset the architecture is read from the tensor shapes;
// what they cannot tell takes these options, a config.json beside the file
// (timm's or Hugging Face's) or timm's defaults, in that order.
type LoadOptions struct {
	Preset    string  `json:"preset,omitempty"`    // take the body from this preset instead of the tensors
	Attention string  `json:"attention,omitempty"` // attention kind (a file without metadata: softmax if empty; with: a change of kind)
	Heads     int     `json:"heads,omitempty"`     // 0: the config's, else dim/64 as timm's ViT/DeiT presets
	LNEps     float64 `json:"ln_eps,omitempty"`
	// Mean and Std are the input normalisation (nil: the checkpoint's;
	// for a file that records none, ImageNet's for 3 channels and 0.5
	// otherwise, as timm's pretrained configs).
	Mean []float32 `json:"mean,omitempty"`
	Std  []float32 `json:"std,omitempty"`
	// KeyMap renames the tensors of a file without vitc metadata
	// ("REGEXP=NAME", applied in order, before BuiltinKeyRules): an author's
	// own names onto timm's.
	KeyMap []string `json:"key_map,omitempty"`
	// BareOnly applies the options to a file without vitc metadata only: a
	// vitc file keeps everything it records (a second checkpoint of a
	// command, read with the flags meant for the first).
	BareOnly bool `json:"bare_only,omitempty"`
	// Log, if set, receives one line per adaptation to new data
	// (Checkpoint.Adapt); what the reader settled is in Checkpoint.Facts.
	Log func(format string, args ...any) `json:"-"`
}

// Load reads a checkpoint written by vitc, or a timm-layout one (see
// LoadOptions). Every tensor the model needs must be present with its
// exact shape; the error names the first one that is not.
func Load(path string, opts LoadOptions) (*Model, Meta, error) {
	c, err := Open(path, opts)
	if err != nil {
		return nil, Meta{}, err
	}
	m, err := c.Model()
	return m, c.Meta, err
}

// LoadBytes is Load for a checkpoint held in memory; name labels errors.
func LoadBytes(name string, b []byte, opts LoadOptions) (*Model, Meta, error) {
	f, err := safetensors.Parse(b)
	if err != nil {
		return nil, Meta{}, fmt.Errorf("checkpoint %s: %w", name, err)
	}
	return loadParsed(name, f, opts)
}

// Checkpoint is a checkpoint file read but not yet turned into a model: its
// architecture, what it records, and how each fact was settled. Every
// command and option that takes a checkpoint reads it through Open, so the
// same file gives the same model everywhere.
type Checkpoint struct {
	Path   string
	Config Config
	Meta   Meta
	// Bare says the file has no vitc metadata (a timm/DeiT file).
	Bare bool
	// Format is the file's format: FormatSafetensors or FormatTorch.
	Format string
	// Under names the entry of a torch.save training checkpoint's dict
	// the state dict was read from ("" at the top level).
	Under string
	// Layout says how a bare file names its tensors: LayoutTimm, LayoutHF
	// or LayoutRenamed.
	Layout string
	// ConfigFile is the config.json read beside a bare file ("": none).
	ConfigFile string
	// Facts say how the architecture, normalisation and names were
	// settled, in a fixed order (Describe prints them).
	Facts []Fact
	file  *safetensors.File
}

// Open reads path (a .safetensors file, or a folder holding one with an
// optional config.json) and settles its architecture and metadata; see
// LoadOptions.
func Open(path string, opts LoadOptions) (*Checkpoint, error) {
	file, hub, err := locate(path)
	if err != nil {
		return nil, err
	}
	f, format, under, err := readWeights(file)
	if err != nil {
		return nil, err
	}
	return openParsed(file, f, hub, opts, format, under)
}

func openParsed(path string, f *safetensors.File, hub *hubConfig, opts LoadOptions, format, under string) (*Checkpoint, error) {
	c := &Checkpoint{Path: path, file: f, Format: format, Under: under}
	if err := c.settle(opts, hub); err != nil {
		return nil, err
	}
	// Sizes in metadata or a header cost nothing to claim: refuse a config
	// that needs more values than the file holds before New allocates it.
	var stored int64
	for _, t := range f.Tensors {
		stored += int64(len(t.Data)) // every dtype is at least a byte per value
	}
	if need := paramCount(c.Config); need > float64(stored) {
		return nil, fmt.Errorf("checkpoint %s: model %+v needs %.4g parameters, but the file holds only %d bytes of tensor data", path, c.Config, need, stored)
	}
	return c, nil
}

// Model builds the model the checkpoint holds, exactly (no adaptation).
func (c *Checkpoint) Model() (*Model, error) {
	if c.Config.Classes == 0 {
		return nil, fmt.Errorf("checkpoint %s has no head (a feature extractor): fine-tune it with train --init to get a classifier", c.Path)
	}
	m, err := New(c.Config, 0)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", c.Path, err)
	}
	if err := m.loadTensors(c.file, absentQKVBias(c.file)); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", c.Path, err)
	}
	return m, nil
}

// ConflictError: an option contradicts what a checkpoint's vitc metadata
// records about its architecture (options describe files without it).
type ConflictError struct {
	Path, Option   string // the LoadOptions field
	Given, Records string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("checkpoint %s records %s; LoadOptions.%s %s contradicts it (it describes files without vitc metadata)", e.Path, e.Records, e.Option, e.Given)
}

// settle fills c.Config, c.Meta and c.Facts from the file's metadata, or
// from its tensors, the hub config and opts.
func (c *Checkpoint) settle(opts LoadOptions, hub *hubConfig) error {
	if (opts.Mean == nil) != (opts.Std == nil) || len(opts.Mean) != len(opts.Std) {
		return fmt.Errorf("normalisation: LoadOptions.Mean has %d and Std %d values", len(opts.Mean), len(opts.Std))
	}
	js, ok := c.file.Metadata[MetadataKey]
	if !ok {
		c.Bare = true
		return c.settleBare(opts, hub)
	}
	var md metadata
	if err := json.Unmarshal([]byte(js), &md); err != nil {
		return fmt.Errorf("checkpoint %s: bad vitc metadata: %v", c.Path, err)
	}
	if md.Format != checkpointFormat {
		return fmt.Errorf("checkpoint %s: vitc metadata format %d, this build reads format %d", c.Path, md.Format, checkpointFormat)
	}
	if err := md.Config.Validate(); err != nil {
		return fmt.Errorf("checkpoint %s: %w", c.Path, err)
	}
	cfg, meta := md.Config, md.Meta
	if opts.BareOnly {
		opts = LoadOptions{}
	}
	if opts.Heads != 0 && opts.Heads != cfg.Heads {
		return &ConflictError{Path: c.Path, Option: "Heads", Given: fmt.Sprint(opts.Heads), Records: fmt.Sprintf("%d heads", cfg.Heads)}
	}
	if opts.LNEps != 0 && opts.LNEps != cfg.Eps() {
		return &ConflictError{Path: c.Path, Option: "LNEps", Given: fmt.Sprint(opts.LNEps), Records: fmt.Sprintf("LayerNorm eps %g", cfg.Eps())}
	}
	c.fact(FactArchitecture, describeArch(cfg), FromMetadata, "")
	attn := FromMetadata
	note := ""
	if opts.Attention != "" && opts.Attention != cfg.Attention {
		attn, note = FromOption, "the checkpoint records "+cfg.Attention
		cfg.Attention = opts.Attention
	}
	c.fact(FactAttention, cfg.Attention, attn, note)
	c.fact(FactHeads, fmt.Sprint(cfg.Heads), FromMetadata, "")
	c.fact(FactLNEps, fmt.Sprintf("%g", cfg.Eps()), FromMetadata, "")
	if opts.Mean != nil {
		note := "the checkpoint records none"
		if len(meta.NormMean) > 0 {
			note = "the checkpoint records " + normString(meta.NormMean, meta.NormStd)
		}
		meta.NormMean, meta.NormStd = opts.Mean, opts.Std
		c.fact(FactNorm, normString(meta.NormMean, meta.NormStd), FromOption, note)
	} else if len(meta.NormMean) > 0 {
		c.fact(FactNorm, normString(meta.NormMean, meta.NormStd), FromMetadata, "")
	}
	if err := checkNorm(meta, cfg.Channels); err != nil {
		return fmt.Errorf("checkpoint %s: %w", c.Path, err)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("checkpoint %s: %w", c.Path, err)
	}
	c.Config, c.Meta = cfg, meta
	return nil
}

// settleBare reads a timm file's architecture: the body from opts.Preset or
// the tensors, the rest from opts, the hub config or timm's defaults.
func (c *Checkpoint) settleBare(opts LoadOptions, hub *hubConfig) error {
	path := c.Path
	rn, err := rename(path, c.file, opts.KeyMap)
	if err != nil {
		return err
	}
	c.file, c.Layout = rn.file, rn.layout
	f := c.file
	if err := c.layoutFacts(rn, hub); err != nil {
		return err
	}
	var cfg Config
	if opts.Preset == "" {
		if cfg, err = inferConfig(path, f); err != nil {
			var ue *UnsupportedError
			if errors.As(err, &ue) && rn.original[ue.Tensor] != "" {
				ue.Tensor = rn.original[ue.Tensor] // the name the file has
			}
			return err
		}
		c.fact(FactArchitecture, describeArch(cfg), FromTensors, "")
	} else {
		if cfg, err = Preset(opts.Preset); err != nil {
			return err
		}
		// Fine-tuned timm checkpoints keep the preset's body but change the
		// input and the head; read those from the tensors themselves.
		if t, ok := f.Lookup("head.weight"); ok && len(t.Shape) == 2 {
			cfg.Classes = t.Shape[0]
		}
		if t, ok := f.Lookup("patch_embed.proj.weight"); ok && len(t.Shape) == 4 {
			cfg.Channels = t.Shape[1]
		}
		_, cfg.DistToken = f.Lookup("dist_token")
		_, cfg.DistHead = f.Lookup("head_dist.weight")
		if t, ok := f.Lookup("pos_embed"); ok && len(t.Shape) == 3 {
			extra := cfg.Tokens() - cfg.Patches()
			side := isqrt(t.Shape[1] - extra)
			if side*side == t.Shape[1]-extra {
				cfg.Image = side * cfg.Patch
			}
		}
		c.fact(FactArchitecture, describeArch(cfg), FromOption, "preset "+opts.Preset)
	}
	if hub != nil {
		c.ConfigFile = hub.path
		if err := hub.check(cfg); err != nil {
			return fmt.Errorf("checkpoint %s: %w", path, err)
		}
	}
	cfg.Attention = "softmax"
	switch {
	case opts.Attention != "":
		cfg.Attention = opts.Attention
		c.fact(FactAttention, cfg.Attention, FromOption, "")
	default:
		c.fact(FactAttention, cfg.Attention, FromDefault, "a timm file")
	}

	switch {
	case opts.Heads != 0:
		c.fact(FactHeads, fmt.Sprint(opts.Heads), FromOption, hub.noteInt("heads", hub.heads()))
		cfg.Heads = opts.Heads
	case hub.heads() != 0:
		cfg.Heads = hub.heads()
		c.fact(FactHeads, fmt.Sprint(cfg.Heads), FromConfig, "")
	case opts.Preset != "":
		c.fact(FactHeads, fmt.Sprint(cfg.Heads), FromOption, "preset "+opts.Preset)
	default:
		if cfg.Dim%timmHeadWidth != 0 {
			return &opterr.Error{What: fmt.Sprintf("checkpoint %s: dim %d is not a multiple of timm's head width %d", path, cfg.Dim, timmHeadWidth),
				Advice: "give the head count with %s", Option: "LoadOptions.Heads", Kind: ErrNeedHeads}
		}
		cfg.Heads = cfg.Dim / timmHeadWidth
		c.fact(FactHeads, fmt.Sprint(cfg.Heads), FromDefault, fmt.Sprintf("dim/%d, timm's", timmHeadWidth))
	}
	if cfg.Dim%cfg.Heads != 0 {
		return fmt.Errorf("checkpoint %s: %d heads do not divide dim %d", path, cfg.Heads, cfg.Dim)
	}

	switch {
	case opts.LNEps != 0:
		cfg.LNEps = opts.LNEps
		c.fact(FactLNEps, fmt.Sprintf("%g", cfg.LNEps), FromOption, hub.noteFloat("eps", hub.eps()))
	case hub.eps() != 0:
		cfg.LNEps = hub.eps()
		c.fact(FactLNEps, fmt.Sprintf("%g", cfg.LNEps), FromConfig, "")
	case c.Layout == LayoutHF:
		cfg.LNEps = hfLayerNormEps
		c.fact(FactLNEps, fmt.Sprintf("%g", cfg.LNEps), FromDefault, "Hugging Face ViTConfig's")
	default:
		cfg.LNEps = 0
		c.fact(FactLNEps, fmt.Sprintf("%g", LayerNormEps), FromDefault, "timm's")
	}
	if _, ok := f.Lookup("blocks.0.attn.qkv.bias"); !ok {
		c.fact(FactQKVBias, "none (qkv_bias=False): zero", FromTensors, "")
	}

	meta := Meta{}
	switch {
	case opts.Mean != nil:
		meta.NormMean, meta.NormStd = opts.Mean, opts.Std
		c.fact(FactNorm, normString(meta.NormMean, meta.NormStd), FromOption, hub.noteNorm())
	case hub.hasNorm():
		meta.NormMean, meta.NormStd = hub.mean, hub.std
		c.fact(FactNorm, normString(meta.NormMean, meta.NormStd), FromConfig, "")
	case c.Layout == LayoutHF:
		// ViTImageProcessor's default (IMAGENET_STANDARD_MEAN/STD).
		meta.NormMean, meta.NormStd = uniformNorm(cfg.Channels, 0.5, 0.5)
		c.fact(FactNorm, normString(meta.NormMean, meta.NormStd), FromDefault, "Hugging Face ViTImageProcessor's")
	default:
		meta.NormMean, meta.NormStd = DefaultNorm(cfg.Channels)
		c.fact(FactNorm, normString(meta.NormMean, meta.NormStd), FromDefault, fmt.Sprintf("timm's for %d channels", cfg.Channels))
	}
	if err := checkNorm(meta, cfg.Channels); err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if names := hub.classNames(); names != nil {
		if cfg.Classes != 0 && len(names) != cfg.Classes {
			return fmt.Errorf("checkpoint %s: %s names %d classes, the head has %d", path, hub.path, len(names), cfg.Classes)
		}
		meta.ClassNames = names
		c.fact(FactClassNames, shortList(names), FromConfig, "")
	}
	if cfg.Classes == 0 {
		c.fact(FactClasses, "none (a feature extractor): a classifier head must be trained", FromTensors, "")
	}
	if err := cfg.Validate(); err != nil && cfg.Classes != 0 {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	c.Config, c.Meta = cfg, meta
	return nil
}

// Fact names: what a reader settles about a checkpoint.
const (
	FactArchitecture = "architecture"
	FactAttention    = "attention"
	FactHeads        = "heads"
	FactLNEps        = "ln_eps"
	FactQKVBias      = "qkv_bias"
	FactNorm         = "normalisation"
	FactClassNames   = "class_names"
	FactClasses      = "classes"
	FactLayout       = "layout"  // how a bare file names its tensors
	FactKeyMap       = "key_map" // tensors the caller's rules renamed
	FactBlocks       = "blocks"  // what the built-in PyTorch rules assume
	FactDropped      = "dropped" // tensors left out on purpose
	FactStateDict    = "state_dict"
)

// File formats Open reads.
const (
	FormatSafetensors = "safetensors"
	FormatTorch       = "torch.save"
)

// FactSource says where a fact came from.
type FactSource string

const (
	FromMetadata FactSource = "metadata" // vitc's __metadata__
	FromTensors  FactSource = "tensors"  // the tensor names and shapes
	FromConfig   FactSource = "config"   // config.json (or preprocessor_config.json) beside the file
	FromOption   FactSource = "option"   // LoadOptions: the caller said so
	FromDefault  FactSource = "default"  // nothing tells: timm's default
)

// Fact is one thing the reader settled about a checkpoint.
type Fact struct {
	Name  string     `json:"name"`
	Value string     `json:"value"`
	From  FactSource `json:"from"`
	// Note qualifies it: the default's origin, or what an option replaced.
	Note string `json:"note,omitempty"`
}

func (c *Checkpoint) fact(name, value string, from FactSource, note string) {
	c.Facts = append(c.Facts, Fact{Name: name, Value: value, From: from, Note: note})
}

// Assumed lists the facts nothing said: timm's defaults.
func (c *Checkpoint) Assumed() []Fact {
	var out []Fact
	for _, f := range c.Facts {
		if f.From == FromDefault && f.Name != FactAttention {
			out = append(out, f)
		}
	}
	return out
}

// Describe is one line saying what was read from c and what was assumed.
// option names the flag (or option) that sets a fact, for the line's
// advice; it may return "".
func (c *Checkpoint) Describe(option func(fact string) string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ", c.Path)
	if !c.Bare {
		cfg, meta := c.Config, c.Meta
		fmt.Fprintf(&b, "vitc checkpoint, %s attention, %s, %d heads, LayerNorm eps %g", cfg.Attention, describeArch(cfg), cfg.Heads, cfg.Eps())
		for _, f := range c.Facts {
			if f.From == FromOption {
				fmt.Fprintf(&b, "; %s %s (%s, %s)", factLabel(f.Name), f.Value, optionOr(option, f.Name), f.Note)
			}
		}
		if len(meta.NormMean) > 0 && !c.given(FactNorm) {
			fmt.Fprintf(&b, "; normalisation %s", normString(meta.NormMean, meta.NormStd))
		}
		if len(meta.ClassNames) > 0 && !datasets.IndexNames(meta.ClassNames) {
			fmt.Fprintf(&b, "; classes %s", shortList(meta.ClassNames))
		}
		if meta.Dataset != "" {
			fmt.Fprintf(&b, "; trained on %s", meta.Dataset)
			if meta.TestAccuracy > 0 {
				fmt.Fprintf(&b, " (%.2f%% test accuracy)", 100*meta.TestAccuracy)
			}
		}
		return b.String()
	}
	b.WriteString(c.source())
	if c.ConfigFile != "" {
		fmt.Fprintf(&b, " with %s", filepath.Base(c.ConfigFile))
	}
	groups := []struct {
		label string
		from  []FactSource
	}{{"read", []FactSource{FromTensors, FromConfig}}, {"given", []FactSource{FromOption}}, {"assumed", []FactSource{FromDefault}}}
	for _, g := range groups {
		var parts []string
		for _, f := range c.Facts {
			if !slices.Contains(g.from, f.From) || (f.Name == FactAttention && f.From == FromDefault) {
				continue
			}
			s := factLabel(f.Name) + " " + f.Value
			switch {
			case f.Name == FactArchitecture:
				s = f.Value
			case f.Name == FactHeads:
				s = f.Value + " heads"
			}
			var why []string
			if f.From == FromConfig {
				why = append(why, "config")
			}
			if f.From == FromOption {
				why = append(why, optionOr(option, f.Name))
			}
			if f.Note != "" {
				why = append(why, f.Note)
			}
			if f.From == FromDefault {
				if o := optionOr(option, f.Name); o != "" {
					why = append(why, "set "+o)
				}
			}
			if len(why) > 0 {
				s += " (" + strings.Join(why, "; ") + ")"
			}
			parts = append(parts, s)
		}
		if len(parts) > 0 {
			fmt.Fprintf(&b, "; %s: %s", g.label, strings.Join(parts, ", "))
		}
	}
	return b.String()
}

func (c *Checkpoint) given(name string) bool {
	for _, f := range c.Facts {
		if f.Name == name && f.From == FromOption {
			return true
		}
	}
	return false
}

func optionOr(option func(string) string, fact string) string {
	if option == nil {
		return ""
	}
	return option(fact)
}

func factLabel(name string) string {
	switch name {
	case FactLNEps:
		return "LayerNorm eps"
	case FactClassNames:
		return "classes"
	case FactQKVBias:
		return "qkv bias"
	case FactStateDict:
		return "state dict"
	case FactKeyMap:
		return "key map"
	}
	return name
}

// describeArch is the body of cfg in a few words.
func describeArch(cfg Config) string {
	s := fmt.Sprintf("%d×%d×%d input, patch %d, dim %d, depth %d, MLP %d", cfg.Channels, cfg.Image, cfg.Image, cfg.Patch, cfg.Dim, cfg.Depth, cfg.Hidden())
	if cfg.Classes > 0 {
		s += fmt.Sprintf(", %d classes", cfg.Classes)
	}
	if cfg.LayerHeads != nil || cfg.TokenLayers != nil {
		s += ", pruned"
	}
	switch {
	case cfg.DistHead:
		s += ", DeiT distillation token and head"
	case cfg.DistToken:
		s += ", DeiT distillation token"
	}
	return s
}

// normString prints statistics rounded, as a person reads them.
func normString(mean, std []float32) string {
	return "mean " + floats(mean) + " std " + floats(std)
}

func floats(v []float32) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.FormatFloat(float64(x), 'g', 4, 32)
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// shortList names up to four items and counts the rest.
func shortList(names []string) string {
	if len(names) <= 4 {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s, … (%d)", strings.Join(names[:3], ", "), len(names))
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
	if c.DistToken {
		embed += 2 * d // dist_token and its position
	}
	if c.DistHead {
		embed += float64(c.Classes) * (d + 1) // head_dist
	}
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
	return m.loadWeights(f, path)
}

// loadWeights is LoadWeightsFrom a read file.
func (m *Model) loadWeights(f *safetensors.File, path string) error {
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

// loadParsed is Load of a parsed file without a hub config.
func loadParsed(path string, f *safetensors.File, opts LoadOptions) (*Model, Meta, error) {
	c, err := openParsed(path, f, nil, opts, FormatSafetensors, "")
	if err != nil {
		return nil, Meta{}, err
	}
	m, err := c.Model()
	if err != nil {
		return nil, Meta{}, err
	}
	return m, c.Meta, nil
}
