//go:build cuda

package main

// Building with the cuda tag links the real CUDA driver (kernels/cuda/cudrv
// registers itself with kernels/cuda), so cuda.Open can reach GPUs. Such a
// binary needs the NVIDIA driver to start.
import _ "github.com/rltrain/rltrain/kernels/cuda/cudrv"

func init() { cudaCompiled = true }
