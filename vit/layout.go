package vit

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"vitc/internal/opterr"
	"vitc/internal/safetensors"
)

// Published ViTs name their tensors three ways besides timm's: Hugging Face
// transformers' ViTForImageClassification (vit.encoder.layer.N.attention.
// attention.query, ...), PyTorch's own modules (nn.MultiheadAttention's
// in_proj_weight, nn.TransformerEncoderLayer's linear1/norm1, torchvision's
// VisionTransformer) and an author's own names. The reader maps each onto
// timm's names before anything else looks at the file, so every command
// reads every layout through Open unchanged.

// Layouts a bare file's names are read in (Checkpoint.Layout).
const (
	LayoutTimm    = "timm"
	LayoutHF      = "Hugging Face ViT"
	LayoutRenamed = "renamed" // by key-map rules and/or the built-in PyTorch rules
)

// KeyRule renames a tensor: every name Pattern matches is replaced by Repl
// (regexp.ReplaceAllString: ${1} is the first group). A rule that renames
// to "" drops the tensor.
type KeyRule struct {
	Pattern *regexp.Regexp
	Repl    string
}

// ParseKeyRule reads "REGEXP=NAME" (split at the last '=': tensor names
// hold none).
func ParseKeyRule(spec string) (KeyRule, error) {
	i := strings.LastIndexByte(spec, '=')
	if i <= 0 {
		return KeyRule{}, &opterr.Error{What: fmt.Sprintf("key-map rule %q has no REGEXP=NAME", spec),
			Advice: "write each rule of %s as REGEXP=NAME (NAME may use ${1}; an empty NAME drops the tensor)", Option: "LoadOptions.KeyMap"}
	}
	re, err := regexp.Compile(spec[:i])
	if err != nil {
		return KeyRule{}, &opterr.Error{What: fmt.Sprintf("key-map rule %q: %v", spec, err),
			Advice: "fix the regular expression in %s (Go's RE2 syntax)", Option: "LoadOptions.KeyMap"}
	}
	return KeyRule{Pattern: re, Repl: spec[i+1:]}, nil
}

func rules(specs ...string) []KeyRule {
	out := make([]KeyRule, len(specs))
	for i, s := range specs {
		r, err := ParseKeyRule(s)
		if err != nil {
			panic(err)
		}
		out[i] = r
	}
	return out
}

// BuiltinKeyRules map PyTorch's own ViT building blocks onto timm's names,
// after the caller's rules: nn.TransformerEncoder (layers.N, self_attn,
// linear1/2, norm1/2, its final norm), nn.MultiheadAttention (in_proj →
// qkv, out_proj → proj), nn.Sequential MLPs (mlp.0 → fc1, mlp.2 or mlp.3 →
// fc2) and torchvision's VisionTransformer (conv_proj, class_token,
// encoder.pos_embedding, encoder_layer_N, ln_1/ln_2, encoder.ln,
// heads.head). They leave timm's names as they are. The blocks must be
// pre-norm with the exact GELU, as a ViT's are
// (nn.TransformerEncoderLayer(norm_first=True, activation="gelu")): the
// weights of a post-norm or ReLU encoder look the same, and the reader says
// it assumed this.
var BuiltinKeyRules = rules(
	`^encoder\.layers\.encoder_layer_(\d+)\.=blocks.${1}.`,
	`^(?:\w+\.)*layers\.(\d+)\.=blocks.${1}.`,
	`^blocks\.(\d+)\.(?:self_attn|self_attention|attn)\.in_proj_(weight|bias)$=blocks.${1}.attn.qkv.${2}`,
	`^blocks\.(\d+)\.(?:self_attn|self_attention|attn)\.out_proj\.(weight|bias)$=blocks.${1}.attn.proj.${2}`,
	`^blocks\.(\d+)\.(?:linear1|mlp\.0|mlp\.linear_1)\.(weight|bias)$=blocks.${1}.mlp.fc1.${2}`,
	`^blocks\.(\d+)\.(?:linear2|mlp\.[23]|mlp\.linear_2)\.(weight|bias)$=blocks.${1}.mlp.fc2.${2}`,
	`^blocks\.(\d+)\.(?:ln_1|ln1)\.(weight|bias)$=blocks.${1}.norm1.${2}`,
	`^blocks\.(\d+)\.(?:ln_2|ln2)\.(weight|bias)$=blocks.${1}.norm2.${2}`,
	`^(?:encoder\.norm|encoder\.ln|transformer\.norm)\.(weight|bias)$=norm.${1}`,
	`^(?:conv_proj|patch_embed|patch_embedding|to_patch_embedding)\.(weight|bias)$=patch_embed.proj.${1}`,
	`^(?:class_token|cls)$=cls_token`,
	`^(?:encoder\.pos_embedding|pos_embedding)$=pos_embed`,
	`^heads\.head\.(weight|bias)$=head.${1}`,
)

// hfPrefix matches the base model's prefix of a transformers checkpoint
// (none for a bare ViTModel).
const hfPrefix = `^(?:vit\.|deit\.)?`

