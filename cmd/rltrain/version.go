package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/rltrain/rltrain/kernels/cpu"
	"github.com/rltrain/rltrain/kernels/cuda"
)

func init() {
	rootCmd.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print version, Go version, BLAS library and threads, and the GPUs found (driver, compute capability, cuBLAS)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "rltrain %s\n", version)
			fmt.Fprintf(w, "go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
			be := cpu.New(0)
			fmt.Fprintf(w, "blas: %s\n", cpu.BLASConfig())
			fmt.Fprintf(w, "cpu backend threads: %d (products split into panels over single-threaded OpenBLAS, %d thread per call)\n", be.Threads(), cpu.BLASThreads())
			fmt.Fprintf(w, "cpu cores: %d, vector kernels (AVX-512): %v\n", runtime.NumCPU(), cpu.VectorKernels())
			// The NVIDIA driver and cuBLAS are loaded at run time: this
			// says what backend: cuda would find here.
			for _, line := range cuda.Probe() {
				fmt.Fprintf(w, "cuda: %s\n", line)
			}
			return nil
		},
	})
}
