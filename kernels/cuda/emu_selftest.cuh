// Kernels that exercise the emulator itself: correct uses of barriers,
// shuffles and votes, and planted bugs it must report. They are compiled
// only into the emulator, never into PTX.

// selftest_reduce sums x[0:n) per block with block_sum and a shared tile.
extern "C" __global__ void selftest_reduce(float* out, const float* x, int n) {
  __shared__ float tile[1024];
  __shared__ float scratch[32];
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  tile[threadIdx.x] = i < n ? x[i] : 0.0f;
  __syncthreads();
  // Read a neighbour's element: correct only after the barrier.
  const float v = tile[(threadIdx.x + 1) % blockDim.x];
  const float s = block_sum(v, scratch);
  if (threadIdx.x == 0) out[blockIdx.x] = s;
}

// selftest_missing_barrier is selftest_reduce without the barrier between
// the shared-memory write and the neighbour's read.
extern "C" __global__ void selftest_missing_barrier(float* out, const float* x, int n) {
  __shared__ float tile[1024];
  __shared__ float scratch[32];
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  tile[threadIdx.x] = i < n ? x[i] : 0.0f;
  const float v = tile[(threadIdx.x + 1) % blockDim.x];
  const float s = block_sum(v, scratch);
  if (threadIdx.x == 0) out[blockIdx.x] = s;
}

// selftest_shuffle_not_fence reads a neighbour lane's shared-memory write
// with only a shuffle in between: shuffles synchronise execution, not
// memory (that takes __syncwarp), so the race detector must report it.
extern "C" __global__ void selftest_shuffle_not_fence(float* out, const float* x) {
  __shared__ float lanes[32];
  const int lane = threadIdx.x & 31;
  lanes[lane] = x[lane];
  const float v = __shfl_xor_sync(FULL_MASK, x[lane], 1);
  out[lane] = lanes[(lane + 1) % 32] + v;
}

// selftest_shuffles records, per lane, the results of each shuffle kind and
// vote, with the mask given.
extern "C" __global__ void selftest_shuffles(float* out, unsigned mask, int width) {
  const int lane = threadIdx.x & 31;
  if (!(mask >> lane & 1)) return;
  const float v = (float)threadIdx.x;
  float* o = out + threadIdx.x * 7;
  o[0] = __shfl_sync(mask, v, 3, width);
  o[1] = __shfl_up_sync(mask, v, 2, width);
  o[2] = __shfl_down_sync(mask, v, 2, width);
  o[3] = __shfl_xor_sync(mask, v, 1, width);
  o[4] = (float)__ballot_sync(mask, lane % 3 == 0);
  o[5] = (float)__all_sync(mask, lane < 40);
  o[6] = (float)__any_sync(mask, lane == 5);
}

// selftest_divergent_barrier calls __syncthreads in only half the block.
extern "C" __global__ void selftest_divergent_barrier(float* out) {
  if (threadIdx.x < blockDim.x / 2) __syncthreads();
  out[threadIdx.x] = 1;
}

// selftest_exit_before_barrier returns early in some threads and then
// synchronises the rest.
extern "C" __global__ void selftest_exit_before_barrier(float* out, int n) {
  if ((int)threadIdx.x >= n) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

// selftest_divergent_shuffle shuffles with a full mask inside a branch only
// the even lanes take.
extern "C" __global__ void selftest_divergent_shuffle(float* out) {
  float v = (float)threadIdx.x;
  if (threadIdx.x % 2 == 0) v = __shfl_xor_sync(FULL_MASK, v, 2);
  out[threadIdx.x] = v;
}

// selftest_atomics adds 1 per thread into out[0] and takes the maximum
// thread index into out[1] (as float bits via int atomics on out[2]).
extern "C" __global__ void selftest_atomics(float* out, int* imax) {
  atomicAdd(out, 1.0f);
  atomicMax(imax, (int)(blockIdx.x * blockDim.x + threadIdx.x));
}

// selftest_dyn_shared reads dynamic shared memory before writing it: the
// emulator fills it with NaN.
extern "C" __global__ void selftest_dyn_shared(float* out) {
  DYN_SHARED(float, sm);
  out[threadIdx.x] = sm[threadIdx.x];
}

// selftest_out_of_bounds reads one element past the end of x.
extern "C" __global__ void selftest_out_of_bounds(float* out, const float* x, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = x[i + 1];
}
