// Command folderpixels writes the test split of a folder: data set, as vitc's
// reader decodes it, to a float32 .npy (N,C,H,W in [0,1]) and the labels to a
// second .npy (int64), to compare with another decoder (PIL) pixel by pixel.
//
//	go run ./tools/folderpixels DIR X.npy Y.npy
package main

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"

	"vitc/datasets"
)

func writeNpy(path, descr string, shape []int, data []byte) error {
	sh := "("
	for _, s := range shape {
		sh += fmt.Sprintf("%d, ", s)
	}
	sh += ")"
	h := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, sh)
	for (10+len(h)+1)%64 != 0 {
		h += " "
	}
	h += "\n"
	b := append([]byte("\x93NUMPY\x01\x00"), byte(len(h)), byte(len(h)>>8))
	b = append(b, h...)
	return os.WriteFile(path, append(b, data...), 0o644)
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: folderpixels DIR X.npy Y.npy")
		os.Exit(2)
	}
	d, err := datasets.LoadFolder(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	n := d.Test.Len()
	x := make([]byte, 4*len(d.Test.X))
	for i, v := range d.Test.X {
		binary.LittleEndian.PutUint32(x[4*i:], math.Float32bits(v))
	}
	y := make([]byte, 8*n)
	for i, v := range d.Test.Y {
		binary.LittleEndian.PutUint64(y[8*i:], uint64(v))
	}
	if err := writeNpy(os.Args[2], "<f4", []int{n, d.C, d.H, d.W}, x); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := writeNpy(os.Args[3], "<i8", []int{n}, y); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%d test images, %dx%dx%d, classes %v\n", n, d.C, d.H, d.W, d.Classes)
}
