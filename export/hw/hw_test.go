package hw

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefaultIsTheFCCMDesign(t *testing.T) {
	c := Default()
	if c.PEs() != 96 || c.MACsPerPE() != 64 || c.Block != 16 || c.ClockMHz != 300 {
		t.Fatalf("default: %d PEs of %d MACs, block %d, %g MHz", c.PEs(), c.MACsPerPE(), c.Block, c.ClockMHz)
	}
}

func TestFingerprintIgnoresFormattingButNotValues(t *testing.T) {
	c := Default()
	// Same values, other spacing and key order.
	spaced := strings.Replace(string(DefaultJSON()), "{", "{\n\n  \"block\": 16,", 1)
	spaced = strings.Replace(spaced, "  \"block\": 16,\n  \"act", "  \"act", 1)
	d, err := Parse([]byte(spaced))
	if err != nil {
		t.Fatal(err)
	}
	if d.Fingerprint() != c.Fingerprint() {
		t.Fatal("reformatting changed the fingerprint")
	}
	d.DRAMBytesPerCycle++
	if d.Fingerprint() == c.Fingerprint() {
		t.Fatal("a changed value kept the fingerprint")
	}
	if !strings.HasPrefix(c.Fingerprint(), "sha256:") || len(c.Fingerprint()) != 7+64 {
		t.Fatalf("fingerprint %q", c.Fingerprint())
	}
}

func TestParseRefusesBadConfigs(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown key":   `{"name":"x","clock_mhz":300,"compute_module":4}`,
		"zero pes":      strings.Replace(string(DefaultJSON()), `"pe_rows": 12`, `"pe_rows": 0`, 1),
		"odd block":     strings.Replace(string(DefaultJSON()), `"block": 16`, `"block": 12`, 1),
		"no clock":      strings.Replace(string(DefaultJSON()), `"clock_mhz": 300`, `"clock_mhz": -1`, 1),
		"trailing data": string(DefaultJSON()) + "{}",
		"not json":      "block = 16",
	} {
		if _, err := Parse([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hw.json")
	if err := os.WriteFile(p, []byte(`{"name":""}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("error %v does not name %s", err, p)
	}
}
