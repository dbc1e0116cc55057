// Package torchfile reads the tensors of a PyTorch torch.save file (.pth,
// .pt, .bin): the zip format PyTorch writes since 1.6, ARCHIVE/data.pkl (a
// pickle of the state dict) and ARCHIVE/data/KEY (each storage's raw
// little-endian bytes).
//
// The pickle is interpreted by gopickle, a Go implementation of Python's
// unpickler, so no Python runs at all; on top of that only the globals a
// state dict needs resolve (collections.OrderedDict, torch's tensor and
// parameter rebuild functions and storage types): any other class (a whole
// nn.Module saved with torch.save(model), numpy arrays, arbitrary callables)
// is refused by name. Every size is checked before it is allocated: the
// pickle's own length fields against the pickle (scanPickle), each storage
// against its zip entry, and each tensor view against its storage.
package torchfile

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// Tensor is one tensor of the state dict, contiguous: Data holds the raw
// little-endian values in row-major order. DType uses safetensors' names
// (F32, F16, BF16, F64, I64, ...).
type Tensor struct {
	Name  string
	DType string
	Shape []int
	Data  []byte
}

// File is what a torch.save file holds.
type File struct {
	Tensors []Tensor
	// Under names the entry of a training checkpoint's dict the state dict
	// was found under ("state_dict", "model", ...; "" at the top level).
	Under string
	// Ignored names entries of the state dict that are not tensors.
	Ignored []string
}

// MaxPickle bounds data.pkl: a state dict's pickle holds names and shapes,
// a few hundred bytes per tensor.
const MaxPickle = 64 << 20

// ErrNotZip: the bytes are not a zip archive (a safetensors file, a legacy
// torch.save file, anything else).
var ErrNotZip = errors.New("not a PyTorch zip file")

// IsZip reports whether head (a file's first bytes) starts a zip archive,
// as every torch.save file of PyTorch ≥ 1.6 does.
func IsZip(head []byte) bool { return bytes.HasPrefix(head, []byte("PK\x03\x04")) }

// legacyMagic is how a pre-1.6 torch.save file starts: a protocol-2 pickle
// of torch's magic number 0x1950a86a20f9469cfc6c (LONG1, 10 bytes).
var legacyMagic = []byte("\x80\x02\x8a\x0alz\xfc\x9cF\xf9 j\xa8P\x19")

// IsLegacy reports whether head (at least its first 14 bytes) starts a
// pre-1.6 torch.save file. The whole magic number is compared: a
// safetensors file's 8-byte header length can start with 0x80 0x02 too.
func IsLegacy(head []byte) bool { return bytes.HasPrefix(head, legacyMagic) }

// ReadFile reads a torch.save file.
func ReadFile(name string) (*File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("checkpoint %s: not a regular file", name)
	}
	return read(name, f, st.Size())
}

// Parse reads a torch.save file held in memory; name labels errors.
func Parse(name string, b []byte) (*File, error) {
	return read(name, bytes.NewReader(b), int64(len(b)))
}

func read(name string, r io.ReaderAt, size int64) (_ *File, err error) {
	head := make([]byte, min(size, int64(len(legacyMagic))))
	if _, err := r.ReadAt(head, 0); err != nil && err != io.EOF {
		return nil, fmt.Errorf("checkpoint %s: %w", name, err)
	}
	if IsLegacy(head) {
		return nil, fmt.Errorf("checkpoint %s: a torch.save file of PyTorch before 1.6 (a bare pickle, not a zip): load and save it again with torch.save in PyTorch 1.6 or newer", name)
	}
	if !IsZip(head) {
		return nil, fmt.Errorf("checkpoint %s: %w", name, ErrNotZip)
	}
	z, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: not a PyTorch zip file: %v", name, err)
	}
	a := &archive{name: name, files: map[string]*zip.File{}, size: size}
	for _, f := range z.File {
		a.files[f.Name] = f
	}
	pkl, err := a.dataPickle()
	if err != nil {
		return nil, err
	}
	if o, ok := a.files[a.prefix+"byteorder"]; ok {
		b, err := a.entry(o, 16)
		if err != nil {
			return nil, err
		}
		if s := strings.TrimSpace(string(b)); s != "little" {
			return nil, fmt.Errorf("checkpoint %s: storages in %q byte order: vitc reads little-endian ones", name, s)
		}
	}
	if err := scanPickle(pkl); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %s: %v", name, a.prefix+"data.pkl", err)
	}
	v, err := a.unpickle(pkl)
	if err != nil {
		return nil, err
	}
	return a.stateDict(v)
}

