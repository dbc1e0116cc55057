package taylorattn

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"vitc/autograd"
	"vitc/internal/npy"
)

// The PyTorch port of both formulations (tools/torchref/sparseref.py) wrote
// these; testdata/sparse/README.md says how.
const torchDir = "testdata/sparse"

type torchCase struct {
	Name        string  `json:"name"`
	Input       string  `json:"input"`
	Formulation string  `json:"formulation"`
	Heads       int     `json:"heads"`
	Theta       float64 `json:"theta"`
	Alpha       float64 `json:"alpha"`
	Reg         float64 `json:"reg"`
	AbsMean     float64 `json:"abs_mean"`
	Density     float64 `json:"density"`
}

func readNpy(t *testing.T, name string) ([]float32, []int) {
	t.Helper()
	data, shape, err := npy.ReadFile(filepath.Join(torchDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return data, shape
}

// TestTorchOracle runs each fixture case through every kernel and compares
// the branch's output, mean|S|, mask density, the layer's output (Taylor
// attention + branch) and both gradients with respect to qkv with PyTorch's
// float64 values: relative error (max|Δ| / max|torch|) at most 1e-5.
func TestTorchOracle(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(torchDir, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var manifest struct {
		Cases []torchCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest.Cases) == 0 {
		t.Fatal("no cases")
	}
	const tol = 1e-5
	seen := map[string]bool{}
	for _, c := range manifest.Cases {
		seen[c.Formulation] = true
		qkvData, shape := readNpy(t, c.Input+"_qkv.npy")
		gout, _ := readNpy(t, c.Input+"_gout.npy")
		want := map[string][]float32{}
		for _, k := range []string{"extra", "dqkv_extra", "out", "dqkv_out"} {
			want[k], _ = readNpy(t, c.Name+"_"+k+".npy")
		}
		for _, kn := range []struct {
			name string
			k    kernel
		}{{"auto", kernelAuto}, {"dense", kernelDense}, {"sparse", kernelSparse}} {
			for _, layer := range []bool{false, true} {
				tp := autograd.NewTape(true)
				qkv := autograd.FromData(append([]float32(nil), qkvData...), shape...)
				qkv.SetNeedsGrad()
				qkv.Grad = make([]float32, qkv.Len())
				extra, absMean, density := correction(tp, qkv, c.Heads, c.Formulation, float32(c.Alpha), float32(c.Theta), kn.k)
				y, out, grad := extra, "extra", "dqkv_extra"
				if layer {
					y = autograd.Add(tp, Attention(tp, qkv, c.Heads, false).Out, extra)
					out, grad = "out", "dqkv_out"
				}
				got := append([]float32(nil), y.Data...)
				tp.GradOf(absMean)[0] = float32(c.Reg)
				tp.BackwardFrom(y, gout)
				errOut, errGrad := relErr(got, want[out]), relErr(qkv.Grad, want[grad])
				errAbs := math.Abs(float64(absMean.Data[0])-c.AbsMean) / c.AbsMean
				t.Logf("%s %s %s: rel err %s %.2g, mean|S| %.2g, d%s %.2g", c.Name, kn.name, out, out, errOut, errAbs, out, errGrad)
				if errOut > tol || errGrad > tol || errAbs > tol {
					t.Errorf("%s, %s kernel: relative error %s %.3g, gradient %.3g, mean|S| %.3g (tolerance %g)", c.Name, kn.name, out, errOut, errGrad, errAbs, tol)
				}
				if density != c.Density {
					t.Errorf("%s, %s kernel: mask density %v, PyTorch %v", c.Name, kn.name, density, c.Density)
				}
			}
		}
	}
	for _, f := range Formulations {
		if !seen[f] {
			t.Errorf("no fixture for formulation %s", f)
		}
	}
}
