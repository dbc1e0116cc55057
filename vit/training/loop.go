package training

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"vitc/autograd"
	"vitc/datasets"
	"vitc/vit"
)

// Progress receives live updates; the CLI draws a progress bar from them.
type Progress interface {
	EpochStart(epoch, epochs, batches, done int)
	Step(done int, loss, acc, imgPerSec float64)
	EpochEnd(m EpochMetrics)
}

// EpochMetrics is one line of metrics.jsonl.
type EpochMetrics struct {
	Epoch     int     `json:"epoch"`
	TrainLoss float64 `json:"train_loss"`
	TrainAcc  float64 `json:"train_accuracy"`
	TestLoss  float64 `json:"test_loss"`
	TestAcc   float64 `json:"test_accuracy"`
	LR        float64 `json:"lr"`
	Seconds   float64 `json:"seconds"`
	ImgPerSec float64 `json:"img_per_s"`
	// Skipped counts this epoch's batches skipped for a non-finite loss or
	// gradient (Options.SkipNonFinite).
	Skipped int `json:"skipped_batches,omitempty"`
	// GradNorm is the epoch's mean global gradient norm before clipping:
	// far above ClipNorm all epoch, clipping sets the step size, not lr.
	GradNorm float64        `json:"grad_norm"`
	Extra    map[string]any `json:"extra,omitempty"`
}

// ErrInterrupted is returned when the context is cancelled; the state at the
// last completed step has been saved.
var ErrInterrupted = errors.New("training interrupted, state saved")

// NonFiniteError reports a NaN or infinite loss or gradient.
type NonFiniteError struct {
	What        string
	Epoch, Step int
	Value       float64
	Skipped     int // batches already skipped under Options.SkipNonFinite
}

func (e *NonFiniteError) Error() string {
	msg := fmt.Sprintf("non-finite %s (%v) at epoch %d, step %d: stopped, the last good checkpoint is kept", e.What, e.Value, e.Epoch+1, e.Step)
	if e.Skipped > 0 {
		return msg + fmt.Sprintf(" (%d bad batches skipped before, the skip-nonfinite budget)", e.Skipped)
	}
	return msg
}

// Run is one training run: a model, its data and the components that shape
// its forward pass, loss and schedule.
type Run struct {
	Opts       Options
	Model      *vit.Model
	Meta       vit.Meta
	Data       *datasets.Dataset
	Components []Component
	// Engine runs each batch's forward and backward pass (nil: Native).
	Engine   Engine
	Progress Progress
	// Save persists state after every epoch, every Opts.CheckpointEvery and
	// at interrupts; nil saves nothing (tests). See DirSaver.
	Save func(s *State) error

	opt   *autograd.AdamW
	state State
}

// State is where a run stands: enough, with the model's weights and the
// optimizer's moments, to continue exactly where it stopped.
type State struct {
	Epoch     int  `json:"epoch"`      // current epoch, 0-based
	NextBatch int  `json:"next_batch"` // first batch not yet trained in Epoch
	Step      int  `json:"step"`       // optimizer steps taken
	Done      bool `json:"done"`
	// Seconds is the training time so far.
	Seconds float64 `json:"seconds"`
	LossSum float64 `json:"loss_sum"`
	Correct int     `json:"correct"`
	Seen    int     `json:"seen"`
	// GradNormSum adds this epoch's pre-clipping gradient norms over its
	// GradSteps updates (EpochMetrics.GradNorm).
	GradNormSum float64 `json:"grad_norm_sum,omitempty"`
	GradSteps   int     `json:"grad_steps,omitempty"`
	// Skipped counts the batches skipped for non-finite values: SkippedEpoch
	// in this epoch, Skipped in the whole run (the SkipNonFinite budget).
	SkippedEpoch int            `json:"skipped_epoch,omitempty"`
	Skipped      int            `json:"skipped,omitempty"`
	History      []EpochMetrics `json:"history"`
}

// Result is what a finished run reports.
type Result struct {
	Test         vit.EvalResult
	TrainSeconds float64
	History      []EpochMetrics
}

// Optimizer is the run's AdamW (nil before Train or Restore).
func (r *Run) Optimizer() *autograd.AdamW { return r.opt }

// CurrentState is where the run stands now.
func (r *Run) CurrentState() State { return r.state }

func (r *Run) trainLoader() *datasets.Loader {
	return datasets.NewLoader(r.Data, &r.Data.Train, datasets.LoaderOptions{
		Batch: r.Opts.Batch, Shuffle: true, Augment: r.Opts.Augment, Shift: r.Opts.AugmentShift,
		CropScale: r.Opts.AugmentCropScale, Seed: r.Opts.Seed,
		Stats: r.Stats(), DropLast: r.Data.Train.Len() >= r.Opts.Batch, Prefetch: true,
	})
}

