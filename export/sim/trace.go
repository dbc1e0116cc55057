package sim

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"vitc/export/bundle"
)

// Trace is what one image leaves behind: each block's output tokens (rows ×
// D int8 or int16 values, held as int16), each token-pruning stage's index list (kept tokens, then the
// dropped ones, both ascending), and the int32 logits. The simulator and
// the integer reference model both produce one; they must be equal.
type Trace struct {
	Embed  []int16
	Blocks [][]int16
	Kept   [][]int32
	Logits []int32
}

// Diff describes the first difference between two traces, or returns "".
func (t *Trace) Diff(u *Trace) string {
	if len(t.Blocks) != len(u.Blocks) || len(t.Kept) != len(u.Kept) {
		return fmt.Sprintf("%d blocks and %d pruning stages against %d and %d", len(t.Blocks), len(t.Kept), len(u.Blocks), len(u.Kept))
	}
	if !slices.Equal(t.Embed, u.Embed) {
		return "embedding output differs"
	}
	for i := range t.Blocks {
		if !slices.Equal(t.Blocks[i], u.Blocks[i]) {
			return fmt.Sprintf("block %d output differs (%d against %d values)", i, len(t.Blocks[i]), len(u.Blocks[i]))
		}
	}
	for i := range t.Kept {
		if !slices.Equal(t.Kept[i], u.Kept[i]) {
			return fmt.Sprintf("pruning stage %d keeps %v against %v", i, t.Kept[i], u.Kept[i])
		}
	}
	if !slices.Equal(t.Logits, u.Logits) {
		return fmt.Sprintf("logits %v against %v", t.Logits, u.Logits)
	}
	return ""
}

// Argmax is the predicted class: the first largest logit.
func Argmax(logits []int32) int {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	return best
}

// ReadTrace collects the stored values from DRAM after a run.
func ReadTrace(dram []byte, slots []bundle.Slot) (*Trace, error) {
	t := &Trace{}
	for _, s := range slots {
		end := s.Addr + s.Bytes()
		if s.Addr < 0 || end > int64(len(dram)) || end < s.Addr {
			return nil, fmt.Errorf("slot %s at dram:0x%x is outside DRAM", s.Name, s.Addr)
		}
		t.Add(s.Name, s.DType, dram[s.Addr:end])
	}
	return t, nil
}

// Add records the stored value named name ("embed", "blockN", "keptN",
// "logits"; others are ignored) from its little-endian bytes of dtype
// ("int8" or "int16" for embed and blocks). Blocks and kept lists must
// come in order.
func (t *Trace) Add(name, dtype string, b []byte) {
	switch {
	case name == "embed":
		t.Embed = acts(dtype, b)
	case strings.HasPrefix(name, "block"):
		t.Blocks = append(t.Blocks, acts(dtype, b))
	case strings.HasPrefix(name, "kept"):
		t.Kept = append(t.Kept, int32s(b))
	case name == "logits":
		t.Logits = int32s(b)
	}
}

// ActValues decodes int8 or little-endian int16 values (dtype "int16").
func ActValues(dtype string, b []byte) []int16 { return acts(dtype, b) }

// acts decodes int8 or little-endian int16 values.
func acts(dtype string, b []byte) []int16 {
	if dtype == "int16" {
		out := make([]int16, len(b)/2)
		for i := range out {
			out[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
		}
		return out
	}
	out := make([]int16, len(b))
	for i, v := range b {
		out[i] = int16(int8(v))
	}
	return out
}

func int32s(b []byte) []int32 {
	out := make([]int32, len(b)/4)
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}
