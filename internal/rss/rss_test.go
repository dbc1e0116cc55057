package rss

import "testing"

func TestPeak(t *testing.T) {
	if n, src := Peak(); n <= 0 || src == "" {
		t.Errorf("Peak() = %d, %q", n, src)
	}
	if n, ok := Status("VmRSS"); ok && n <= 0 {
		t.Errorf("VmRSS %d", n)
	}
}