// TestLoader serves the test split in order, normalised like training, in
// batches of vit.EvalBatch.
func (r *Run) TestLoader() *datasets.Loader {
	return datasets.NewLoader(r.Data, &r.Data.Test, datasets.LoaderOptions{
		Batch: vit.EvalBatch(r.Model.Config, r.Opts.Batch), Stats: r.Stats(), Prefetch: true})
}

// Stats are the normalisation statistics the model was trained with.
func (r *Run) Stats() datasets.Stats {
	return datasets.Stats{Mean: r.Meta.NormMean, Std: r.Meta.NormStd}
}

// hooks is the run's components sorted by the hook points they implement.
type hooks struct {
	pass      vit.Pass
	steps     []StepHook
	objective Objective
	terms     []LossTerm
	reporters []EpochReporter
}

func (r *Run) hooks(tp *autograd.Tape) (*hooks, error) {
	h := &hooks{pass: vit.Pass{Tape: tp}}
	keepRates := 0
	for _, c := range r.Components {
		extend(&h.pass, c)
		if _, ok := c.(vit.KeepRate); ok {
			keepRates++
		}
		if s, ok := c.(StepHook); ok {
			h.steps = append(h.steps, s)
		}
		if o, ok := c.(Objective); ok {
			if h.objective != nil {
				return nil, fmt.Errorf("components %s and another both replace the objective", c.Name())
			}
			h.objective = o
		}
		if t, ok := c.(LossTerm); ok {
			h.terms = append(h.terms, t)
		}
		if e, ok := c.(EpochReporter); ok {
			h.reporters = append(h.reporters, e)
		}
	}
	if keepRates > 1 {
		return nil, fmt.Errorf("%d components set the token keep rate; a run takes one", keepRates)
	}
	return h, nil
}

