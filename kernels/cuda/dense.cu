// Element-wise and normalisation kernels of the transformer layers. Each
// mirrors the operation of the same name in kernels/cpu; see kernels.Dense
// for the contract (accumulate vs overwrite, layouts).
#include "cuda_compat.cuh"

#define GRID_STRIDE(i, n) \
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (long long)gridDim.x * blockDim.x)

extern "C" __global__ void add_bias(float* x, const float* bias, int rows, int n) {
  GRID_STRIDE(i, (long long)rows * n) { x[i] += bias[i % n]; }
}

// Column sums (bias and RMSNorm weight gradients) run in two passes so
// that they are both parallel and deterministic: pass 1 sums fixed chunks
// of COL_CHUNK rows per column in double, pass 2 adds the chunks in order.
// The result depends only on COL_CHUNK, never on the launch shape.
#define COL_CHUNK 64

// bias_backward_partial: grid (ceil(n/blockDim.x), ceil(rows/COL_CHUNK)).
extern "C" __global__ void bias_backward_partial(double* part, const float* dout, int rows, int n) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x, c = blockIdx.y;
  if (j >= n) return;
  const int r1 = imin(rows, (c + 1) * COL_CHUNK);
  double s = 0;
  for (int r = c * COL_CHUNK; r < r1; r++) s += dout[(long long)r * n + j];
  part[(long long)c * n + j] = s;
}

// col_finish adds the chunk partials of each column, in chunk order, to dst.
extern "C" __global__ void col_finish(float* dst, const double* part, int chunks, int n) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= n) return;
  double s = 0;
  for (int c = 0; c < chunks; c++) s += part[(long long)c * n + j];
  dst[j] += (float)s;
}

extern "C" __global__ void copy2d(float* dst, int dstStride, const float* src, int srcStride, int rows, int width) {
  GRID_STRIDE(i, (long long)rows * width) {
    const long long r = i / width, c = i % width;
    dst[r * dstStride + c] = src[r * srcStride + c];
  }
}

extern "C" __global__ void add(float* dst, const float* a, const float* b, int n) {
  GRID_STRIDE(i, n) { dst[i] = a[i] + b[i]; }
}

extern "C" __global__ void scale(float* x, int n, float s) {
  GRID_STRIDE(i, n) { x[i] *= s; }
}

// rmsnorm_heads: one block per (row, head).
extern "C" __global__ void rmsnorm_heads(float* out, float* rstd, const float* x, int stride, int off, const float* w,
                                         int rows, int heads, int dim, float eps) {
  __shared__ float scratch[32];
  const int row = blockIdx.x / heads, h = blockIdx.x % heads;
  const long long at = (long long)row * stride + off + (long long)h * dim;
  float ss = 0;
  for (int j = threadIdx.x; j < dim; j += blockDim.x) ss += x[at + j] * x[at + j];
  ss = block_sum(ss, scratch);
  const float rs = rsqrtf(ss / dim + eps);
  if (threadIdx.x == 0) rstd[blockIdx.x] = rs;
  for (int j = threadIdx.x; j < dim; j += blockDim.x) out[at + j] = x[at + j] * rs * w[j];
}

// rmsnorm_heads_backward_dx: dx += r·w⊙dy − x·r³/dim·Σ(dy⊙w⊙x), one block
// per (row, head).
extern "C" __global__ void rmsnorm_heads_backward_dx(float* dx, const float* dout, const float* x, const float* w,
                                                     const float* rstd, int stride, int off, int rows, int heads,
                                                     int dim) {
  __shared__ float scratch[32];
  const int row = blockIdx.x / heads, h = blockIdx.x % heads;
  const long long at = (long long)row * stride + off + (long long)h * dim;
  float s = 0;
  for (int j = threadIdx.x; j < dim; j += blockDim.x) s += dout[at + j] * w[j] * x[at + j];
  s = block_sum(s, scratch);
  const float rs = rstd[blockIdx.x];
  const float c = s * rs * rs * rs / dim;
  for (int j = threadIdx.x; j < dim; j += blockDim.x) dx[at + j] += rs * w[j] * dout[at + j] - x[at + j] * c;
}