// hfRules map transformers' ViT names onto timm's (modeling_vit.py):
// query/key/value become q/k/v, which fuseQKV concatenates into qkv.
var hfRules = rules(
	hfPrefix+`embeddings\.patch_embeddings\.projection\.(weight|bias)$=patch_embed.proj.${1}`,
	hfPrefix+`embeddings\.cls_token$=cls_token`,
	hfPrefix+`embeddings\.distillation_token$=dist_token`,
	hfPrefix+`embeddings\.position_embeddings$=pos_embed`,
	hfPrefix+`encoder\.layer\.(\d+)\.attention\.attention\.query\.(weight|bias)$=blocks.${1}.attn.q.${2}`,
	hfPrefix+`encoder\.layer\.(\d+)\.attention\.attention\.key\.(weight|bias)$=blocks.${1}.attn.k.${2}`,
	hfPrefix+`encoder\.layer\.(\d+)\.attention\.attention\.value\.(weight|bias)$=blocks.${1}.attn.v.${2}`,
	hfPrefix+`encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)$=blocks.${1}.attn.proj.${2}`,
	hfPrefix+`encoder\.layer\.(\d+)\.layernorm_before\.(weight|bias)$=blocks.${1}.norm1.${2}`,
	hfPrefix+`encoder\.layer\.(\d+)\.layernorm_after\.(weight|bias)$=blocks.${1}.norm2.${2}`,
	hfPrefix+`encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)$=blocks.${1}.mlp.fc1.${2}`,
	hfPrefix+`encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)$=blocks.${1}.mlp.fc2.${2}`,
	hfPrefix+`layernorm\.(weight|bias)$=norm.${1}`,
	`^classifier\.(weight|bias)$=head.${1}`,
	// DeiTForImageClassificationWithTeacher's two heads.
	`^cls_classifier\.(weight|bias)$=head.${1}`,
	`^distillation_classifier\.(weight|bias)$=head_dist.${1}`,
	// ViTModel's pooler (a tanh dense layer on the cls token) is not part
	// of ViTForImageClassification, which loads such weights without it.
	hfPrefix+`pooler\.dense\.(weight|bias)$=`,
)

// hfMarker is the tensor that makes a file a transformers ViT.
var hfMarker = regexp.MustCompile(hfPrefix + `embeddings\.patch_embeddings\.projection\.weight$`)

// HFNames is the inverse of hfRules for a vitc model's parameters: the
// name transformers' ViTForImageClassification gives each timm tensor
// (qkv is split into query, key and value by the writer). ok is false for
// a name it has no place for.
func HFNames(name string) (string, bool) {
	for _, r := range []struct{ re, repl string }{
		{`^patch_embed\.proj\.(weight|bias)$`, "vit.embeddings.patch_embeddings.projection.${1}"},
		{`^cls_token$`, "vit.embeddings.cls_token"},
		{`^pos_embed$`, "vit.embeddings.position_embeddings"},
		{`^blocks\.(\d+)\.attn\.(q|k|v)\.(weight|bias)$`, "vit.encoder.layer.${1}.attention.attention.${2}.${3}"},
		{`^blocks\.(\d+)\.attn\.proj\.(weight|bias)$`, "vit.encoder.layer.${1}.attention.output.dense.${2}"},
		{`^blocks\.(\d+)\.norm1\.(weight|bias)$`, "vit.encoder.layer.${1}.layernorm_before.${2}"},
		{`^blocks\.(\d+)\.norm2\.(weight|bias)$`, "vit.encoder.layer.${1}.layernorm_after.${2}"},
		{`^blocks\.(\d+)\.mlp\.fc1\.(weight|bias)$`, "vit.encoder.layer.${1}.intermediate.dense.${2}"},
		{`^blocks\.(\d+)\.mlp\.fc2\.(weight|bias)$`, "vit.encoder.layer.${1}.output.dense.${2}"},
		{`^norm\.(weight|bias)$`, "vit.layernorm.${1}"},
		{`^head\.(weight|bias)$`, "classifier.${1}"},
	} {
		re := regexp.MustCompile(r.re)
		if re.MatchString(name) {
			out := re.ReplaceAllString(name, r.repl)
			out = strings.NewReplacer(".q.", ".query.", ".k.", ".key.", ".v.", ".value.").Replace(out)
			return out, true
		}
	}
	return "", false
}

// renamed is a bare file's tensors under timm's names, and where each came
// from.
type renamed struct {
	file     *safetensors.File
	original map[string]string // timm name → the file's name(s)
	layout   string
	// byRules and byBuiltin count the tensors the caller's and the
	// built-in rules renamed; dropped names those renamed to "".
	byRules, byBuiltin int
	dropped            []string
	strippedModule     bool
}

