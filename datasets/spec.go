// Package datasets provides vitc's training data: an embedded procedural
// default set, readers for the common small-image formats, per-channel
// normalisation, augmentation and deterministic batching. A split keeps its
// images compactly, at the size they were stored (store.go); a Loader makes
// each batch as float32 NCHW, resized and normalised, on worker goroutines
// while the previous batch trains.
package datasets

import (
	"fmt"
	"strings"
)

// Split holds one split's labels and its images as they were read (not
// normalised), which Dataset.Image and a Loader turn into the dataset's
// shape one image at a time.
type Split struct {
	// X, when the images are kept as float32 (the embedded synthetic set,
	// digits, splits built by hand), holds them in [0,1], N·C·H·W
	// row-major at the shape they were read at: the dataset's, unless
	// ResizeTo or ConvertChannels changed it since.
	X []float32
	Y []int // N labels in [0, len(Classes))

	// Compact storage, when X is nil: pix8 holds N images of shape (8-bit
	// values, CIFAR-10 and MNIST), images one stored image each (folders).
	pix8   []uint8
	images []stored
	// shape is the stored shape of X or pix8 (zero: the dataset's).
	shape [3]int
	// view is what Image does to a stored image.
	view view
}

// StoredBytes is the memory the split's images take as stored.
func (s *Split) StoredBytes() int {
	n := 4*len(s.X) + len(s.pix8)
	for i := range s.images {
		n += s.images[i].bytes()
	}
	return n
}

// Len is the number of images in the split.
func (s *Split) Len() int { return len(s.Y) }

// Dataset is a train/test pair of splits plus what a model needs to know
// about their images.
type Dataset struct {
	Name    string // "synthetic", "digits", "mnist", "cifar10", "folder"
	C, H, W int
	Classes []string
	// FlipOK reports that a horizontal flip keeps every label, so the
	// loader may use it as augmentation (true for natural images, false for
	// digits, where a mirrored 2 is not a 2).
	FlipOK      bool
	Train, Test Split
	// Skipped counts files left out because they did not decode
	// (Options.SkipBadImages).
	Skipped int
	// Named says Classes are the data's own names (folders, CIFAR's
	// batches.meta, the synthetic shapes, Options.ClassNames), not label
	// numbers (digits, MNIST-format files).
	Named bool
	// NativeC, NativeH and NativeW are the images' shape as stored, before
	// Options converted them (NativeH and NativeW 0: a folder of images of
	// several sizes).
	NativeC, NativeH, NativeW int
}

// IndexNames says whether names are just the label numbers "0", "1", ...
func IndexNames(names []string) bool {
	for i, n := range names {
		if n != fmt.Sprint(i) {
			return false
		}
	}
	return true
}

// NamesClasses reports whether the data names its classes by more than
// their numbers.
func (d *Dataset) NamesClasses() bool { return d.Named && !IndexNames(d.Classes) }

// Relabel moves every label l to order[l] and names the classes names
// (order maps the data's classes into names' order, e.g. a checkpoint's).
func (d *Dataset) Relabel(order []int, names []string) {
	for _, s := range []*Split{&d.Train, &d.Test} {
		for i, y := range s.Y {
			s.Y[i] = order[y]
		}
	}
	d.Classes = append([]string(nil), names...)
	d.Named = true
}

// Load parses a data spec and reads the data it names:
//
//	"" or "synthetic"   the embedded procedural set (depends on seed)
//	"digits:FILE"       scikit-learn's digits.csv(.gz)
//	"mnist:DIR"         the four MNIST IDX files, optionally gzipped
//	"cifar10:DIR"       the CIFAR-10 binary batches
//	"folder:DIR"        DIR/{train,test}/<class>/*.png|*.jpg
//
// seed only matters for the synthetic set; every file-backed split is fixed
// so that accuracies stay comparable across runs.
func Load(spec string, seed int64) (*Dataset, error) {
	kind, arg, hasArg := strings.Cut(spec, ":")
	needArg := func() error {
		if !hasArg || arg == "" {
			return fmt.Errorf("data spec %q needs a path (%s:PATH)", spec, kind)
		}
		return nil
	}
	switch kind {
	case "", "synthetic":
		if hasArg {
			return nil, fmt.Errorf("data spec %q: synthetic takes no argument", spec)
		}
		return Synthetic(seed), nil
	case "digits":
		if err := needArg(); err != nil {
			return nil, err
		}
		return LoadDigits(arg)
	case "mnist":
		if err := needArg(); err != nil {
			return nil, err
		}
		return LoadMNIST(arg)
	case "cifar10":
		if err := needArg(); err != nil {
			return nil, err
		}
		return LoadCIFAR10(arg)
	case "folder":
		if err := needArg(); err != nil {
			return nil, err
		}
		return LoadFolder(arg)
	}
	return nil, fmt.Errorf("unknown data kind %q (want synthetic, digits:FILE, mnist:DIR, cifar10:DIR or folder:DIR)", kind)
}

// digitClasses are the class names of the ten-digit datasets.
func digitClasses() []string {
	c := make([]string, 10)
	for i := range c {
		c[i] = fmt.Sprint(i)
	}
	return c
}

// bytesSplit is a split of n 8-bit images of shape (c, h, w), values v
// standing for v/255.
func bytesSplit(pix []byte, y []int, c, h, w int) Split {
	return Split{pix8: pix, Y: y, shape: [3]int{c, h, w}}
}
