package tokenprune

import "fmt"

// OriginalPatches maps each stage's kept token indices back to the original
// patches (0-based, row-major over the patch grid) still alive after that
// stage. n0 is the number of patches of the input image. Token t ≥ 1 of stage
// 0 is patch t−1; a later stage's input is the previous stage's output (cls,
// kept tokens in order, then the fused token unless nothing was dropped), so
// stages compose. A kept fused token stands for no single patch and is left
// out. It panics on indices KeepFuse cannot have produced.
func OriginalPatches(n0 int, kept [][]int) [][]int {
	alive, err := AlivePatches(n0, kept)
	if err != nil {
		panic(err)
	}
	return alive
}

// AlivePatches is OriginalPatches with an error instead of a panic, for
// callers that check indices they did not produce.
func AlivePatches(n0 int, kept [][]int) ([][]int, error) {
	if n0 < 0 {
		return nil, fmt.Errorf("tokenprune: negative patch count %d", n0)
	}
	// tok[i] is the original patch of token i+1 of the current stage's
	// input, or -1 for a fused token.
	tok := make([]int, n0)
	for i := range tok {
		tok[i] = i
	}
	alive := make([][]int, len(kept))
	for l, ks := range kept {
		next := make([]int, 0, len(ks)+1)
		for i, t := range ks {
			if t < 1 || t > len(tok) {
				return nil, fmt.Errorf("tokenprune: stage %d keeps token %d of %d patch tokens", l, t, len(tok))
			}
			if i > 0 && t <= ks[i-1] {
				return nil, fmt.Errorf("tokenprune: stage %d kept tokens are not strictly ascending (%d after %d)", l, t, ks[i-1])
			}
			next = append(next, tok[t-1])
		}
		// KeepFuse appends a fused token exactly when it dropped something.
		if len(ks) < len(tok) {
			next = append(next, -1)
		}
		for _, p := range next {
			if p >= 0 {
				alive[l] = append(alive[l], p)
			}
		}
		tok = next
	}
	return alive, nil
}
