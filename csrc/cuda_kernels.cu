// CUDA versions of the rsinfer ops (see cuda_kernels.h): the math of rsinfer/ops/reference.py with float32
// accumulation, on the same raw-pointer arguments as the CPU kernels. No torch headers.
#include "cuda_kernels.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace rsinfer::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }

// Sum over the block (kThreads threads): warp shuffles, then one value per warp through shared memory.
__device__ float block_sum(float value) {
  __shared__ float warp_sums[kThreads / 32];
  __shared__ float total;
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = value;
  __syncthreads();
  if (threadIdx.x < 32) {
    value = threadIdx.x < kThreads / 32 ? warp_sums[threadIdx.x] : 0.f;
    for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
    if (threadIdx.x == 0) total = value;
  }
  __syncthreads();
  return total;
}

// Mean and 1/sqrt(biased variance + eps) of a float32 row in shared memory, two passes (no cancellation).
__device__ float2 row_stats(const float* row, int64_t dim, float eps) {
  float sum = 0.f;
  for (int64_t j = threadIdx.x; j < dim; j += kThreads) sum += row[j];
  const float mean = block_sum(sum) / dim;
  float sq = 0.f;
  for (int64_t j = threadIdx.x; j < dim; j += kThreads) sq += (row[j] - mean) * (row[j] - mean);
  return make_float2(mean, rsqrtf(block_sum(sq) / dim + eps));
}

// One block per token row (b, n); the row lives in dynamic shared memory as float32 (dim · 4 bytes).
// With y: residual = round_T(x + gate·y) is written and normalised; out = x̂ · (1 + scale) + shift.
template <typename T>
__global__ void modulate_rows(const T* x, const T* y, const float* gate, const float* shift,
                              const float* one_plus_scale, const int32_t* token_segment, T* residual_out, T* out,
                              int64_t tokens, int64_t dim, int64_t segments, float eps) {
  extern __shared__ float row[];
  const int64_t r = blockIdx.x, b = r / tokens, n = r % tokens;
  const int64_t param = (b * segments + (token_segment ? token_segment[n] : 0)) * dim;
  for (int64_t j = threadIdx.x; j < dim; j += kThreads) {
    float v = to_float(x[r * dim + j]);
    if (y) {
      const T rounded = from_float<T>(v + gate[param + j] * to_float(y[r * dim + j]));
      residual_out[r * dim + j] = rounded;
      v = to_float(rounded);
    }
    row[j] = v;
  }
  __syncthreads();
  const float2 stats = row_stats(row, dim, eps);
  for (int64_t j = threadIdx.x; j < dim; j += kThreads) {
    out[r * dim + j] = from_float<T>((row[j] - stats.x) * stats.y * one_plus_scale[param + j] + shift[param + j]);
  }
}

// One block per row: out = LayerNorm(x + residual) · weight + bias, the sum kept in float32.
template <typename T>
__global__ void add_layernorm_rows(const T* x, const T* residual, const float* weight, const float* bias, T* out,
                                   int64_t dim, float eps) {
  extern __shared__ float row[];
  const int64_t r = blockIdx.x;
  for (int64_t j = threadIdx.x; j < dim; j += kThreads) {
    row[j] = to_float(x[r * dim + j]) + to_float(residual[r * dim + j]);
  }
  __syncthreads();
  const float2 stats = row_stats(row, dim, eps);
  for (int64_t j = threadIdx.x; j < dim; j += kThreads) {
    out[r * dim + j] = from_float<T>((row[j] - stats.x) * stats.y * weight[j] + bias[j]);
  }
}

// group_modulate, pass 1: block (chunk, b) writes the count-weighted moments (sum, M2 about the chunk mean) of one
// chunk of sample b to partial[(b · chunks + chunk) · 2 + {0, 1}].
template <typename T>
__global__ void group_moments(const T* x, int64_t sample, int64_t chunk, float* partial) {
  const int64_t b = blockIdx.y, start = blockIdx.x * chunk;
  const int64_t count = min(chunk, sample - start);
  const T* src = x + b * sample + start;
  float sum = 0.f;
  for (int64_t j = threadIdx.x; j < count; j += kThreads) sum += to_float(src[j]);
  const float mean = block_sum(sum) / count;
  float sq = 0.f;
  for (int64_t j = threadIdx.x; j < count; j += kThreads) sq += (to_float(src[j]) - mean) * (to_float(src[j]) - mean);
  const float m2 = block_sum(sq);
  if (threadIdx.x == 0) {
    partial[(b * gridDim.x + blockIdx.x) * 2] = mean * count;
    partial[(b * gridDim.x + blockIdx.x) * 2 + 1] = m2;
  }
}

