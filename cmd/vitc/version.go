package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"vitc/autograd"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print vitc's version, Go version and BLAS backend",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "vitc %s (%s, %s/%s, BLAS: %s, kernels: %s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH, autograd.BLASName(), autograd.KernelsName())
			return nil
		},
	}
}
