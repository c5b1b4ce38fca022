// Package cudrv is the real CUDA driver of kernels/cuda: the driver API
// through gorgonia.org/cu and cuBLAS through a small binding of our own,
// loaded with dlopen so that any of libcublas.so.13, .12 or .11 works.
//
// Everything but this comment needs the build tag cuda. gorgonia.org/cu
// initialises CUDA in its package init and exits the process when that
// fails, so a binary built with the tag runs only on a machine with an
// NVIDIA driver and GPU; this is the only package that imports it. A check
// that runs when the program is loaded (preflight.go) replaces cu's bare
// driver error with a message saying what is missing.
package cudrv
