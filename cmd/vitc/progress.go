package main

import (
	"fmt"
	"io"
	"os"
	"vitc/vit/training"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progressBar shows one bar per epoch with loss, accuracy, img/s and ETA on
// a terminal; elsewhere (CI logs, pipes) it prints one line per epoch.
type progressBar struct {
	w     io.Writer
	tty   bool
	bar   *progressbar.ProgressBar
	epoch int
	total int
}

func newProgress(w io.Writer) *progressBar {
	tty := false
	if f, ok := w.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	return &progressBar{w: w, tty: tty}
}

func (p *progressBar) EpochStart(epoch, epochs, batches, done int) {
	p.epoch, p.total = epoch, epochs
	p.Start(batches, done, fmt.Sprintf("epoch %d/%d", epoch+1, epochs))
}

// Start shows a bar of total steps, done of them already, on a terminal.
func (p *progressBar) Start(total, done int, desc string) {
	if !p.tty {
		return
	}
	p.bar = progressbar.NewOptions(total,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(24),
		progressbar.OptionThrottle(100_000_000),
		progressbar.OptionClearOnFinish(),
	)
	_ = p.bar.Set(done)
}

// Update moves the bar to done with a new description.
func (p *progressBar) Update(done int, desc string) {
	if p.bar == nil {
		return
	}
	p.bar.Describe(desc)
	_ = p.bar.Set(done)
}

// Finish removes the bar.
func (p *progressBar) Finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		p.bar = nil
	}
}

func (p *progressBar) Step(done int, loss, acc, imgPerSec float64) {
	p.Update(done, fmt.Sprintf("epoch %d/%d loss %.4f acc %5.1f%% %4.0f img/s", p.epoch+1, p.total, loss, 100*acc, imgPerSec))
}

func (p *progressBar) EpochEnd(m training.EpochMetrics) {
	p.Finish()
	skipped := ""
	if m.Skipped > 0 {
		skipped = fmt.Sprintf("  skipped %d non-finite batches", m.Skipped)
	}
	fmt.Fprintf(p.w, "epoch %d/%d  train loss %.4f acc %5.1f%%  test loss %.4f acc %5.1f%%  %.0f img/s  %.1fs%s\n",
		m.Epoch, p.total, m.TrainLoss, 100*m.TrainAcc, m.TestLoss, 100*m.TestAcc, m.ImgPerSec, m.Seconds, skipped)
}
