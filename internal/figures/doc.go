// Package figures draws vitc's PNG figures: training curves, block-pruning
// mask heatmaps and the patches token pruning keeps. It is the only package
// that imports a plotting library, so that the model, the engine and the
// techniques build without one.
package figures
