// emu.h defines, for a host C++20 compiler, the CUDA built-ins that the
// kernels in this directory use, so that the very same .cu files run on the
// CPU. Each CUDA thread of a block is a fiber; a block's fibers run on one
// host thread and switch only at __syncthreads and at warp-wide operations
// (shuffles, votes, __syncwarp), where the scheduler checks that every
// thread that must take part does. A barrier that not every live thread of
// the block reaches, or a warp operation whose mask names a lane that never
// arrives, is reported as a deadlock. A shuffle that reads from a lane
// outside its mask returns all-ones bits (a NaN for float and double), so
// undefined behaviour shows up as wrong results instead of plausible ones.
//
// Built with -fsanitize=thread, every fiber is a separate thread for the
// race detector and barriers (__syncthreads, __syncwarp) are its only
// synchronisation, so a missing __syncthreads, or a shuffle used where
// __syncwarp is needed, is reported as a data race.
#ifndef RLTRAIN_EMU_H
#define RLTRAIN_EMU_H

#include <atomic>
#include <cmath>
#include <math.h>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <utility>

namespace emu {

struct uint3 {
  unsigned x, y, z;
};

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};

// Op is the warp-wide operation a fiber is blocked on.
enum Op { OpShflIdx, OpShflUp, OpShflDown, OpShflXor, OpBallot, OpAll, OpAny, OpSyncWarp };

struct Thread;
struct Block;

// Current fiber and block of the calling host thread.
extern thread_local Thread* cur;
extern thread_local Block* cur_block;

const uint3& thread_idx();
const uint3& block_idx();
const dim3& block_dim();
const dim3& grid_dim();
void* dyn_shared();

// syncthreads blocks the calling fiber until every live thread of the block
// reaches a barrier; file and line identify the barrier.
void syncthreads(const char* file, int line);
// warp_op blocks until every lane of mask has reached the same warp
// operation and returns the 8-byte result for the calling lane.
uint64_t warp_op(Op op, unsigned mask, uint64_t val, int arg, int width, const char* file, int line);
// fail aborts the launch with a message.
[[noreturn]] void fail(const char* file, int line, const char* msg);
unsigned lane_id();

template <typename T>
inline uint64_t to_bits(T v) {
  static_assert(sizeof(T) <= 8, "warp operations move at most 8 bytes");
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}

template <typename T>
inline T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}

// Kernel registry: a kernel is launched by name with its arguments in
// 8-byte slots, exactly as the driver API passes them.
struct Kernel {
  const char* name;
  int nargs;
  std::function<void(const uint64_t*)> call;
};

template <typename T>
inline T slot(uint64_t s) {
  T v;
  std::memcpy(&v, &s, sizeof(T));
  return v;
}

template <typename... A, std::size_t... I>
inline void invoke(void (*f)(A...), const uint64_t* a, std::index_sequence<I...>) {
  f(slot<A>(a[I])...);
}

template <typename... A>
inline Kernel make_kernel(const char* name, void (*f)(A...)) {
  return Kernel{name, int(sizeof...(A)),
                [f](const uint64_t* a) { invoke(f, a, std::index_sequence_for<A...>{}); }};
}

}  // namespace emu

// ---- CUDA spellings ----------------------------------------------------

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __launch_bounds__(...)
#if defined(EMU_SHARED_STATIC)
#define __shared__ static
#else
// One block runs on one host thread at a time, so a thread-local static is
// exactly "one copy per block".
#define __shared__ static thread_local
#endif

#define threadIdx (::emu::thread_idx())
#define blockIdx (::emu::block_idx())
#define blockDim (::emu::block_dim())
#define gridDim (::emu::grid_dim())
#define warpSize 32

#define __syncthreads() ::emu::syncthreads(__FILE__, __LINE__)
#define __syncwarp(...) ::emu::warp_op(::emu::OpSyncWarp, EMU_MASK_OR_FULL(__VA_ARGS__), 0, 0, 32, __FILE__, __LINE__)
#define EMU_MASK_OR_FULL(...) (0xffffffffu __VA_OPT__(&(__VA_ARGS__)))
#define __threadfence() std::atomic_thread_fence(std::memory_order_seq_cst)
#define __trap() ::emu::fail(__FILE__, __LINE__, "__trap()")

// Dynamic shared memory, spelled the same way under nvcc in cuda_compat.cuh.
#define DYN_SHARED(T, name) T* name = static_cast<T*>(::emu::dyn_shared())

namespace emu {

template <typename T>
inline T shfl(Op op, unsigned mask, T v, int arg, int width, const char* file, int line) {
  return from_bits<T>(warp_op(op, mask, to_bits(v), arg, width, file, line));
}

}  // namespace emu

#define __shfl_sync(mask, v, src, ...) \
  ::emu::shfl(::emu::OpShflIdx, (mask), (v), (src), EMU_WIDTH(__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_up_sync(mask, v, d, ...) \
  ::emu::shfl(::emu::OpShflUp, (mask), (v), (d), EMU_WIDTH(__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_down_sync(mask, v, d, ...) \
  ::emu::shfl(::emu::OpShflDown, (mask), (v), (d), EMU_WIDTH(__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_xor_sync(mask, v, m, ...) \
  ::emu::shfl(::emu::OpShflXor, (mask), (v), (m), EMU_WIDTH(__VA_ARGS__), __FILE__, __LINE__)
#define EMU_WIDTH(...) (32 __VA_OPT__(* 0 + (__VA_ARGS__)))
#define __ballot_sync(mask, p) \
  unsigned(::emu::warp_op(::emu::OpBallot, (mask), (p) ? 1 : 0, 0, 32, __FILE__, __LINE__))
#define __all_sync(mask, p) int(::emu::warp_op(::emu::OpAll, (mask), (p) ? 1 : 0, 0, 32, __FILE__, __LINE__))
#define __any_sync(mask, p) int(::emu::warp_op(::emu::OpAny, (mask), (p) ? 1 : 0, 0, 32, __FILE__, __LINE__))

// ---- atomics -------------------------------------------------------------

template <typename T>
inline T atomicAdd(T* p, T v) {
  return std::atomic_ref<T>(*p).fetch_add(v);
}
template <typename T>
inline T atomicExch(T* p, T v) {
  return std::atomic_ref<T>(*p).exchange(v);
}
template <typename T>
inline T atomicCAS(T* p, T cmp, T v) {
  std::atomic_ref<T>(*p).compare_exchange_strong(cmp, v);
  return cmp;
}
template <typename T>
inline T atomicMax(T* p, T v) {
  std::atomic_ref<T> r(*p);
  T old = r.load();
  while (old < v && !r.compare_exchange_weak(old, v)) {
  }
  return old;
}
template <typename T>
inline T atomicMin(T* p, T v) {
  std::atomic_ref<T> r(*p);
  T old = r.load();
  while (old > v && !r.compare_exchange_weak(old, v)) {
  }
  return old;
}

// ---- math ------------------------------------------------------------------

inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __int_as_float(int x) { return emu::from_bits<float>(uint32_t(x)); }
inline int __float_as_int(float x) { return int(uint32_t(emu::to_bits(x))); }
inline float __uint_as_float(unsigned x) { return emu::from_bits<float>(x); }
inline unsigned __float_as_uint(float x) { return unsigned(emu::to_bits(x)); }
inline double __longlong_as_double(long long x) { return emu::from_bits<double>(uint64_t(x)); }
template <typename T>
inline T __ldg(const T* p) {
  return *p;
}

#endif  // RLTRAIN_EMU_H
