package datasets

import (
	"cmp"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"vitc/internal/opterr"
)

// ErrMixedSizes: a folder's images differ in size and Options.ImageSize
// does not say what to resize them to.
var ErrMixedSizes = errors.New("images of several sizes")

// ErrBadImage: a folder's file does not read or decode, and
// Options.SkipBadImages does not say to leave such files out. The error
// names the file and the option (an opterr.Error), so a caller can name its
// own switch.
var ErrBadImage = errors.New("an image file does not decode")

// Options change how data is read for a model.
type Options struct {
	// ImageSize, if set, resizes every image to ImageSize×ImageSize: a
	// fixed-size set is resampled as a whole, a folder's photos get timm's
	// eval transform (shorter side to size/0.875, centre crop). Files are
	// decoded once, at load, and kept at their own size; the resizing is
	// done per batch (Dataset.Image), so memory does not grow with the size.
	ImageSize int `json:"image_size"`
	// ValSplit is the fraction of each class held out as the test split
	// of a folder without test/ (or val/); the choice is deterministic.
	ValSplit float64 `json:"val_split"`
	// SkipBadImages leaves out files that do not decode (counted in
	// Dataset.Skipped) instead of failing on the first.
	SkipBadImages bool `json:"skip_bad_images"`
	// Channels, if set, converts the images to 1 or 3 channels (luma, or
	// grey replicated) for a model that takes those.
	Channels int `json:"channels"`
	// ClassNames, if set, names the data's classes in label order (data
	// whose files name none, or other names than its own).
	ClassNames []string `json:"class_names,omitempty"`
	// ClassOrder, if set, moves the labels into this order of names (a
	// model's), which must name every class of the data (after ClassNames).
	ClassOrder []string `json:"class_order,omitempty"`
	// Flip says whether augmentation may mirror images: "on", "off", or
	// "auto" (or empty): the set's own claim, and for folder data, on for
	// 3-channel images. Photos keep their labels mirrored; a folder of
	// grey images is more often handwriting or symbols, which do not.
	Flip string `json:"flip"`
}

// LoadWith is Load with opts.
func LoadWith(spec string, seed int64, opts Options) (*Dataset, error) {
	if opts.ImageSize < 0 {
		return nil, fmt.Errorf("image size %d must be positive", opts.ImageSize)
	}
	if opts.ValSplit < 0 || opts.ValSplit >= 1 || math.IsNaN(opts.ValSplit) {
		return nil, fmt.Errorf("validation split %g is not in [0, 1)", opts.ValSplit)
	}
	switch opts.Flip {
	case "", "auto", "on", "off":
	default:
		return nil, fmt.Errorf("Options.Flip %q must be auto, on or off", opts.Flip)
	}
	kind, arg, _ := strings.Cut(spec, ":")
	var d *Dataset
	var err error
	if kind == "folder" && arg != "" {
		d, err = LoadFolderWith(arg, opts)
	} else {
		d, err = Load(spec, seed)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case opts.Flip == "on":
		d.FlipOK = true
	case opts.Flip == "off":
		d.FlipOK = false
	case kind == "folder":
		d.FlipOK = d.C == 3
	}
	if d.NativeC == 0 { // every reader but the folder's: what it read is the stored shape
		d.NativeC, d.NativeH, d.NativeW = d.C, d.H, d.W
	}
	if opts.ClassNames != nil {
		if len(opts.ClassNames) != len(d.Classes) {
			return nil, fmt.Errorf("%d class names for the %d classes of %s (Options.ClassNames)", len(opts.ClassNames), len(d.Classes), spec)
		}
		d.Classes, d.Named = append([]string(nil), opts.ClassNames...), true
	}
	if opts.ClassOrder != nil {
		order := make([]int, len(d.Classes))
		for i, c := range d.Classes {
			if order[i] = slices.Index(opts.ClassOrder, c); order[i] < 0 {
				return nil, fmt.Errorf("%s: class %q is not among the names of Options.ClassOrder", spec, c)
			}
		}
		d.Relabel(order, opts.ClassOrder)
	}
	if opts.ImageSize > 0 {
		d.ResizeTo(opts.ImageSize)
	}
	if opts.Channels == 1 || opts.Channels == 3 {
		d.ConvertChannels(opts.Channels)
	}
	return d, nil
}

// LoadFolder reads dir/train/<class>/* and dir/test/<class>/* (images of
// one size). Classes are the sorted training subdirectories; test may use
// any subset of them. FlipOK is false because nothing in a folder says
// whether its classes are mirror-symmetric; LoadWith decides it by
// Options.Flip.
func LoadFolder(dir string) (*Dataset, error) { return LoadFolderWith(dir, Options{}) }

