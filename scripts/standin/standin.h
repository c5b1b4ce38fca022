// Shared by the stand-in libraries (libcuda.so.1, libcublas.so.12, ...):
// what a library other than the driver needs to know about the emulated
// device, exported by the stand-in libcuda.so.1 under standin_* names, plus
// small helpers every stand-in uses.
//
// The stand-ins model NVIDIA's documented API contract on the CPU so that
// the real rltrain binary's GPU path (kernels/cuda/cudrv) runs end to end
// without a GPU. They model the contract, not rltrain's use of it: whatever
// the documentation leaves undefined or reports as an error, they report.
#ifndef RLTRAIN_STANDIN_H
#define RLTRAIN_STANDIN_H

#include <stddef.h>
#include <stdint.h>

#include <atomic>

#define STANDIN_API extern "C" __attribute__((visibility("default")))

// CUresult values (cuda.h).
enum {
  CUDA_SUCCESS = 0,
  CUDA_ERROR_INVALID_VALUE = 1,
  CUDA_ERROR_OUT_OF_MEMORY = 2,
  CUDA_ERROR_NOT_INITIALIZED = 3,
  CUDA_ERROR_NO_DEVICE = 100,
  CUDA_ERROR_INVALID_DEVICE = 101,
  CUDA_ERROR_INVALID_IMAGE = 200,
  CUDA_ERROR_INVALID_CONTEXT = 201,
  CUDA_ERROR_INVALID_PTX = 218,
  CUDA_ERROR_UNSUPPORTED_PTX_VERSION = 222,
  CUDA_ERROR_INVALID_HANDLE = 400,
  CUDA_ERROR_NOT_FOUND = 500,
  CUDA_ERROR_ILLEGAL_ADDRESS = 700,
  CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES = 701,
  CUDA_ERROR_CONTEXT_IS_DESTROYED = 709,
  CUDA_ERROR_LAUNCH_FAILED = 719,
  CUDA_ERROR_NOT_SUPPORTED = 801,
};

// standin_current_cc returns 10·major + minor of the device whose context
// is current on the calling thread, or -1 when no (live) context is.
STANDIN_API int standin_current_cc(void);
// standin_current_ctx identifies the current context (0 when none).
STANDIN_API uintptr_t standin_current_ctx(void);
// standin_sticky returns the current context's sticky error (0 when none).
STANDIN_API int standin_sticky(void);
// standin_in_allocation reports whether [p, p+bytes) lies inside one live
// allocation.
STANDIN_API int standin_in_allocation(uint64_t p, size_t bytes);
// standin_fault records a device-side fault of work queued in the current
// context, as a kernel hitting it would: the context's error becomes sticky
// and later calls return it (at once when CUDA_LAUNCH_BLOCKING=1, which
// standin_fault's return value reports: the code, or 0 when deferred).
STANDIN_API int standin_fault(int code, const char* what);
// standin_record notes that an API function was called (STANDIN_CALLS).
STANDIN_API void standin_record(const char* fn);

namespace standin {

// env_long reads an integer environment variable (def when unset).
long env_long(const char* name, long def);
// countdown implements "fail the Nth call" fault injection: it counts calls
// in *counter and reports whether this one is the Nth of variable name,
// counting from the process start, or from when the variable last changed.
bool countdown(const char* name, long* counter);
// note prints a stand-in diagnostic on stderr.
void note(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace standin

// RECORD notes the calling API function once per process.
#define RECORD()                                          \
  do {                                                    \
    static std::atomic<bool> recorded_;                   \
    if (!recorded_.exchange(true)) standin_record(__func__); \
  } while (0)

#endif
