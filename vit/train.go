package vit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"vitc/autograd"
	"vitc/datasets"
	"vitc/taylorattn"
)

// TrainOptions are the settings of a training run. They are saved with the
// run's state, so `--resume` repeats them exactly.
type TrainOptions struct {
	// Recipe names the recipe the settings came from (informational: the
	// fields below are what the run uses).
	Recipe         string  `json:"recipe,omitempty"`
	Data           string  `json:"data"`
	Config         Config  `json:"config"`
	Epochs         int     `json:"epochs"`
	Batch          int     `json:"batch"`
	LR             float64 `json:"lr"`
	MinLR          float64 `json:"min_lr"`
	WeightDecay    float64 `json:"weight_decay"`
	WarmupEpochs   float64 `json:"warmup_epochs"`
	LabelSmoothing float64 `json:"label_smoothing"`
	ClipNorm       float64 `json:"clip_norm"`
	Augment        bool    `json:"augment"`
	// AugmentShift is the augmentation's largest shift in pixels
	// (datasets.LoaderOptions.Shift: 0 is H/8, negative none).
	AugmentShift int    `json:"augment_shift,omitempty"`
	Seed         int64  `json:"seed"`
	Init         string `json:"init,omitempty"` // checkpoint to start from
	// InitScheme initialises a fresh model: InitTorch or InitTimm ("", as
	// in states saved before the option).
	InitScheme string `json:"init_scheme,omitempty"`
	// Sparse is the Taylor attention's training branch (Weight 0: off).
	Sparse taylorattn.SparseOptions `json:"sparse"`
	// Teacher, when set, trains by distillation from that checkpoint.
	Teacher string  `json:"teacher,omitempty"`
	KDAlpha float64 `json:"kd_alpha,omitempty"`
	KDTemp  float64 `json:"kd_temperature,omitempty"`
	// CheckpointEvery saves resumable state this often inside an epoch, so
	// a killed run loses at most this much work (0: only at epoch ends).
	CheckpointEvery time.Duration `json:"checkpoint_every"`
	// SkipNonFinite is how many batches with a non-finite loss or gradient
	// the run may skip (no update) before it stops; 0 stops at the first.
	SkipNonFinite int `json:"skip_nonfinite,omitempty"`
}

// Batch is one training batch as the loop sees it.
type Batch struct {
	Images *autograd.Tensor // (B, C, H, W), normalised
	Labels []int
	Step   int // global optimizer step, 0-based
}

// Objective is the main loss of a step (cross-entropy by default,
// distillation when a teacher is set).
type Objective interface {
	Loss(tp *autograd.Tape, b Batch, logits *autograd.Tensor) *autograd.Tensor
}

// LossTerm is an extra scalar added to the objective (regularisers), built
// from what the component saw during this step's forward pass; it returns
// nil when it contributes nothing this step.
type LossTerm interface {
	Name() string
	Loss(tp *autograd.Tape) *autograd.Tensor
}

// Hook follows the run's schedule: BeforeStep sets per-step state (density,
// annealing, keep rates); EpochMetrics adds columns to metrics.jsonl.
type Hook interface {
	BeforeStep(step, totalSteps int)
	EpochMetrics() map[string]any
}

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
	// gradient (--skip-nonfinite).
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
	Skipped     int // batches already skipped under TrainOptions.SkipNonFinite
}

func (e *NonFiniteError) Error() string {
	msg := fmt.Sprintf("non-finite %s (%v) at epoch %d, step %d: stopped, the last good checkpoint is kept", e.What, e.Value, e.Epoch+1, e.Step)
	if e.Skipped > 0 {
		return msg + fmt.Sprintf(" (%d bad batches skipped before, the --skip-nonfinite limit)", e.Skipped)
	}
	return msg
}

// Run is one training run: a model, its data and the components that shape
// the loss and the schedule.
type Run struct {
	Opts      TrainOptions
	Model     *Model
	Meta      Meta
	Data      *datasets.Dataset
	Objective Objective
	Terms     []LossTerm
	Hooks     []Hook
	Progress  Progress
	// Save persists state after every epoch and at interrupts; nil saves
	// nothing (tests). See NewRunDir.
	Save func(s *State) error

	opt   *autograd.AdamW
	state State
}

// State is everything needed to continue a run exactly where it stopped.
type State struct {
	Opts      TrainOptions `json:"options"`
	Epoch     int          `json:"epoch"`      // current epoch, 0-based
	NextBatch int          `json:"next_batch"` // first batch not yet trained in Epoch
	Step      int          `json:"step"`       // optimizer steps taken
	Done      bool         `json:"done"`
	Seconds   float64      `json:"seconds"` // training time so far
	LossSum   float64      `json:"loss_sum"`
	Correct   int          `json:"correct"`
	Seen      int          `json:"seen"`
	// GradNormSum adds this epoch's pre-clipping gradient norms over its
	// GradSteps updates (EpochMetrics.GradNorm).
	GradNormSum float64 `json:"grad_norm_sum,omitempty"`
	GradSteps   int     `json:"grad_steps,omitempty"`
	// Skipped counts the batches skipped for non-finite values: SkippedEpoch
	// in this epoch, Skipped in the whole run (the --skip-nonfinite budget).
	SkippedEpoch int             `json:"skipped_epoch,omitempty"`
	Skipped      int             `json:"skipped,omitempty"`
	History      []EpochMetrics  `json:"history"`
	Run          *Run            `json:"-"`
	Optimizer    *autograd.AdamW `json:"-"`
}

