package export

import (
	"testing"

	"vitc/export/hw"
	"vitc/export/sim"
)

// Bundles written before --act-bits (testdata/int8-*: vitc 945b3c7, token
// pruning and block-sparse weights, one softmax and one Taylor) have no
// quant.act_bits and programs encoded without the act, b_type and shift
// fields: they must still read as int8 and reproduce their golden vectors.
func TestBundlesBeforeActBitsStillSimulate(t *testing.T) {
	for _, name := range []string{"int8-softmax-pruned", "int8-taylor-pruned"} {
		t.Run(name, func(t *testing.T) {
			lb, err := OpenBundle("testdata/"+name, hw.Default())
			if err != nil {
				t.Fatal(err)
			}
			if lb.Quant.ActBits != 0 || lb.Quant.Bits() != 8 || lb.Program.ActBytes != 1 {
				t.Fatalf("act_bits %d read as %d bits, %d-byte elements", lb.Quant.ActBits, lb.Quant.Bits(), lb.Program.ActBytes)
			}
			r, err := sim.NewRunner(lb.Program)
			if err != nil {
				t.Fatal(err)
			}
			got, _, err := r.Run(lb.Golden)
			if err != nil {
				t.Fatal(err)
			}
			if d := got.Diff(lb.Expected); d != "" {
				t.Fatalf("golden vectors: %s", d)
			}
			if len(got.Kept) != 2 {
				t.Fatalf("%d pruning stages, want 2", len(got.Kept))
			}
		})
	}
}
