// C entry points of the emulator, called from Go through cgo.
#ifndef RLTRAIN_EMU_BRIDGE_H
#define RLTRAIN_EMU_BRIDGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// emu_launch runs kernel `name` over the grid; args holds one 8-byte slot
// per kernel parameter. It returns 0, or 1 with a message in err.
int emu_launch(const char* name, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
               size_t shared, const uint64_t* args, int nargs, char* err, size_t errlen);
// emu_set_workers sets how many host threads run blocks; 0 means one per core.
void emu_set_workers(int n);
// emu_kernel_names writes up to max kernel names and returns the count.
int emu_kernel_names(const char** names, int max);
// emu_sgemm is cuBLAS's column-major sgemm, on host memory.
void emu_sgemm(int transa, int transb, int m, int n, int k, float alpha, uint64_t a, int lda, uint64_t b, int ldb,
               float beta, uint64_t c, int ldc);

// emu_gemm_bf16 is the same with bf16 A and B (fp32 C, fp32 accumulation).
void emu_gemm_bf16(int transa, int transb, int m, int n, int k, float alpha, uint64_t a, int lda, uint64_t b,
                   int ldb, float beta, uint64_t c, int ldc);

// emu_gemm_tf32 is emu_sgemm on A and B rounded to TF32 (10-bit mantissa,
// to nearest even).
void emu_gemm_tf32(int transa, int transb, int m, int n, int k, float alpha, uint64_t a, int lda, uint64_t b,
                   int ldb, float beta, uint64_t c, int ldc);

#ifdef __cplusplus
}
#endif

#endif