// rename maps a bare file's names onto timm's: the Hugging Face layout by
// its own rules, anything else by the caller's rules, then the built-in
// ones. A file already in timm's names comes back as it is.
func rename(path string, f *safetensors.File, keyMap []string) (*renamed, error) {
	user := make([]KeyRule, 0, len(keyMap))
	for _, s := range keyMap {
		r, err := ParseKeyRule(s)
		if err != nil {
			return nil, err
		}
		user = append(user, r)
	}
	r := &renamed{file: f, original: map[string]string{}, layout: LayoutTimm}
	names := make([]string, len(f.Tensors))
	for i, t := range f.Tensors {
		names[i] = t.Name
	}
	// DataParallel saves every name under "module.": that prefix is never
	// part of the model.
	if len(names) > 0 && !slices.ContainsFunc(names, func(n string) bool { return !strings.HasPrefix(n, "module.") }) {
		for i := range names {
			names[i] = strings.TrimPrefix(names[i], "module.")
		}
		r.strippedModule = true
	}
	apply := func(rs []KeyRule, count *int) {
		for i, n := range names {
			for _, rule := range rs {
				if n != "" && rule.Pattern.MatchString(n) {
					n = rule.Pattern.ReplaceAllString(n, rule.Repl)
				}
			}
			if n != names[i] {
				*count++
				names[i] = n
			}
		}
	}
	apply(user, &r.byRules)
	hf := slices.ContainsFunc(names, hfMarker.MatchString)
	if hf {
		r.layout = LayoutHF
		apply(hfRules, &r.byBuiltin)
	} else {
		apply(BuiltinKeyRules, &r.byBuiltin)
		if r.byRules+r.byBuiltin > 0 || r.strippedModule {
			r.layout = LayoutRenamed
		}
	}
	if r.layout == LayoutTimm {
		return r, nil
	}
	out := &safetensors.File{Metadata: f.Metadata}
	for i, t := range f.Tensors {
		n := names[i]
		if n == "" {
			r.dropped = append(r.dropped, t.Name)
			continue
		}
		if prev, ok := r.original[n]; ok {
			return nil, fmt.Errorf("checkpoint %s: tensors %s and %s are both renamed %s", path, prev, t.Name, n)
		}
		r.original[n] = t.Name
		t.Name = n
		out.Tensors = append(out.Tensors, t)
	}
	if err := fuseQKV(path, out, r.original); err != nil {
		return nil, err
	}
	r.file = out
	return r, nil
}

func originalName(f *safetensors.File, names []string, n string) string {
	for i, m := range names {
		if m == n {
			return f.Tensors[i].Name
		}
	}
	return n
}

// fuseQKV concatenates separate q, k and v projections (Hugging Face's
// query/key/value, or an author's mapped onto blocks.N.attn.{q,k,v}) into
// timm's qkv, rows [q; k; v], which is the same function.
func fuseQKV(path string, f *safetensors.File, original map[string]string) error {
	for depth := 0; ; depth++ {
		pre := fmt.Sprintf("blocks.%d.attn.", depth)
		if _, ok := f.Lookup(pre + "q.weight"); !ok {
			if _, ok := f.Lookup(pre + "k.weight"); ok {
				return fmt.Errorf("checkpoint %s: %s without its query weight", path, original[pre+"k.weight"])
			}
			if depth > 0 || !hasAny(f, ".attn.q.") {
				return nil
			}
			return fmt.Errorf("checkpoint %s: query projections without blocks.0's", path)
		}
		for _, kind := range []string{"weight", "bias"} {
			var parts []*safetensors.Tensor
			for _, p := range []string{"q", "k", "v"} {
				if t, ok := f.Lookup(pre + p + "." + kind); ok {
					parts = append(parts, t)
				}
			}
			if len(parts) == 0 && kind == "bias" {
				continue // qkv_bias=False
			}
			if len(parts) != 3 {
				return fmt.Errorf("checkpoint %s: block %d has %d of the query, key and value %ss", path, depth, len(parts), kind)
			}
			q := parts[0]
			var data []byte
			for _, t := range parts {
				if t.DType != q.DType || !slices.Equal(t.Shape, q.Shape) || len(t.Shape) == 0 {
					return fmt.Errorf("checkpoint %s: %s %s %v does not match %s %s %v", path, original[t.Name], t.DType, t.Shape, original[q.Name], q.DType, q.Shape)
				}
				data = append(data, t.Data...)
			}
			shape := slices.Clone(q.Shape)
			shape[0] *= 3
			name := pre + "qkv." + kind
			original[name] = original[pre+"q."+kind] + "+key+value"
			f.Tensors = slices.DeleteFunc(f.Tensors, func(t safetensors.Tensor) bool {
				return t.Name == pre+"q."+kind || t.Name == pre+"k."+kind || t.Name == pre+"v."+kind
			})
			f.Tensors = append(f.Tensors, safetensors.Tensor{Name: name, DType: q.DType, Shape: shape, Data: data})
		}
	}
}

func hasAny(f *safetensors.File, sub string) bool {
	return slices.ContainsFunc(f.Tensors, func(t safetensors.Tensor) bool { return strings.Contains(t.Name, sub) })
}