// archive is a torch zip being read.
type archive struct {
	name   string
	prefix string // "ARCHIVE/"
	files  map[string]*zip.File
	size   int64
	// claimed is the bytes the tensors read so far take.
	claimed int64
	cache   map[string][]byte
}

// dataPickle finds and reads ARCHIVE/data.pkl.
func (a *archive) dataPickle() ([]byte, error) {
	var found []string
	for n := range a.files {
		if path.Base(n) == "data.pkl" && strings.Count(n, "/") == 1 {
			found = append(found, n)
		}
	}
	sort.Strings(found)
	switch {
	case len(found) == 0:
		if a.hasTorchScript() {
			return nil, fmt.Errorf("checkpoint %s: a TorchScript archive (torch.jit.save) with no state dict: save model.state_dict() with torch.save", a.name)
		}
		return nil, fmt.Errorf("checkpoint %s: a zip without ARCHIVE/data.pkl: not a torch.save file", a.name)
	case len(found) > 1:
		return nil, fmt.Errorf("checkpoint %s: %d data.pkl files (%s): not one torch.save file", a.name, len(found), strings.Join(found, ", "))
	}
	a.prefix = strings.TrimSuffix(found[0], "data.pkl")
	if a.hasTorchScript() {
		return nil, fmt.Errorf("checkpoint %s: a TorchScript archive (torch.jit.save): vitc reads state dicts and runs no TorchScript code: save model.state_dict() with torch.save", a.name)
	}
	return a.entry(a.files[found[0]], MaxPickle)
}

func (a *archive) hasTorchScript() bool {
	for n := range a.files {
		if strings.Count(n, "/") >= 1 && strings.HasPrefix(strings.SplitN(n, "/", 2)[1], "code/") {
			return true
		}
	}
	return false
}

// entry reads a stored (uncompressed) entry of at most limit bytes.
func (a *archive) entry(f *zip.File, limit int64) ([]byte, error) {
	if f.Method != zip.Store {
		// torch.save stores every entry; a compressed one could claim any
		// size its few bytes inflate to.
		return nil, fmt.Errorf("checkpoint %s: entry %s is compressed (method %d): torch.save stores entries uncompressed", a.name, f.Name, f.Method)
	}
	if f.UncompressedSize64 > uint64(limit) || f.UncompressedSize64 > uint64(a.size) {
		return nil, fmt.Errorf("checkpoint %s: entry %s claims %d bytes (at most %d here)", a.name, f.Name, f.UncompressedSize64, min(limit, a.size))
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: entry %s: %v", a.name, f.Name, err)
	}
	defer rc.Close()
	b := make([]byte, f.UncompressedSize64)
	if _, err := io.ReadFull(rc, b); err != nil {
		return nil, fmt.Errorf("checkpoint %s: entry %s: %v", a.name, f.Name, err)
	}
	return b, nil
}

// unpickle runs gopickle on the checked stream with only the globals a
// state dict needs.
func (a *archive) unpickle(pkl []byte) (v any, err error) {
	defer func() {
		// gopickle trusts the stream's types in places (a tuple where it
		// wants one); a hostile stream must still give an error.
		if p := recover(); p != nil {
			v, err = nil, fmt.Errorf("checkpoint %s: malformed pickle (%v)", a.name, p)
		}
	}()
	u := pickle.NewUnpickler(bytes.NewReader(pkl))
	u.FindClass = a.findClass
	u.PersistentLoad = a.persistentLoad
	v, err = u.Load()
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %v", a.name, err)
	}
	return v, nil
}

