package cpu

/*
#cgo LDFLAGS: -lopenblas
#include <cblas.h>

int rl_blas_threads(void) { return openblas_get_num_threads(); }
void rl_set_blas_threads(int n) { openblas_set_num_threads(n); }
char* rl_blas_config(void) { return openblas_get_config(); }
*/
import "C"

func setBLASThreads(n int) { C.rl_set_blas_threads(C.int(n)) }

// BLASThreads reports OpenBLAS's thread count.
func BLASThreads() int { return int(C.rl_blas_threads()) }

// BLASConfig describes the linked OpenBLAS build.
func BLASConfig() string { return C.GoString(C.rl_blas_config()) }
