// Package hw is the accelerator's hardware configuration (hw.json), shared
// by the exporter, the simulator and the cycle model, as VTA's hw config is.
// A bundle records the fingerprint of the configuration it was compiled for
// and refuses to run on another.
package hw

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
)

// Config describes the accelerator. The default models the FCCM'24 design:
// 4 compute modules of 12×2 processing elements, each an 8×8 systolic array,
// at 300 MHz, with 16×16 weight blocks.
type Config struct {
	Name           string  `json:"name"`
	ClockMHz       float64 `json:"clock_mhz"`
	ComputeModules int     `json:"compute_modules"`
	PERows         int     `json:"pe_rows"`    // PEs per module = pe_rows × pe_cols
	PECols         int     `json:"pe_cols"`    //
	ArrayRows      int     `json:"array_rows"` // systolic MACs per PE = array_rows × array_cols
	ArrayCols      int     `json:"array_cols"`
	Block          int     `json:"block"` // weight tile (and pruning block) edge
	ActBufferBytes int     `json:"act_buffer_bytes"`
	WgtBufferBytes int     `json:"wgt_buffer_bytes"`
	// DRAM transfers cost latency + ⌈bytes/bytes_per_cycle⌉ cycles.
	DRAMBytesPerCycle int `json:"dram_bytes_per_cycle"`
	DRAMLatency       int `json:"dram_latency_cycles"`
	// The vector unit (LayerNorm, GELU, softmax, requantisation, …) handles
	// vector_lanes elements per cycle.
	VectorLanes int `json:"vector_lanes"`
	// Every instruction costs issue_cycles on its queue before it starts.
	IssueCycles int `json:"issue_cycles"`
}

//go:embed default.json
var defaultJSON []byte

// Default is the configuration vitc ships (export/hw/default.json).
func Default() Config {
	c, err := Parse(defaultJSON)
	if err != nil {
		panic("hw: the embedded default.json is invalid: " + err.Error())
	}
	return c
}

// DefaultJSON is the shipped default hw.json, byte for byte.
func DefaultJSON() []byte { return bytes.Clone(defaultJSON) }

// Load reads and validates a hw.json file.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("hardware config: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return Config{}, fmt.Errorf("hardware config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes a hw.json document strictly: an unknown key is an error, so a
// misspelt field never silently falls back to zero.
func Parse(b []byte) (Config, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return Config{}, fmt.Errorf("invalid JSON: data after the object")
	}
	return c, c.Validate()
}

// Validate reports the first field out of range.
func (c Config) Validate() error {
	pos := []struct {
		name string
		v    int
	}{
		{"compute_modules", c.ComputeModules}, {"pe_rows", c.PERows}, {"pe_cols", c.PECols},
		{"array_rows", c.ArrayRows}, {"array_cols", c.ArrayCols}, {"block", c.Block},
		{"act_buffer_bytes", c.ActBufferBytes}, {"wgt_buffer_bytes", c.WgtBufferBytes},
		{"dram_bytes_per_cycle", c.DRAMBytesPerCycle}, {"vector_lanes", c.VectorLanes},
	}
	for _, p := range pos {
		if p.v <= 0 {
			return fmt.Errorf("%s must be positive, got %d", p.name, p.v)
		}
	}
	switch {
	case c.Name == "":
		return fmt.Errorf("name is empty")
	case !(c.ClockMHz > 0) || c.ClockMHz > 1e5:
		return fmt.Errorf("clock_mhz %g is not a clock rate", c.ClockMHz)
	case c.DRAMLatency < 0 || c.IssueCycles < 0:
		return fmt.Errorf("dram_latency_cycles and issue_cycles must not be negative")
	case c.Block > 256 || c.Block%c.ArrayRows != 0 || c.Block%c.ArrayCols != 0:
		return fmt.Errorf("block %d must be at most 256 and a multiple of the %d×%d array", c.Block, c.ArrayRows, c.ArrayCols)
	case c.PEs() > 1<<16:
		return fmt.Errorf("%d PEs is more than the cycle model supports (65536)", c.PEs())
	}
	return nil
}

// PEs is the number of processing elements.
func (c Config) PEs() int { return c.ComputeModules * c.PERows * c.PECols }

// MACsPerPE is the systolic array size of one PE.
func (c Config) MACsPerPE() int { return c.ArrayRows * c.ArrayCols }

// Canonical is the configuration as compact JSON with fields in declaration
// order: the same configuration always gives the same bytes, whatever the
// spacing or key order of the file it came from.
func (c Config) Canonical() []byte {
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // a struct of numbers and a string always marshals
	}
	return b
}

// Fingerprint is "sha256:" and the hex SHA-256 of Canonical.
func (c Config) Fingerprint() string {
	sum := sha256.Sum256(c.Canonical())
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Seconds converts cycles to seconds at the configured clock.
func (c Config) Seconds(cycles int64) float64 { return float64(cycles) / (c.ClockMHz * 1e6) }

// TargetExtension is the checkpoint metadata extension (vit.Meta.Extensions)
// under which a model pruned for an accelerator records it, so that its
// export runs on the hardware and batch its speed-ups were stated for.
const TargetExtension = "hw_target"

// Target is the accelerator and throughput setting a model was made for.
type Target struct {
	HW Config `json:"hw"`
	// Batch is images per load of the weights (1: latency, one at a time).
	Batch int `json:"batch"`
}

// ParseTarget decodes a Target as a checkpoint records it, validating its
// hardware the way Parse does.
func ParseTarget(b []byte) (Target, error) {
	var raw struct {
		HW    json.RawMessage `json:"hw"`
		Batch int             `json:"batch"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return Target{}, fmt.Errorf("invalid JSON: %w", err)
	}
	c, err := Parse(raw.HW)
	if err != nil {
		return Target{}, err
	}
	if raw.Batch < 1 {
		return Target{}, fmt.Errorf("batch %d: want at least 1", raw.Batch)
	}
	return Target{HW: c, Batch: raw.Batch}, nil
}
