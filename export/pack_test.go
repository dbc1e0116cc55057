package export

import "testing"

// The tile→PE assignment of a pruned matrix is as balanced as equal-cost
// tiles allow: the busiest PE, which sets a spgemm's cycles, holds
// ⌈tiles/PEs⌉ tiles and the idlest ⌊tiles/PEs⌋, whatever the pruning left;
// and the tiles of one output row (consecutive in the live list) never
// share a PE while the row has no more tiles than there are PEs.
func TestAssignTilesIsBalanced(t *testing.T) {
	for _, pes := range []int{1, 7, 24} {
		for tiles := 0; tiles <= 300; tiles++ {
			live := make([]int, tiles)
			for i := range live {
				live[i] = 3*i + i%2 // gaps, as pruning leaves them
			}
			perPE := assignTiles(live, pes)
			lo, hi, n := tiles, 0, 0
			where := map[int]int{}
			for pe, ts := range perPE {
				lo, hi, n = min(lo, len(ts)), max(hi, len(ts)), n+len(ts)
				for _, i := range ts {
					where[i] = pe
				}
			}
			if n != tiles || hi != ceilDiv(tiles, pes) || lo != tiles/pes {
				t.Fatalf("%d tiles on %d PEs: %d assigned, %d to %d per PE", tiles, pes, n, lo, hi)
			}
			for i := 1; i < tiles && i < pes; i++ {
				if where[live[i]] == where[live[i-1]] {
					t.Fatalf("%d tiles on %d PEs: neighbours %d and %d share PE %d", tiles, pes, i-1, i, where[live[i]])
				}
			}
		}
	}
}