// storageDTypes maps torch's storage classes to safetensors' dtype names
// and sizes.
var storageDTypes = map[string]struct {
	dtype string
	size  int
}{
	"FloatStorage": {"F32", 4}, "HalfStorage": {"F16", 2}, "BFloat16Storage": {"BF16", 2},
	"DoubleStorage": {"F64", 8}, "LongStorage": {"I64", 8}, "IntStorage": {"I32", 4},
	"ShortStorage": {"I16", 2}, "CharStorage": {"I8", 1}, "ByteStorage": {"U8", 1}, "BoolStorage": {"BOOL", 1},
}

// storageType is a torch.XStorage global.
type storageType struct {
	dtype string
	size  int
}

// storage is a persistent reference to ARCHIVE/data/KEY.
type storage struct {
	storageType
	key   string
	numel int64
}

// tensorRef is a tensor view on a storage, as _rebuild_tensor_v2 gets it.
type tensorRef struct {
	st     *storage
	offset int64
	shape  []int64
	stride []int64
}

type callable func(args ...any) (any, error)

func (c callable) Call(args ...any) (any, error) { return c(args...) }

// findClass resolves a GLOBAL: only what a state dict pickles.
func (a *archive) findClass(module, name string) (any, error) {
	switch module + "." + name {
	case "collections.OrderedDict":
		return &types.OrderedDictClass{}, nil
	case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
		return callable(a.rebuildTensor), nil
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		return callable(rebuildParameter), nil
	}
	if module == "torch" {
		if d, ok := storageDTypes[name]; ok {
			return &storageType{d.dtype, d.size}, nil
		}
	}
	if module == "__main__" || !strings.HasPrefix(module, "torch") {
		return nil, fmt.Errorf("the pickle refers to %s.%s, which a state dict does not: vitc reads state dicts (torch.save(model.state_dict())) and never runs pickled code", module, name)
	}
	return nil, fmt.Errorf("the pickle refers to %s.%s, which vitc does not read (it reads state dicts of float tensors)", module, name)
}

// persistentLoad resolves ('storage', torch.XStorage, key, location, numel).
func (a *archive) persistentLoad(pid any) (any, error) {
	t, ok := pid.(*types.Tuple)
	if !ok || t.Len() != 5 {
		return nil, fmt.Errorf("persistent id %v: want ('storage', type, key, location, numel)", describe(pid))
	}
	kind, _ := t.Get(0).(string)
	st, okType := t.Get(1).(*storageType)
	key, okKey := t.Get(2).(string)
	numel, okN := toInt(t.Get(4))
	if kind != "storage" || !okType || !okKey || !okN || numel < 0 {
		return nil, fmt.Errorf("persistent id %v: want ('storage', torch.XStorage, key, location, numel)", describe(pid))
	}
	return &storage{storageType: *st, key: key, numel: numel}, nil
}

// rebuildTensor is torch._utils._rebuild_tensor_v2(storage, offset, size,
// stride, requires_grad, backward_hooks[, metadata]) (and the older
// _rebuild_tensor without the last three).
func (a *archive) rebuildTensor(args ...any) (any, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("_rebuild_tensor_v2 with %d arguments", len(args))
	}
	st, ok := args[0].(*storage)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2 of %s, not a storage", describe(args[0]))
	}
	offset, ok := toInt(args[1])
	shape, okShape := ints(args[2])
	stride, okStride := ints(args[3])
	if !ok || !okShape || !okStride || len(shape) != len(stride) || offset < 0 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: bad offset, size or stride")
	}
	return &tensorRef{st: st, offset: offset, shape: shape, stride: stride}, nil
}

