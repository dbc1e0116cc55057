package vit_test

import (
	"os"
	"testing"

	"vitc/autograd"
)

// TestMain runs the package's tests with released tape buffers filled with
// NaN, so that a backward closure reading a tensor its op did not declare
// (autograd.Tape.Record's saved) fails a test instead of passing on stale
// values.
func TestMain(m *testing.M) {
	autograd.PoisonReleased(true)
	os.Exit(m.Run())
}