// group_modulate, pass 2: one block per (sample, channel) plane; thread 0's Chan merge of the chunk moments is shared.
template <typename T>
__global__ void group_apply(const T* x, const float* partial, int64_t chunks, int64_t chunk, int64_t sample,
                            const float* shift, const float* one_plus_scale, T* out, int64_t channels, int64_t pixels,
                            float eps) {
  __shared__ float2 stats;
  const int64_t plane = blockIdx.x, b = plane / channels;
  if (threadIdx.x == 0) {
    double sum = 0.0;
    for (int64_t i = 0; i < chunks; ++i) sum += partial[(b * chunks + i) * 2];
    const double mean = sum / sample;
    double m2 = 0.0;
    for (int64_t i = 0; i < chunks; ++i) {
      const double count = static_cast<double>(min(chunk, sample - i * chunk));
      const double delta = partial[(b * chunks + i) * 2] / count - mean;
      m2 += partial[(b * chunks + i) * 2 + 1] + count * delta * delta;
    }
    stats = make_float2(static_cast<float>(mean), static_cast<float>(rsqrt(m2 / sample + eps)));
  }
  __syncthreads();
  const float factor = stats.y * one_plus_scale[plane], add = shift[plane];
  for (int64_t j = threadIdx.x; j < pixels; j += kThreads) {
    out[plane * pixels + j] = from_float<T>((to_float(x[plane * pixels + j]) - stats.x) * factor + add);
  }
}

// accumulate, canvas part: one thread per tile element, written through the canvas strides. One launch never
// writes an element twice, so plain read-modify-write is race-free.
template <typename C, typename T>
__global__ void accumulate_canvas(AccumulateArgs a) {
  const int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t h = a.height, w = a.width;
  if (k >= a.channels * h * w) return;
  const int64_t c = k / (h * w), i = (k / w) % h, j = k % w;
  C& target = static_cast<C*>(a.canvas)[c * a.canvas_stride_c + (a.row + i) * a.canvas_stride_h +
                                        (a.col + j) * a.canvas_stride_w];
  target = from_float<C>(to_float(target) + to_float(static_cast<const T*>(a.tile)[k]) * a.tile_weight[i * w + j]);
}

// accumulate, weight part: one thread per tile weight; the weight is first rounded to the weight canvas's type, as
// the reference does.
template <typename W>
__global__ void accumulate_weights(AccumulateArgs a) {
  const int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (k >= a.height * a.width) return;
  const int64_t i = k / a.width, j = k % a.width;
  W& target = static_cast<W*>(a.weight_canvas)[(a.row + i) * a.weight_stride_h + (a.col + j) * a.weight_stride_w];
  target = from_float<W>(to_float(target) + to_float(from_float<W>(a.tile_weight[k])));
}

// Calls f with a value of the device type of `dtype`.
template <typename F>
void with_device_type(DType dtype, F&& f) {
  switch (dtype) {
    case DType::Float32: f(float{}); break;
    case DType::BFloat16: f(__nv_bfloat16{}); break;
    case DType::Float16: f(__half{}); break;
  }
}

constexpr int64_t kGroupChunk = 1 << 14;

int64_t group_chunks(const GroupModulateArgs& a) {
  const int64_t sample = a.channels * a.pixels;
  return (sample + kGroupChunk - 1) / kGroupChunk;
}

}  // namespace

void modulate(const ModulateArgs& a, void* stream) {
  with_device_type(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    modulate_rows<T><<<a.batch * a.tokens, kThreads, a.dim * sizeof(float), static_cast<cudaStream_t>(stream)>>>(
        static_cast<const T*>(a.x), static_cast<const T*>(a.y), a.gate, a.shift, a.one_plus_scale, a.token_segment,
        static_cast<T*>(a.residual_out), static_cast<T*>(a.out), a.tokens, a.dim, a.segments, a.eps);
  });
}

void add_layernorm(const AddLayerNormArgs& a, void* stream) {
  with_device_type(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    add_layernorm_rows<T><<<a.rows, kThreads, a.dim * sizeof(float), static_cast<cudaStream_t>(stream)>>>(
        static_cast<const T*>(a.x), static_cast<const T*>(a.residual), a.weight, a.bias, static_cast<T*>(a.out),
        a.dim, a.eps);
  });
}

std::size_t group_modulate_workspace(const GroupModulateArgs& a) { return 2 * a.batch * group_chunks(a); }

void group_modulate(const GroupModulateArgs& a, float* workspace, void* stream) {
  const int64_t chunks = group_chunks(a), sample = a.channels * a.pixels;
  with_device_type(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    const auto s = static_cast<cudaStream_t>(stream);
    group_moments<T><<<dim3(chunks, a.batch), kThreads, 0, s>>>(static_cast<const T*>(a.x), sample, kGroupChunk,
                                                                workspace);
    group_apply<T><<<a.batch * a.channels, kThreads, 0, s>>>(static_cast<const T*>(a.x), workspace, chunks,
                                                             kGroupChunk, sample, a.shift, a.one_plus_scale,
                                                             static_cast<T*>(a.out), a.channels, a.pixels, a.eps);
  });
}

void accumulate(const AccumulateArgs& a, void* stream) {
  const int64_t pixels = a.height * a.width;
  if (pixels == 0) return;
  const auto s = static_cast<cudaStream_t>(stream);
  const unsigned canvas_blocks = (a.channels * pixels + kThreads - 1) / kThreads;
  if (canvas_blocks > 0) {
    with_device_type(a.canvas_dtype, [&](auto canvas_tag) {
      with_device_type(a.tile_dtype, [&](auto tile_tag) {
        accumulate_canvas<decltype(canvas_tag), decltype(tile_tag)><<<canvas_blocks, kThreads, 0, s>>>(a);
      });
    });
  }
  with_device_type(a.weight_dtype, [&](auto weight_tag) {
    accumulate_weights<decltype(weight_tag)><<<(pixels + kThreads - 1) / kThreads, kThreads, 0, s>>>(a);
  });
}

}  // namespace rsinfer::cuda
