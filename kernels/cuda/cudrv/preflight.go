//go:build cuda

package cudrv

/*
#cgo LDFLAGS: -lcuda
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>

// rl_cuda_preflight runs when the program is loaded, before any Go package
// initialises: gorgonia.org/cu's init would otherwise end the process with
// a bare driver error when no GPU is usable. This says what is missing and
// what to do instead.
__attribute__((constructor)) static void rl_cuda_preflight(void) {
	CUresult r = cuInit(0);
	int n = 0;
	if (r == CUDA_SUCCESS) r = cuDeviceGetCount(&n);
	if (r == CUDA_SUCCESS && n > 0) return;
	const char* name = "no device";
	if (r != CUDA_SUCCESS) cuGetErrorName(r, &name);
	fprintf(stderr,
	        "rltrain: this binary was built with CUDA support (-tags cuda) but finds no usable NVIDIA GPU (%s).\n"
	        "rltrain: check the NVIDIA driver (nvidia-smi) and CUDA_VISIBLE_DEVICES, or use a build without -tags cuda "
	        "and backend: cpu.\n",
	        name ? name : "unknown error");
	exit(1);
}
*/
import "C"