// CrossEntropyObjective is the default loss, with label smoothing.
type CrossEntropyObjective struct{ Smoothing float32 }

// Loss implements Objective.
func (o CrossEntropyObjective) Loss(tp *autograd.Tape, b Batch, logits *autograd.Tensor) *autograd.Tensor {
	return autograd.CrossEntropy(tp, logits, b.Labels, o.Smoothing)
}

// Result is what a finished run reports.
type Result struct {
	Test         EvalResult
	TrainSeconds float64
	History      []EpochMetrics
}

// Resume continues from a saved state instead of starting fresh; the model
// must already hold the state's weights.
func (r *Run) Resume(s *State, opt *autograd.AdamW) {
	r.state = *s
	r.opt = opt
}

func (r *Run) trainLoader() *datasets.Loader {
	return datasets.NewLoader(r.Data, &r.Data.Train, datasets.LoaderOptions{
		Batch: r.Opts.Batch, Shuffle: true, Augment: r.Opts.Augment, Shift: r.Opts.AugmentShift, Seed: r.Opts.Seed,
		Stats: r.stats(), DropLast: r.Data.Train.Len() >= r.Opts.Batch,
	})
}

// TestLoader serves the test split in order, normalised like training.
func (r *Run) TestLoader() *datasets.Loader {
	return datasets.NewLoader(r.Data, &r.Data.Test, datasets.LoaderOptions{Batch: 256, Stats: r.stats()})
}

func (r *Run) stats() datasets.Stats {
	return datasets.Stats{Mean: r.Meta.NormMean, Std: r.Meta.NormStd}
}

// Train runs (or continues) the loop until the planned epochs are done or
// ctx is cancelled.
func (r *Run) Train(ctx context.Context) (Result, error) {
	if r.Objective == nil {
		r.Objective = CrossEntropyObjective{Smoothing: float32(r.Opts.LabelSmoothing)}
	}
	if r.opt == nil {
		r.opt = autograd.NewAdamW(r.Opts.WeightDecay)
		r.state = State{Opts: r.Opts}
	}
	train := r.trainLoader()
	test := r.TestLoader()
	batches := train.NumBatches()
	total := r.Opts.Epochs * batches
	sched := autograd.CosineSchedule{Base: r.Opts.LR, Min: r.Opts.MinLR,
		Warmup: int(r.Opts.WarmupEpochs * float64(batches)), Total: total}
	m := r.Model
	ps := m.Params
	tp := autograd.NewTape(true)
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
			for _, h := range r.Hooks {
				h.BeforeStep(st.Step, total)
			}
			tp.Reset()
			ps.ZeroGrad()
			b := Batch{Images: autograd.FromData(x[:n*chw], n, m.Channels, m.Image, m.Image), Labels: y[:n], Step: st.Step}
			logits := m.Forward(tp, b.Images)
			loss := r.Objective.Loss(tp, b, logits)
			if len(r.Terms) > 0 {
				terms, weights := []*autograd.Tensor{loss}, []float32{1}
				for _, term := range r.Terms {
					if l := term.Loss(tp); l != nil {
						terms, weights = append(terms, l), append(weights, 1)
					}
				}
				loss = autograd.WeightedSum(tp, terms, weights)
			}
			lv := float64(loss.Data[0])
			var bad *NonFiniteError
			var gradNorm float64
			if !isFinite(lv) {
				bad = &NonFiniteError{What: "loss", Epoch: st.Epoch, Step: st.Step, Value: lv}
			} else {
				tp.Backward(loss)
				if norm := ps.ClipGradNorm(r.Opts.ClipNorm); !isFinite(norm) {
					bad = &NonFiniteError{What: "gradient norm", Epoch: st.Epoch, Step: st.Step, Value: norm}
				} else {
					gradNorm = norm
				}
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
				if Argmax(logits.Data[i*m.Classes:(i+1)*m.Classes]) == y[i] {
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
		ev := Evaluate(m, test)
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
		for _, h := range r.Hooks {
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
		// model and metrics beside it were written) only has to write them.
		st.Done = true
		if err := r.save(); err != nil {
			return Result{}, err
		}
	}
	res := Result{TrainSeconds: st.Seconds, History: st.History, Test: Evaluate(m, test)}
	return res, nil
}

func (r *Run) save() error {
	if r.Save == nil {
		return nil
	}
	r.state.Run = r
	r.state.Optimizer = r.opt
	return r.Save(&r.state)
}

func (r *Run) saveThen(err error) error {
	if serr := r.save(); serr != nil {
		return fmt.Errorf("%w (and saving state failed: %v)", err, serr)
	}
	return err
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