// rebuildParameter is torch._utils._rebuild_parameter(data, requires_grad,
// backward_hooks): an nn.Parameter is its data here.
func rebuildParameter(args ...any) (any, error) {
	if len(args) < 1 {
		return nil, fmt.Errorf("_rebuild_parameter without data")
	}
	if _, ok := args[0].(*tensorRef); !ok {
		return nil, fmt.Errorf("_rebuild_parameter of %s, not a tensor", describe(args[0]))
	}
	return args[0], nil
}

// stateDictKeys are where training scripts keep the state dict in the dict
// they save, in the order they are tried.
var stateDictKeys = []string{"state_dict", "model", "model_state_dict", "model_state", "module", "net", "network", "ema", "model_ema"}

// stateDict finds the tensors in the unpickled value: a dict of tensors,
// or one under a key of stateDictKeys.
func (a *archive) stateDict(v any) (*File, error) {
	entries, ok := dictEntries(v)
	if !ok {
		return nil, fmt.Errorf("checkpoint %s: the pickle holds %s, not a state dict", a.name, describe(v))
	}
	under := ""
	if countTensors(entries) == 0 {
		found := false
		for _, k := range stateDictKeys {
			for _, e := range entries {
				if e.key != k {
					continue
				}
				if sub, ok := dictEntries(e.value); ok && countTensors(sub) > 0 {
					entries, under, found = sub, k, true
				}
				break
			}
			if found {
				break
			}
		}
		if !found {
			var keys []string
			for _, e := range entries {
				keys = append(keys, e.key)
			}
			return nil, fmt.Errorf("checkpoint %s: no tensors at the top level nor under %s (its keys: %s)", a.name, strings.Join(stateDictKeys, ", "), shortKeys(keys))
		}
	}
	out := &File{Under: under}
	seen := map[string]bool{}
	for _, e := range entries {
		t, ok := e.value.(*tensorRef)
		if !ok {
			out.Ignored = append(out.Ignored, e.key)
			continue
		}
		if seen[e.key] {
			return nil, fmt.Errorf("checkpoint %s: tensor %s twice", a.name, e.key)
		}
		seen[e.key] = true
		data, shape, err := a.materialise(e.key, t)
		if err != nil {
			return nil, err
		}
		out.Tensors = append(out.Tensors, Tensor{Name: e.key, DType: t.st.dtype, Shape: shape, Data: data})
	}
	return out, nil
}

// materialise copies a tensor view out of its storage, contiguous.
func (a *archive) materialise(name string, t *tensorRef) ([]byte, []int, error) {
	bad := func(format string, args ...any) ([]byte, []int, error) {
		return nil, nil, fmt.Errorf("checkpoint %s: tensor %s: %s", a.name, name, fmt.Sprintf(format, args...))
	}
	es := int64(t.st.size)
	if t.st.numel > a.size/es {
		return bad("storage %s claims %d values, more than the file's %d bytes hold", t.st.key, t.st.numel, a.size)
	}
	count, last := int64(1), t.offset
	shape := make([]int, len(t.shape))
	for i, n := range t.shape {
		s := t.stride[i]
		if n < 0 || s < 0 {
			return bad("negative size or stride")
		}
		if n > 0 && count > math.MaxInt64/n {
			return bad("size %v overflows", t.shape)
		}
		count *= n
		shape[i] = int(n)
		if n > 0 && s > 0 {
			if (n - 1) > (math.MaxInt64-last)/s {
				return bad("stride %v overflows", t.stride)
			}
			last += (n - 1) * s
		}
	}
	if count > 0 && last >= t.st.numel {
		return bad("view (offset %d, size %v, stride %v) reaches beyond its storage of %d values", t.offset, t.shape, t.stride, t.st.numel)
	}
	// Views may share a storage or repeat values (stride 0), so the
	// tensors together may claim more than the file holds, but not
	// without bound.
	if count > (4*a.size+(1<<20)-a.claimed)/es {
		return bad("the tensors claim more than 4× the file's %d bytes", a.size)
	}
	a.claimed += count * es
	raw, err := a.storageBytes(t.st)
	if err != nil {
		return nil, nil, err
	}
	out := make([]byte, count*es)
	if count == 0 {
		return out, shape, nil
	}
	if contiguous(t.shape, t.stride) {
		copy(out, raw[t.offset*es:(t.offset+count)*es])
		return out, shape, nil
	}
	idx := make([]int64, len(shape))
	for o := int64(0); o < count; o++ {
		src := t.offset
		for i := range idx {
			src += idx[i] * t.stride[i]
		}
		copy(out[o*es:(o+1)*es], raw[src*es:(src+1)*es])
		for i := len(idx) - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < t.shape[i] {
				break
			}
			idx[i] = 0
		}
	}
	return out, shape, nil
}