// LoadFolderWith reads an image folder: dir/train/<class>/* with
// dir/test/<class>/* (or val/), or with opts.ValSplit of each class held
// out when there is no test folder; or dir/<class>/* with opts.ValSplit.
// Images of mixed sizes need opts.ImageSize.
func LoadFolderWith(dir string, opts Options) (*Dataset, error) {
	trainDir, testDir := filepath.Join(dir, "train"), ""
	for _, name := range []string{"test", "val"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err == nil && st.IsDir() {
			testDir = filepath.Join(dir, name)
			break
		}
	}
	if st, err := os.Stat(trainDir); err != nil || !st.IsDir() {
		if opts.ValSplit == 0 || testDir != "" {
			_, err := classDirs(trainDir)
			return nil, fmt.Errorf("folder: %v", cmp.Or(err, fmt.Errorf("%s is not a directory", trainDir)))
		}
		trainDir = dir // dir/<class>/*: the validation split comes from it
	}
	classes, err := classDirs(trainDir)
	if err != nil {
		return nil, fmt.Errorf("folder: %w", err)
	}
	if len(classes) == 0 {
		return nil, fmt.Errorf("folder: %s: no class subdirectories", trainDir)
	}
	if testDir == "" && opts.ValSplit == 0 {
		return nil, fmt.Errorf("folder: %s has no test/ or val/ folder: hold out part of train with a validation split", dir)
	}
	var testClasses []string
	if testDir != "" {
		if testClasses, err = classDirs(testDir); err != nil {
			return nil, fmt.Errorf("folder: %w", err)
		}
	}
	for _, c := range testClasses {
		if !slices.Contains(classes, c) {
			return nil, fmt.Errorf("folder: %s: class %q has no training directory", filepath.Join(testDir, c), c)
		}
	}
	f := folderReader{opts: opts}
	train, err := f.readSplit(trainDir, classes, classes, true)
	if err != nil {
		return nil, err
	}
	var test []labelled
	if testDir != "" {
		if test, err = f.readSplit(testDir, testClasses, classes, false); err != nil {
			return nil, err
		}
	} else {
		train, test = holdOut(train, len(classes), opts.ValSplit)
	}
	if len(test) == 0 {
		return nil, fmt.Errorf("folder: %s: no test images", cmp.Or(testDir, dir))
	}
	if len(train) == 0 {
		return nil, fmt.Errorf("folder: %s: no training images left", trainDir)
	}
	d := &Dataset{Name: "folder", C: 3, H: f.h, W: f.w, Classes: classes, Skipped: f.skipped, Named: true}
	if f.allGray {
		d.C = 1
	}
	d.NativeC = d.C
	if !f.mixedSource {
		d.NativeH, d.NativeW = f.srcH, f.srcW
	}
	d.Train, d.Test = f.pack(train, d.C), f.pack(test, d.C)
	return d, nil
}

// holdOut moves round(frac·n) images of each class (at least one when the
// class has two) to the test split, chosen by a hash of their file names:
// the split never changes with the seed or the order files are listed in.
func holdOut(items []labelled, classes int, frac float64) (train, test []labelled) {
	byClass := make([][]labelled, classes)
	for _, it := range items {
		byClass[it.label] = append(byClass[it.label], it)
	}
	hash := func(s string) uint64 { h := fnv.New64a(); h.Write([]byte(s)); return h.Sum64() }
	for _, c := range byClass {
		slices.SortFunc(c, func(a, b labelled) int {
			return cmp.Or(cmp.Compare(hash(a.name), hash(b.name)), cmp.Compare(a.name, b.name))
		})
		k := int(math.Round(frac * float64(len(c))))
		if k == 0 && len(c) >= 2 {
			k = 1
		}
		test = append(test, c[:k]...)
		train = append(train, c[k:]...)
	}
	return train, test
}

// folderReader carries what must agree across every file: the size set by
// the first image (or the requested one), and whether all have been grey.
type folderReader struct {
	opts    Options
	first   string
	h, w    int
	allGray bool
	skipped int
	// The stored size of the first image, and whether any other differs
	// (the images were resized to Options.ImageSize as they were read).
	srcH, srcW  int
	mixedSource bool
}

type labelled struct {
	im    stored
	label int
	name  string // file name within its class folder
}

func (f *folderReader) readSplit(dir string, classes, all []string, needEach bool) ([]labelled, error) {
	var out []labelled
	for _, c := range classes {
		cdir := filepath.Join(dir, c)
		ents, err := os.ReadDir(cdir)
		if err != nil {
			return nil, fmt.Errorf("folder: %w", err)
		}
		label := slices.Index(all, c)
		found := 0
		for _, e := range ents {
			if e.IsDir() || strings.HasPrefix(e.Name(), ".") || !isImageName(e.Name()) {
				continue
			}
			path := filepath.Join(cdir, e.Name())
			im, err := LoadImage(path)
			if err != nil {
				if f.opts.SkipBadImages {
					f.skipped++
					continue
				}
				return nil, &opterr.Error{What: "folder: " + err.Error(), Advice: "leave out files that do not decode with %s", Option: "Options.SkipBadImages", Kind: ErrBadImage}
			}
			if f.srcH == 0 {
				f.srcH, f.srcW = im.H, im.W
			}
			f.mixedSource = f.mixedSource || im.H != f.srcH || im.W != f.srcW
			h, w := im.H, im.W
			if s := f.opts.ImageSize; s > 0 {
				h, w = s, s // EvalResize's size, applied when the image is read
			}
			if f.first == "" {
				f.first, f.h, f.w, f.allGray = path, h, w, true
			}
			if h != f.h || w != f.w {
				return nil, &opterr.Error{What: fmt.Sprintf("folder: %s: image is %dx%d but %s is %dx%d", path, w, h, f.first, f.w, f.h),
					Advice: "give an image size to resize them to with %s", Option: "Options.ImageSize", Kind: ErrMixedSizes}
			}
			f.allGray = f.allGray && im.C == 1
			out = append(out, labelled{compact(im), label, e.Name()})
			found++
		}
		if needEach && found == 0 {
			return nil, fmt.Errorf("folder: %s: no .png, .jpg or .jpeg images", cdir)
		}
	}
	return out, nil
}

// pack makes a split of the images as stored, to be given timm's eval
// resize (Options.ImageSize) and c channels when read.
func (f *folderReader) pack(items []labelled, c int) Split {
	s := Split{images: make([]stored, len(items)), Y: make([]int, len(items)),
		view: view{evalSize: f.opts.ImageSize, packC: c}}
	for i, it := range items {
		s.images[i], s.Y[i] = it.im, it.label
	}
	return s
}
