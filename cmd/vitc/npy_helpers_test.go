package main

import (
	"testing"

	"vitc/internal/npy"
)

func writeNpy(t *testing.T, path string, data []float32, shape []int) {
	t.Helper()
	if err := npy.WriteFile(path, data, shape); err != nil {
		t.Fatal(err)
	}
}

func readNpy(t *testing.T, path string) ([]float32, []int) {
	t.Helper()
	data, shape, err := npy.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data, shape
}