func contiguous(shape, stride []int64) bool {
	want := int64(1)
	for i := len(shape) - 1; i >= 0; i-- {
		if shape[i] != 1 && stride[i] != want {
			return false
		}
		want *= shape[i]
	}
	return true
}

// storageBytes reads ARCHIVE/data/KEY once, checking its size.
func (a *archive) storageBytes(st *storage) ([]byte, error) {
	if b, ok := a.cache[st.key]; ok {
		if int64(len(b)) != st.numel*int64(st.size) {
			return nil, fmt.Errorf("checkpoint %s: storage %s used with two sizes", a.name, st.key)
		}
		return b, nil
	}
	f, ok := a.files[a.prefix+"data/"+st.key]
	if !ok {
		return nil, fmt.Errorf("checkpoint %s: storage %s is missing (no %sdata/%s)", a.name, st.key, a.prefix, st.key)
	}
	want := st.numel * int64(st.size)
	if f.UncompressedSize64 != uint64(want) {
		return nil, fmt.Errorf("checkpoint %s: storage %s holds %d bytes, the pickle says %d values of %d bytes", a.name, st.key, f.UncompressedSize64, st.numel, st.size)
	}
	b, err := a.entry(f, want)
	if err != nil {
		return nil, err
	}
	if a.cache == nil {
		a.cache = map[string][]byte{}
	}
	a.cache[st.key] = b
	return b, nil
}

type entry struct {
	key   string
	value any
}

// dictEntries lists a dict's string-keyed entries in order.
func dictEntries(v any) ([]entry, bool) {
	var out []entry
	switch d := v.(type) {
	case *types.Dict:
		for _, e := range *d {
			k, ok := e.Key.(string)
			if !ok {
				return nil, false
			}
			out = append(out, entry{k, e.Value})
		}
	case *types.OrderedDict:
		for el := d.List.Front(); el != nil; el = el.Next() {
			e := el.Value.(*types.OrderedDictEntry)
			k, ok := e.Key.(string)
			if !ok {
				return nil, false
			}
			out = append(out, entry{k, e.Value})
		}
	default:
		return nil, false
	}
	return out, true
}

func countTensors(es []entry) int {
	n := 0
	for _, e := range es {
		if _, ok := e.value.(*tensorRef); ok {
			n++
		}
	}
	return n
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	case *big.Int:
		if x.IsInt64() {
			return x.Int64(), true
		}
	}
	return 0, false
}

func ints(v any) ([]int64, bool) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, false
	}
	out := make([]int64, t.Len())
	for i := range out {
		n, ok := toInt(t.Get(i))
		if !ok {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

// describe names a value's kind without printing it (a hostile value may
// be large or cyclic).
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		return "a string"
	case *types.Tuple:
		return fmt.Sprintf("a tuple of %d", x.Len())
	case *types.List:
		return "a list"
	case *types.GenericClass:
		return x.Module + "." + x.Name
	case *tensorRef:
		return "a tensor"
	}
	return fmt.Sprintf("a %T", v)
}

func shortKeys(keys []string) string {
	if len(keys) > 8 {
		return strings.Join(keys[:8], ", ") + fmt.Sprintf(", … (%d)", len(keys))
	}
	if len(keys) == 0 {
		return "none"
	}
	return strings.Join(keys, ", ")
}