// Train runs (or continues) the loop until the planned epochs are done or
// ctx is cancelled.
func (r *Run) Train(ctx context.Context) (Result, error) {
	if err := r.Opts.Validate(); err != nil {
		return Result{}, err
	}
	if _, err := ParamGroups(r.Model, r.Opts); err != nil {
		return Result{}, err
	}
	if r.opt == nil {
		r.opt = autograd.NewAdamW(r.Opts.WeightDecay)
	}
	train := r.trainLoader()
	test := r.TestLoader()
	batches := train.NumBatches()
	if r.Opts.MaxSteps > 0 {
		batches = min(batches, r.Opts.MaxSteps)
	}
	total := r.Opts.Epochs * batches
	sched := autograd.CosineSchedule{Base: r.Opts.LR, Min: r.Opts.MinLR,
		Warmup: int(r.Opts.WarmupEpochs * float64(batches)), Total: total}
	m := r.Model
	ps := m.Params
	engine := r.Engine
	if engine == nil {
		engine = Native{}
	}
	tp := autograd.NewTape(true)
	hk, err := r.hooks(tp)
	if err != nil {
		return Result{}, err
	}
	hk.pass.Recompute = r.Opts.Recompute
	var last *vit.EvalResult // the last epoch's evaluation, when this process ran it
	chw := m.Channels * m.Image * m.Image
	st := &r.state
	lastSave := time.Now()
	trained := false

	for ; st.Epoch < r.Opts.Epochs; st.Epoch++ {
		if r.Progress != nil {
			r.Progress.EpochStart(st.Epoch, r.Opts.Epochs, batches, st.NextBatch)
		}
		epochStart := time.Now()
		epochStartSeconds := st.Seconds
		for ; st.NextBatch < batches; st.NextBatch++ {
			if ctx.Err() != nil {
				return Result{}, r.saveThen(ErrInterrupted)
			}
			t0 := time.Now()
			trained = true
			x, y, n := train.Batch(st.Epoch, st.NextBatch)
			lr := sched.At(st.Step)
			for _, h := range hk.steps {
				h.BeforeStep(st.Step, total)
			}
			tp.Reset()
			ps.ZeroGrad()
			images := autograd.FromData(x[:n*chw], n, m.Channels, m.Image, m.Image) // (B, C, H, W)
			logits, loss, err := engine.Step(m, &hk.pass, images, func(logits *autograd.Tensor) *autograd.Tensor {
				var loss *autograd.Tensor // (B, classes) logits → scalar
				if hk.objective != nil {
					loss = hk.objective.Objective(tp, images, y[:n], logits)
				} else {
					loss = autograd.CrossEntropy(tp, logits, y[:n], float32(r.Opts.LabelSmoothing))
				}
				if len(hk.terms) > 0 {
					terms, weights := []*autograd.Tensor{loss}, []float32{1}
					for _, term := range hk.terms {
						if l := term.Loss(tp); l != nil {
							terms, weights = append(terms, l), append(weights, 1)
						}
					}
					loss = autograd.WeightedSum(tp, terms, weights)
				}
				return loss
			})
			if err != nil {
				return Result{}, err
			}
			lv := float64(loss.Data[0])
			var bad *NonFiniteError
			var gradNorm float64
			if !isFinite(lv) {
				bad = &NonFiniteError{What: "loss", Epoch: st.Epoch, Step: st.Step, Value: lv}
			} else if norm := ps.ClipGradNorm(r.Opts.ClipNorm); !isFinite(norm) {
				bad = &NonFiniteError{What: "gradient norm", Epoch: st.Epoch, Step: st.Step, Value: norm}
			} else {
				gradNorm = norm
			}
			if bad != nil {
				if st.Skipped >= r.Opts.SkipNonFinite {
					bad.Skipped = st.Skipped
					return Result{}, bad
				}
				// Skip the batch: no update, and the schedule moves on as
				// if it had trained, so the run still ends on plan.
				st.Skipped++
				st.SkippedEpoch++
				st.Step++
				continue
			}
			r.opt.Update(ps, lr)
			st.Step++
			st.LossSum += lv * float64(n)
			for i := 0; i < n; i++ {
				if vit.Argmax(logits.Data[i*m.Classes:(i+1)*m.Classes]) == y[i] {
					st.Correct++
				}
			}
			st.Seen += n
			st.GradNormSum += gradNorm
			st.GradSteps++
			dt := time.Since(t0).Seconds()
			st.Seconds += dt
			if r.Progress != nil {
				r.Progress.Step(st.NextBatch+1, st.LossSum/float64(st.Seen), float64(st.Correct)/float64(st.Seen), float64(n)/dt)
			}
			if r.Opts.CheckpointEvery > 0 && time.Since(lastSave) > r.Opts.CheckpointEvery && st.NextBatch+1 < batches {
				st.NextBatch++ // this batch is done
				err := r.save()
				st.NextBatch--
				if err != nil {
					return Result{}, err
				}
				lastSave = time.Now()
			}
		}
		// Evaluation takes the buffers the last step released.
		tp.Reset()
		ev := vit.EvaluatePass(m, test, hk.pass)
		last = &ev
		em := EpochMetrics{
			Epoch: st.Epoch + 1, TrainLoss: st.LossSum / math.Max(1, float64(st.Seen)),
			TrainAcc: float64(st.Correct) / math.Max(1, float64(st.Seen)),
			TestLoss: ev.Loss, TestAcc: ev.Accuracy, LR: sched.At(max(st.Step-1, 0)),
			Seconds: time.Since(epochStart).Seconds(), Skipped: st.SkippedEpoch,
			GradNorm: st.GradNormSum / math.Max(1, float64(st.GradSteps)),
		}
		if train := st.Seconds - epochStartSeconds; train > 0 {
			em.ImgPerSec = float64(st.Seen) / train
		}
		for _, h := range hk.reporters {
			for k, v := range h.EpochMetrics() {
				if em.Extra == nil {
					em.Extra = map[string]any{}
				}
				em.Extra[k] = v
			}
		}
		st.History = append(st.History, em)
		st.NextBatch, st.LossSum, st.Correct, st.Seen, st.SkippedEpoch = 0, 0, 0, 0, 0
		st.GradNormSum, st.GradSteps = 0, 0
		if r.Progress != nil {
			r.Progress.EpochEnd(em)
		}
		if st.Epoch+1 == r.Opts.Epochs {
			st.Done = true
		}
		st.Epoch++
		err := r.save()
		st.Epoch--
		if err != nil {
			return Result{}, err
		}
		lastSave = time.Now()
	}
	if !trained {
		// A run resumed from the state of its last epoch (killed before the
		// outputs beside it were written) only has to write them.
		st.Done = true
		if err := r.save(); err != nil {
			return Result{}, err
		}
	}
	if last == nil {
		tp.Reset()
		ev := vit.EvaluatePass(m, test, hk.pass)
		last = &ev
	}
	// The model has not changed since the last epoch's evaluation.
	return Result{TrainSeconds: st.Seconds, History: st.History, Test: *last}, nil
}

func (r *Run) save() error {
	if r.Save == nil {
		return nil
	}
	return r.Save(&r.state)
}

func (r *Run) saveThen(err error) error {
	if serr := r.save(); serr != nil {
		return fmt.Errorf("%w (and saving state failed: %v)", err, serr)
	}
	return err
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