// rmsnorm_heads_backward_dw_partial: pass 1 of the weight gradient (see
// COL_CHUNK), summing dy·x·r over the heads of COL_CHUNK rows per column.
extern "C" __global__ void rmsnorm_heads_backward_dw_partial(double* part, const float* dout, const float* x,
                                                             const float* rstd, int stride, int off, int rows,
                                                             int heads, int dim) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x, c = blockIdx.y;
  if (j >= dim) return;
  const int r1 = imin(rows, (c + 1) * COL_CHUNK);
  double s = 0;
  for (int r = c * COL_CHUNK; r < r1; r++) {
    for (int h = 0; h < heads; h++) {
      const long long at = (long long)r * stride + off + (long long)h * dim + j;
      s += dout[at] * x[at] * rstd[r * heads + h];
    }
  }
  part[(long long)c * dim + j] = s;
}

// rope rotates pairs (i, i+half) of each head; sign −1 is the inverse.
extern "C" __global__ void rope(float* x, int stride, const float* cos, const float* sin, int rows, int heads,
                                int headDim, float sign) {
  const int half = headDim / 2;
  GRID_STRIDE(t, (long long)rows * heads * half) {
    const long long r = t / (heads * half);
    const int h = (int)(t / half % heads), i = (int)(t % half);
    float* v = x + r * stride + (long long)h * headDim;
    const float c = cos[r * half + i], s = sign * sin[r * half + i];
    const float a = v[i], b = v[i + half];
    v[i] = a * c - b * s;
    v[i + half] = b * c + a * s;
  }
}

__device__ __forceinline__ float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

extern "C" __global__ void swiglu(float* out, const float* gateUp, int rows, int ffn) {
  GRID_STRIDE(t, (long long)rows * ffn) {
    const long long r = t / ffn, j = t % ffn;
    const float g = gateUp[r * 2 * ffn + j], u = gateUp[r * 2 * ffn + ffn + j];
    out[t] = g * sigmoidf(g) * u;
  }
}

extern "C" __global__ void swiglu_backward(float* dGateUp, const float* dout, const float* gateUp, int rows,
                                           int ffn) {
  GRID_STRIDE(t, (long long)rows * ffn) {
    const long long r = t / ffn, j = t % ffn;
    const float g = gateUp[r * 2 * ffn + j], u = gateUp[r * 2 * ffn + ffn + j];
    const float s = sigmoidf(g), d = dout[t];
    dGateUp[r * 2 * ffn + ffn + j] = d * g * s;
    dGateUp[r * 2 * ffn + j] = d * u * s * (1 + g * (1 - s));
  }
}

// embed gathers table rows; ids are checked on the host.
extern "C" __global__ void embed(float* out, const float* table, const int* ids, int n, int dim) {
  GRID_STRIDE(t, (long long)n * dim) {
    const long long i = t / dim, c = t % dim;
    out[t] = table[(long long)ids[i] * dim + c];
  }
}

// embed_backward: one block per distinct id. The host groups the rows of
// each id (rows[starts[u]:starts[u+1]], in increasing order) so every table
// row is owned by one block, which adds its gradient rows in order: the
// same sums, in the same order, as the CPU backend, with no atomics.
extern "C" __global__ void embed_backward(float* dtable, const float* dout, const int* rows, const int* uids,
                                          const int* starts, int dim) {
  const int u = blockIdx.x;
  float* dst = dtable + (long long)uids[u] * dim;
  for (int c = threadIdx.x; c < dim; c += blockDim.x) {
    float acc = dst[c];
    for (int k = starts[u]; k < starts[u + 1]; k++) acc += dout[(long long)rows[k] * dim + c];
    dst[c] = acc;
  }
}

// cache_write copies width floats of each source row into its pool slot.
extern "C" __global__ void cache_write(float* pool, int width, const float* src, int srcStride, int srcOff,
                                       const int* slots, int n) {
  GRID_STRIDE(t, (long long)n * width) {
    const long long i = t / width, c = t % width;
    pool[(long long)slots[i] * width + c] = src[i * srcStride + srcOff + c];
  }
}
