// Command vitc trains, compresses and exports Vision Transformers for FPGA
// accelerators. Each subcommand lives in its own file: an options struct,
// flags bound in one place, and a run function that tests call directly.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit statuses: 2 for bad input of any kind, 130 for an interrupt (as a
// shell reports SIGINT), 1 for a gate that failed (e.g. accuracy drop).
const (
	exitGate        = 1
	exitBadInput    = 2
	exitInternal    = 3
	exitInterrupted = 130
)

// exitError carries a status other than exitBadInput.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "vitc",
		Short:         "Train, compress and export Vision Transformers for FPGA accelerators",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newTrainCmd(), newPruneCmd(), newCompressCmd(), newImportCmd(), newConvertCmd(), newExportCmd(), newSimCmd(), newEvalCmd(), newPredictCmd(), newInspectCmd(), newBenchCmd(), newVersionCmd())
	return root
}

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}

// execute runs the CLI and maps every failure to one line on stderr and an
// exit status; a panic is reported the same way, never as a stack trace.
func execute(args []string, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "vitc: internal error: %v\n", r)
			code = exitInternal
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "vitc: %s\n", oneLine(err.Error()))
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return exitBadInput
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// printJSON writes v as one line of JSON: what --json prints.
func printJSON(w io.Writer, v any) error {
	js, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(js))
	return err
}
