package export

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"vitc/datasets"
	"vitc/export/hw"
	"vitc/export/sim"
	"vitc/vit"
)

// CheckedBundle is a bundle opened for a hardware config whose golden
// vectors reproduce bit for bit on the simulator.
type CheckedBundle struct {
	*LoadedBundle
	// Stats is the cycle account of one image (in a bundle compiled for a
	// batch, per image over the batch).
	Stats  sim.Stats
	runner *sim.Runner
}

// OpenChecked opens dir for h and runs its golden input, which must
// reproduce every golden value (with the weights resident too, in a bundle
// compiled for a batch).
func OpenChecked(dir string, h hw.Config) (*CheckedBundle, error) {
	lb, err := OpenBundle(dir, h)
	if err != nil {
		return nil, err
	}
	runner, err := sim.NewRunner(lb.Program)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	tr, stats, err := runner.Run(lb.Golden)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	if d := tr.Diff(lb.Expected); d != "" {
		return nil, fmt.Errorf("bundle %s: the golden vectors do not reproduce: %s", dir, d)
	}
	if b := lb.Program.Batch; b > 1 {
		// A batch: the golden input again, now with the weights resident
		// (no weight loads), must reproduce too; its account is every image
		// after the first.
		tr, steady, err := runner.Run(lb.Golden)
		if err != nil {
			return nil, fmt.Errorf("bundle %s: %w", dir, err)
		}
		if d := tr.Diff(lb.Expected); d != "" {
			return nil, fmt.Errorf("bundle %s: with the weights resident, the golden vectors do not reproduce: %s", dir, d)
		}
		stats = sim.Amortise(h, stats, steady, b)
	}
	return &CheckedBundle{LoadedBundle: lb, Stats: stats, runner: runner}, nil
}

// SimOptions say how much of a data set Simulate runs and what it measures.
type SimOptions struct {
	Limit   int // at most this many test images (0: all)
	Workers int // images in parallel (0: one per core)
	// Layers measures every quantized tensor's error against float
	// (slower: the float graph and the integer reference run per image).
	Layers bool
	// Progress, when set, is called after each image with the images done
	// and the running agreement and integer accuracy.
	Progress func(done, total int, agreement, accuracy float64)
}

// SimResult is a bundle's run over a test split against its float model.
type SimResult struct {
	N             int
	Top1Agreement float64 // integer against float top-1
	AccuracyInt   float64
	AccuracyFloat float64
	Seconds       float64 // of simulation
	// TensorErrors and KeptAgreement are SimOptions.Layers' measures.
	TensorErrors  []TensorError
	KeptAgreement []KeptAgreement
}

// ErrInterrupted: the context ended the simulation.
var ErrInterrupted = errors.New("interrupted")

// Simulate runs ds's test split on the simulator and on the bundle's float
// model: images in parallel, one machine per worker, results kept by image
// index so that everything reported is independent of scheduling. ds must
// be read for the bundle's model (vit.DataOptions, vit.FitData).
func (cb *CheckedBundle) Simulate(ctx context.Context, ds *datasets.Dataset, o SimOptions) (*SimResult, error) {
	m, meta, err := cb.FloatModel()
	if err != nil {
		return nil, err
	}
	var probe *LayerProbe
	if o.Layers {
		if probe, err = cb.LayerProbe(m); err != nil {
			return nil, fmt.Errorf("bundle %s: %w", cb.Dir, err)
		}
	}
	n := ds.Test.Len()
	if o.Limit > 0 {
		n = min(n, o.Limit)
	}
	stats := datasets.Stats{Mean: meta.NormMean, Std: meta.NormStd}
	if len(stats.Mean) == 0 {
		stats = datasets.ComputeStats(ds)
	}
	// The float model's logits, batch by batch; each simulator worker then
	// makes its own images, so memory does not grow with the test split.
	chw := m.Channels * m.Image * m.Image
	const batch = 64
	loader := datasets.NewLoader(ds, &ds.Test, datasets.LoaderOptions{Batch: batch, Stats: stats, Prefetch: true})
	logits := make([]float32, 0, n*m.Classes)
	for b := 0; len(logits) < n*m.Classes; b++ {
		x, _, k := loader.Batch(0, b)
		k = min(k, n-len(logits)/m.Classes)
		logits = append(logits, vit.Predict(m, x[:k*chw], k, batch)...)
	}
	y := ds.Test.Y[:n]
	start := time.Now()

	workers := max(1, min(o.Workers, n))
	if o.Workers == 0 {
		workers = max(1, min(runtime.GOMAXPROCS(0), n))
	}
	runners := []*sim.Runner{cb.runner}
	for len(runners) < workers {
		r, err := sim.NewRunner(cb.Program)
		if err != nil {
			return nil, fmt.Errorf("bundle %s: %w", cb.Dir, err)
		}
		runners = append(runners, r)
	}
	pred := make([]int, n)
	sums := make([]LayerSums, n)
	errs := make([]error, n)
	var (
		next    atomic.Int64
		failed  atomic.Bool
		mu      sync.Mutex
		done    int
		agreeN  int
		okIntN  int
		wg      sync.WaitGroup
		stopped = func() bool { return failed.Load() || ctx.Err() != nil }
	)
	for _, r := range runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img := make([]float32, chw)
			for !stopped() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				img = ds.Image(&ds.Test, i, img) // as the loader makes it: raw, then normalised
				stats.Normalize(img, m.Channels, m.Image, m.Image)
				in := cb.QuantizeInput(img)
				tr, _, err := r.Run(in)
				if err == nil && probe != nil {
					sums[i], err = probe.Image(img, in, tr)
				}
				if err != nil {
					errs[i] = fmt.Errorf("bundle %s: image %d: %w", cb.Dir, i, err)
					failed.Store(true)
					return
				}
				pred[i] = sim.Argmax(tr.Logits)
				if o.Progress == nil {
					continue
				}
				pf := vit.Argmax(logits[i*m.Classes : (i+1)*m.Classes])
				mu.Lock()
				done++
				if pred[i] == pf {
					agreeN++
				}
				if pred[i] == y[i] {
					okIntN++
				}
				o.Progress(done, n, float64(agreeN)/float64(done), float64(okIntN)/float64(done))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	if ctx.Err() != nil {
		return nil, ErrInterrupted
	}
	res := &SimResult{N: n, Seconds: time.Since(start).Seconds()}
	agree, okInt, okFloat := 0, 0, 0
	var total LayerSums
	for i := 0; i < n; i++ {
		pf := vit.Argmax(logits[i*m.Classes : (i+1)*m.Classes])
		if pred[i] == pf {
			agree++
		}
		if pred[i] == y[i] {
			okInt++
		}
		if pf == y[i] {
			okFloat++
		}
		if probe != nil {
			if total, err = total.Add(sums[i]); err != nil {
				return nil, fmt.Errorf("bundle %s: image %d: %w", cb.Dir, i, err)
			}
		}
	}
	if n > 0 {
		res.Top1Agreement = float64(agree) / float64(n)
		res.AccuracyInt = float64(okInt) / float64(n)
		res.AccuracyFloat = float64(okFloat) / float64(n)
	}
	if probe != nil {
		res.TensorErrors = total.Errors(cb.Quant.Scales, WorstTensors)
		res.KeptAgreement = total.KeptAgreements()
	}
	return res, nil
}

// WorstTensors is how many tensors SimOptions.Layers flags as worst.
const WorstTensors = 3
