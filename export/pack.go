package export

import (
	"encoding/binary"

	"vitc/export/hw"
)

// Weights are stored in block×block tiles, the PE's unit of work: tile
// (tr, tc) holds output channels tr·b.. and inputs tc·b.., row-major, zero
// padded at the edges. A dense matrix stores every tile in (tr, tc) order
// ("tiled"); a block-sparse one stores only the non-zero tiles, grouped by
// the PE the exporter assigned them to ("bsr"), after an index table.

// tile is one weight tile's position.
type tile struct{ row, col int }

// tiles cuts W (out, in) into b×b tiles, returning every tile's bytes in
// (row, col) order and whether it holds a non-zero weight.
func tiles(w []int8, out, in, b int) ([]tile, [][]byte, []bool) {
	tr, tc := ceilDiv(out, b), ceilDiv(in, b)
	var pos []tile
	var data [][]byte
	var nonzero []bool
	for r := 0; r < tr; r++ {
		for c := 0; c < tc; c++ {
			t := make([]byte, b*b)
			nz := false
			for i := 0; i < b; i++ {
				o := r*b + i
				if o >= out {
					break
				}
				for j := 0; j < b; j++ {
					k := c*b + j
					if k >= in {
						break
					}
					v := w[o*in+k]
					t[i*b+j] = byte(v)
					nz = nz || v != 0
				}
			}
			pos, data, nonzero = append(pos, tile{r, c}), append(data, t), append(nonzero, nz)
		}
	}
	return pos, data, nonzero
}

// packed is a weight matrix laid out for the PE array.
type packed struct {
	sparse bool
	wgt    []byte // tiles
	index  []byte // sparse only: the index table
	tiles  int    // tiles stored
	total  int    // tiles of the dense matrix
}

// packWeights tiles W and, when some tile is all zero, packs it block-sparse
// with a balanced tile→PE assignment. The index table is little-endian
// uint32 words: [tiles, PEs, count per PE…, (row | col<<16) per tile…].
func packWeights(w []int8, out, in int, h hw.Config) packed {
	b := h.Block
	pos, data, nonzero := tiles(w, out, in, b)
	p := packed{total: len(pos)}
	var live []int
	for i, nz := range nonzero {
		if nz {
			live = append(live, i)
		}
	}
	if len(live) == len(pos) {
		for _, t := range data {
			p.wgt = append(p.wgt, t...)
		}
		p.tiles = len(pos)
		return p
	}
	p.sparse, p.tiles = true, len(live)
	pes := h.PERows * h.PECols // PEs of one compute module; every module holds the same tiles
	perPE := assignTiles(live, pes)
	words := []uint32{uint32(len(live)), uint32(pes)}
	for _, ts := range perPE {
		words = append(words, uint32(len(ts)))
	}
	for _, ts := range perPE {
		for _, i := range ts {
			words = append(words, uint32(pos[i].row)|uint32(pos[i].col)<<16)
			p.wgt = append(p.wgt, data[i]...)
		}
	}
	p.index = binary.LittleEndian.AppendUint32(nil, words[0])
	for _, v := range words[1:] {
		p.index = binary.LittleEndian.AppendUint32(p.index, v)
	}
	return p
}

// assignTiles spreads the live tiles over the PEs: every tile costs the
// same, so the greedy least-loaded choice gives counts that differ by at
// most one. Live tiles arrive in (row, col) order, so the tiles of one
// output row land on different PEs and their partial sums meet in the adder
// tree instead of queueing in one PE.
func assignTiles(live []int, pes int) [][]int {
	perPE := make([][]int, pes)
	next := 0
	for _, i := range live {
		// Round-robin is least-loaded-first for equal costs.
		perPE[next] = append(perPE[next], i)
		next = (next + 1) % pes
	}
	return perPE
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
