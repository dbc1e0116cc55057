package training

import (
	"fmt"
	"sort"
	"strings"
	"vitc/vit"
)

// Recipe is a named group of training settings (TrainOptions' optimiser,
// schedule, regularisation, augmentation and initialisation) that suits one
// kind of run; a run may still override any of them. docs/recipes.md has the
// measurements they were chosen from.
type Recipe struct {
	Name        string
	Description string
	LR, MinLR   float64 // peak and final learning rate (AdamW, cosine)
	Batch       int     // the batch, or its cap with MinSteps
	// MinSteps, when set, halves the batch (down to 16) until an epoch has
	// at least this many steps: a small set then still gets enough updates
	// (BatchFor).
	MinSteps int
	// WarmupFraction is the linear warm-up as a fraction of the run's
	// epochs, so short and long runs warm up alike.
	WarmupFraction float64
	WeightDecay    float64
	LabelSmoothing float64
	ClipNorm       float64 // 0: no clipping
	// Augment turns on the random shift (sized by datasets.AutoShift: none
	// on images up to 16 px) and, where labels survive it, the mirror, for
	// runs of at least AugmentMinEpochs epochs: a short run learns faster
	// without it, a long one overfits without it.
	Augment          bool
	AugmentMinEpochs int
	// AugmentMirroredOnly limits Augment to data whose images augmentation
	// may mirror (RGB photos; not handwriting or grey images): on those the
	// shifts cost pruning points.
	AugmentMirroredOnly bool
	InitScheme          string // vit.InitTorch or vit.InitTimm; unused when weights are loaded
	// SparseWeight is Taylor attention's sparse-branch weight α (0: off).
	SparseWeight float64
}

// DefaultRecipe is what `vitc train` uses unless told otherwise;
// PruneRecipe what `vitc prune` does.
const (
	DefaultRecipe = "scratch-small"
	PruneRecipe   = "prune"
)

// Recipes are the named recipes.
var Recipes = map[string]Recipe{
	// PyTorch's plain loop with PyTorch's initialisation, batch sized to the
	// data and augmentation on long runs only (docs/recipes.md: digits,
	// CIFAR-10 and Fashion-MNIST subsets). Clipping at 1 binds for the first
	// third of a run and was worth points; the sparse Taylor branch cost
	// points and time on real data.
	"scratch-small": {
		Name: "scratch-small", Description: "from scratch on small data (8–64 px, hundreds to tens of thousands of images)",
		LR: 1e-3, MinLR: 1e-5, Batch: 64, MinSteps: 40, WarmupFraction: 0.05, WeightDecay: 0.05, LabelSmoothing: 0.1, ClipNorm: 1,
		Augment: true, AugmentMinEpochs: 20, InitScheme: vit.InitTorch, SparseWeight: 0,
	},
	// DeiT's fine-tuning rule scaled to a small batch (5e-4·batch/512 ≈ 6e-5
	// at 64, rounded up for short runs): a pretrained start needs small
	// steps, a short warm-up and light augmentation only.
	"finetune": {
		Name: "finetune", Description: "from pretrained weights (--init)",
		LR: 1e-4, MinLR: 1e-6, Batch: 64, WarmupFraction: 0.02, WeightDecay: 0.05, LabelSmoothing: 0.1, ClipNorm: 1,
		Augment: true, InitScheme: vit.InitTorch, SparseWeight: 0,
	},
	// The pruning stage: from the trained teacher's weights under
	// distillation, at the pace the block scores need (lr 1e-3); batch as
	// scratch-small. Augmentation (shift and mirror) only on images that may
	// be mirrored: it gained 1.3 points on the CIFAR subset and cost 0.7 on
	// Fashion-MNIST and 7.7 on digits (docs/pruning.md, "Augmentation during
	// pruning").
	"prune": {
		Name: "prune", Description: "block and token pruning under distillation (vitc prune)",
		LR: 1e-3, MinLR: 1e-5, Batch: 64, MinSteps: 40, WarmupFraction: 0.05, WeightDecay: 0.05, LabelSmoothing: 0.1, ClipNorm: 1,
		Augment: true, AugmentMinEpochs: 20, AugmentMirroredOnly: true, InitScheme: vit.InitTorch, SparseWeight: 0,
	},
}

// AugmentFor reports whether the recipe augments a run of this many epochs.
func (r Recipe) AugmentFor(epochs int) bool {
	return r.Augment && epochs >= r.AugmentMinEpochs
}

// BatchFor is the recipe's batch for n training images.
func (r Recipe) BatchFor(n int) int {
	b := r.Batch
	for r.MinSteps > 0 && b > 16 && n/b < r.MinSteps {
		b /= 2
	}
	return b
}

// RecipeNames lists the recipes in a stable order.
func RecipeNames() []string {
	names := make([]string, 0, len(Recipes))
	for n := range Recipes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// LookupRecipe returns a named recipe.
func LookupRecipe(name string) (Recipe, error) {
	r, ok := Recipes[name]
	if !ok {
		return Recipe{}, fmt.Errorf("unknown recipe %q (want %s)", name, strings.Join(RecipeNames(), ", "))
	}
	return r, nil
}
