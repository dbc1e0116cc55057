// Package training owns a training run: its options, the loop, the
// resumable state and the run directory. It knows no technique. Everything
// a technique does to a run it does as a Component, at named points of the
// loop: before each step (schedules), in the forward pass (the model's
// extension points, vit.Pass), in the loss (an objective or an extra term),
// at each epoch's end (metrics), and in the saved state (resume). The one
// place that decides which components a run has is vitc/vit/pipeline.
//
// One optimizer step, in order:
//
//	for each StepHook:  BeforeStep(step, total)
//	logits = model.ForwardPass(pass, images)  // pass holds every component that extends the model
//	loss   = Objective (cross-entropy unless a component replaces it)
//	       + Σ LossTerm.Loss()                // regularisers from what the forward pass saw
//	backward, clip, AdamW
package training
