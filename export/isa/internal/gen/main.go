// Command gen writes the files derived from the ISA table: the C header
// (isa.CHeader) and the Markdown reference (isa.Markdown). It is run by
// `go generate ./export/isa`, from that directory.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"vitc/export/isa"
)

func main() {
	header := flag.String("header", "", "path of the C header to write")
	markdown := flag.String("markdown", "", "path of the Markdown reference to write")
	flag.Parse()
	if *header == "" || *markdown == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: gen -header FILE -markdown FILE")
		os.Exit(2)
	}
	for _, out := range []struct{ path, text string }{
		{*header, isa.CHeader()},
		{*markdown, isa.Markdown()},
	} {
		if err := writeIfChanged(out.path, out.text); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
	}
}

// writeIfChanged leaves an up-to-date file alone so that its modification
// time does not make builds that depend on the header redo their work.
func writeIfChanged(path, text string) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, []byte(text)) {
		return nil
	}
	return os.WriteFile(path, []byte(text), 0o644)
}
