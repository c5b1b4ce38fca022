// cuda_compat.cuh is included first by every kernel file. Under nvcc it
// adds the few spellings the emulator needs (DYN_SHARED); under a host
// compiler it pulls in the emulator's definitions of CUDA's built-ins. It
// also holds the warp and block reductions the kernels share.
#ifndef RLTRAIN_CUDA_COMPAT_CUH
#define RLTRAIN_CUDA_COMPAT_CUH

#ifdef __CUDACC__
extern __shared__ __align__(16) unsigned char rl_dyn_smem[];
#define DYN_SHARED(T, name) T* name = reinterpret_cast<T*>(rl_dyn_smem)
#else
#include "emu.h"
#endif

#define FULL_MASK 0xffffffffu

__device__ __forceinline__ int imin(int a, int b) { return a < b ? a : b; }
__device__ __forceinline__ int imax(int a, int b) { return a > b ? a : b; }

// Largest head dimension the attention kernels hold in registers.
#define MAX_HEAD_DIM 256

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
  return v;
}

template <typename T>
__device__ __forceinline__ T warp_max(T v) {
  for (int o = 16; o > 0; o >>= 1) {
    T u = __shfl_xor_sync(FULL_MASK, v, o);
    v = u > v ? u : v;
  }
  return v;
}

// block_sum returns the sum of v over the block to every thread. blockDim.x
// must be a multiple of 32 (blockDim.y = blockDim.z = 1); scratch holds 32
// values in shared memory. Every thread of the block must call it.
template <typename T>
__device__ __forceinline__ T block_sum(T v, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T r = lane < nwarps ? scratch[lane] : T(0);
  return warp_sum(r);
}

// block_max is block_sum's counterpart for the maximum.
template <typename T>
__device__ __forceinline__ T block_max(T v, T* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T r = lane < nwarps ? scratch[lane] : scratch[0];
  return warp_max(r);
}

#endif
