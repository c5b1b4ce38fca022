// Package cudrv binds the NVIDIA driver API and cuBLAS, both loaded at run
// time with dlopen (libcuda.so.1; libcublas.so.13, .12 or .11), so that
// building rltrain needs nothing of CUDA and the same binary runs on
// machines with and without a GPU: without one, Load returns an error and
// nothing else changes.
//
// It declares the ~25 functions it uses itself (api.h) rather than
// including cuda.h, whose macros map plain names to whichever versioned
// entry point the installed toolkit prefers (CUDA 13 maps cuCtxCreate to a
// four-argument _v4): the versioned symbols it calls are exported by every
// driver since CUDA 11.
//
// This package knows nothing of rltrain's kernels; kernels/cuda builds its
// Driver on it. The stand-in libraries of scripts/standin implement the
// same functions over the CPU emulator, which is how CI runs this binding
// end to end without a GPU (make gpu-standin).
package cudrv
