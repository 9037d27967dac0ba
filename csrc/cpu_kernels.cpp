// CPU kernels of the rsinfer ops (see cpu_kernels.h). Compiled once per SIMD level with CPU_CAPABILITY set to the
// level's name (DEFAULT, AVX2); at::vec::Vectorized<float> becomes plain arrays or AVX2 registers accordingly.
// Parallel loops use at::parallel_for, which is OpenMP in this torch build and follows torch.set_num_threads.
#include "cpu_kernels.h"

#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <type_traits>
#include <vector>

#ifdef CPU_CAPABILITY_AVX2
#include <immintrin.h>
#endif

#ifndef CPU_CAPABILITY
#error "cpu_kernels.cpp is compiled once per SIMD level with CPU_CAPABILITY=DEFAULT or AVX2"
#endif

// For the one-step helpers of the row loops and the lambdas passed to for_each_step: called once per 16 elements, they
// must compile into their loops. GCC at -O2 leaves some out of line, and then every vector and every accumulator goes
// through memory (add_layernorm ran 1.7x slower).
#define RSINFER_STEP inline __attribute__((always_inline))
#define RSINFER_STEP_LAMBDA __attribute__((always_inline))

#define RSINFER_STRINGIFY_(x) #x
#define RSINFER_STRINGIFY(x) RSINFER_STRINGIFY_(x)

namespace rsinfer::cpu {
namespace CPU_CAPABILITY {
namespace {

using Vec = at::vec::Vectorized<float>;
constexpr int64_t kVec = Vec::size();
// One step of every row loop: two float vectors, which is one vector of 16-bit floats.
constexpr int64_t kStep = 2 * kVec;
// float32 elements in a 64-byte cache line.
constexpr int64_t kLineFloats = 64 / sizeof(float);
// Elements a parallel task should cover at least, so that small tensors stay on one thread.
constexpr int64_t kGrainElements = 1 << 15;

int64_t grain(int64_t elements_per_item) {
  return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, elements_per_item));
}

// Calls f with a value of the C++ type of `dtype` (float, c10::BFloat16, c10::Half).
template <typename F>
void with_scalar_type(DType dtype, F&& f) {
  switch (dtype) {
    case DType::Float32: f(float{}); break;
    case DType::BFloat16: f(c10::BFloat16{}); break;
    case DType::Float16: f(c10::Half{}); break;
  }
}

template <typename T>
RSINFER_STEP void load_step(const T* p, Vec& lo, Vec& hi) {
  if constexpr (std::is_same_v<T, float>) {
    lo = Vec::loadu(p);
    hi = Vec::loadu(p + kVec);
  } else {
    at::vec::load_to_float<T>(p, lo, hi);
  }
}

template <typename T>
RSINFER_STEP void store_step(T* p, const Vec& lo, const Vec& hi) {
  if constexpr (std::is_same_v<T, float>) {
    lo.store(p);
    hi.store(p + kVec);
  } else {
    at::vec::convert_from_float<T>(lo, hi).store(p);
  }
}

float horizontal_sum(const Vec& v) {
  alignas(64) float lanes[kVec];
  v.store(lanes);
  float total = 0.f;
  for (int64_t i = 0; i < kVec; ++i) total += lanes[i];
  return total;
}

// A sum kept in four independent vectors. Adding into one vector makes every iteration wait for the previous add
// (3–4 cycles on current x86 cores); four chains keep the adders busy, so the loops below run at their load rate.
struct VecSum {
  Vec part[4] = {Vec(0.f), Vec(0.f), Vec(0.f), Vec(0.f)};

  // Adds one step (two vectors) into the chains of `half` (0 or 2).
  RSINFER_STEP void add(int half, const Vec& lo, const Vec& hi) {
    part[half] += lo;
    part[half + 1] += hi;
  }
  // Adds lo² and hi² into the chains of `half`.
  RSINFER_STEP void add_squares(int half, const Vec& lo, const Vec& hi) {
    part[half] = at::vec::fmadd(lo, lo, part[half]);
    part[half + 1] = at::vec::fmadd(hi, hi, part[half + 1]);
  }
  float total() const { return horizontal_sum((part[0] + part[1]) + (part[2] + part[3])); }
};

// Calls step(j, half) for every full kStep block of [0, n), `half` alternating 0 and 2 so that consecutive blocks feed
// different VecSum chains; returns the first index not covered (where the scalar tail starts).
template <typename Step>
RSINFER_STEP int64_t for_each_step(int64_t n, Step&& step) {
  int64_t j = 0;
  for (; j + 2 * kStep <= n; j += 2 * kStep) {
    step(j, 0);
    step(j + kStep, 2);
  }
  if (j + kStep <= n) {
    step(j, 0);
    j += kStep;
  }
  return j;
}

// Row statistics in two passes over a float32 row that sits in L1: the sum (usually accumulated while the row is built,
// see the *_row functions below), then the sum of squared deviations from the mean — never E[x²] − E[x]², which
// cancels when the mean is large.
float row_sum(const float* row, int64_t n) {
  VecSum acc;
  const int64_t body = for_each_step(n, [&](int64_t j, int half) RSINFER_STEP_LAMBDA {
    acc.add(half, Vec::loadu(row + j), Vec::loadu(row + j + kVec));
  });
  float sum = acc.total();
  for (int64_t j = body; j < n; ++j) sum += row[j];
  return sum;
}

float squared_deviations(const float* row, int64_t n, float mean) {
  const Vec mean_v(mean);
  VecSum sq;
  const int64_t body = for_each_step(n, [&](int64_t j, int half) RSINFER_STEP_LAMBDA {
    sq.add_squares(half, Vec::loadu(row + j) - mean_v, Vec::loadu(row + j + kVec) - mean_v);
  });
  float m2 = sq.total();
  for (int64_t j = body; j < n; ++j) m2 += (row[j] - mean) * (row[j] - mean);
  return m2;
}

// LayerNorm statistics of a row: mean and 1/sqrt(biased variance + eps).
struct RowStats {
  float mean, rstd;
};

RowStats stats_about_mean(const float* row, int64_t dim, float mean, float eps) {
  return {mean, 1.f / std::sqrt(squared_deviations(row, dim, mean) / static_cast<float>(dim) + eps)};
}

RowStats row_stats(const float* row, int64_t dim, float sum, float eps) {
  return stats_about_mean(row, dim, sum / static_cast<float>(dim), eps);
}

// How a row loop writes its output. Cached: ordinary stores. Streaming: non-temporal stores, which go to memory without
// first reading each output line into cache (the read-for-ownership of an ordinary store). A large op's output is a
// block the allocator has not handed out recently, so those reads come from DRAM: a quarter of add_layernorm's memory
// traffic. Streaming needs 32-byte aligned rows; at the DEFAULT SIMD level it is ordinary stores.
enum class Store { Cached, Streaming };

// Outputs from this size up, larger than a core's L2 cache, are written with Store::Streaming. On a 4 MiB
// add_layernorm this measured 1.1–1.4x faster at 1 thread and the same at 2 threads (bench/ops.py).
constexpr int64_t kStreamingBytes = int64_t{1} << 20;

template <typename T>
Store store_for(const T* out, int64_t rows, int64_t dim) {
  const int64_t row_bytes = dim * static_cast<int64_t>(sizeof(T));
  const bool aligned = reinterpret_cast<std::uintptr_t>(out) % 32 == 0 && row_bytes % 32 == 0;
  return aligned && rows * row_bytes >= kStreamingBytes ? Store::Streaming : Store::Cached;
}

template <Store store, typename T>
RSINFER_STEP void put_step(T* p, const Vec& lo, const Vec& hi) {
#ifdef CPU_CAPABILITY_AVX2
  if constexpr (store == Store::Streaming) {
    if constexpr (std::is_same_v<T, float>) {
      _mm256_stream_ps(p, lo);
      _mm256_stream_ps(p + kVec, hi);
    } else {
      _mm256_stream_si256(reinterpret_cast<__m256i*>(p), at::vec::convert_from_float<T>(lo, hi));
    }
    return;
  }
#endif
  store_step(p, lo, hi);
}

// Makes this thread's streaming stores visible before what it writes next (they are weakly ordered).
template <Store store>
void finish_stores() {
#ifdef CPU_CAPABILITY_AVX2
  if constexpr (store == Store::Streaming) _mm_sfence();
#endif
}

// One kStep block of normalise_row.
template <Store store = Store::Cached, typename T>
RSINFER_STEP void normalise_step(const float* row, int64_t j, const Vec& mean, const Vec& rstd, const float* mul,
                                 const float* add, T* out) {
  put_step<store>(out + j,
                  at::vec::fmadd((Vec::loadu(row + j) - mean) * rstd, Vec::loadu(mul + j), Vec::loadu(add + j)),
                  at::vec::fmadd((Vec::loadu(row + j + kVec) - mean) * rstd, Vec::loadu(mul + j + kVec),
                                 Vec::loadu(add + j + kVec)));
}

// normalise_row's scalar tail, elements [from, dim).
template <typename T>
void normalise_tail(const float* row, int64_t from, int64_t dim, RowStats stats, const float* mul, const float* add,
                    T* out) {
  for (int64_t j = from; j < dim; ++j) out[j] = static_cast<T>((row[j] - stats.mean) * stats.rstd * mul[j] + add[j]);
}

// out[j] = (row[j] − mean) · rstd · mul[j] + add[j], written in T.
template <Store store = Store::Cached, typename T>
void normalise_row(const float* row, int64_t dim, RowStats stats, const float* mul, const float* add, T* out) {
  const int64_t body = dim - dim % kStep;
  const Vec mean(stats.mean), rstd(stats.rstd);
  for (int64_t j = 0; j < body; j += kStep) normalise_step<store>(row, j, mean, rstd, mul, add, out);
  normalise_tail(row, body, dim, stats, mul, add, out);
}

// Per-thread float32 scratch for the rows being normalised (a few KiB: stays in L1 between the passes), 64-byte
// aligned: the row loops' vector loads and stores would otherwise straddle cache lines.
float* row_buffer(int64_t size) {
  thread_local std::vector<float> buffer;
  if (static_cast<int64_t>(buffer.size()) < size + kLineFloats) buffer.resize(size + kLineFloats);
  return reinterpret_cast<float*>((reinterpret_cast<std::uintptr_t>(buffer.data()) + 63) & ~std::uintptr_t{63});
}

// Elements from one row buffer to the next in row_buffer's scratch: dim rounded up to whole cache lines.
int64_t row_stride(int64_t dim) { return (dim + kLineFloats - 1) / kLineFloats * kLineFloats; }

// residual = round_T(x + gate·y) is written to `residual` and its float value (after rounding, as the reference
// normalises the rounded residual) to `row`.
template <typename T>
float gated_residual_row(const T* x, const T* y, const float* gate, int64_t dim, T* residual, float* row) {
  VecSum acc;
  const int64_t body = for_each_step(dim, [&](int64_t j, int half) RSINFER_STEP_LAMBDA {
    Vec x_lo, x_hi, y_lo, y_hi;
    load_step(x + j, x_lo, x_hi);
    load_step(y + j, y_lo, y_hi);
    Vec r_lo = at::vec::fmadd(Vec::loadu(gate + j), y_lo, x_lo);
    Vec r_hi = at::vec::fmadd(Vec::loadu(gate + j + kVec), y_hi, x_hi);
    store_step(residual + j, r_lo, r_hi);
    if constexpr (!std::is_same_v<T, float>) load_step(residual + j, r_lo, r_hi);  // the rounded value
    r_lo.store(row + j);
    r_hi.store(row + j + kVec);
    acc.add(half, r_lo, r_hi);
  });
  float sum = acc.total();
  for (int64_t j = body; j < dim; ++j) {
    residual[j] = static_cast<T>(static_cast<float>(x[j]) + gate[j] * static_cast<float>(y[j]));
    row[j] = static_cast<float>(residual[j]);
    sum += row[j];
  }
  return sum;
}

// row = float(x); returns the row's sum.
template <typename T>
float to_float_row(const T* x, int64_t dim, float* row) {
  VecSum acc;
  const int64_t body = for_each_step(dim, [&](int64_t j, int half) RSINFER_STEP_LAMBDA {
    Vec lo, hi;
    load_step(x + j, lo, hi);
    lo.store(row + j);
    hi.store(row + j + kVec);
    acc.add(half, lo, hi);
  });
  float sum = acc.total();
  for (int64_t j = body; j < dim; ++j) sum += row[j] = static_cast<float>(x[j]);
  return sum;
}

// Sums of d = v − pivot and of d² over the values v of a row, taken while the row is built, so that its statistics
// need no second pass: with the pivot near the row's mean, var = Σd²/n − (Σd/n)² does not cancel. Two chains per sum,
// not VecSum's four: these loops wait on memory, not on the adder, and four would spill registers in the loop that
// also normalises the previous row.
struct ShiftedMoments {
  float pivot;
  Vec sum[2] = {Vec(0.f), Vec(0.f)}, squares[2] = {Vec(0.f), Vec(0.f)};

  explicit ShiftedMoments(float pivot) : pivot(pivot) {}
  RSINFER_STEP void add(const Vec& lo, const Vec& hi) {
    const Vec pivot_v(pivot), d_lo = lo - pivot_v, d_hi = hi - pivot_v;
    sum[0] += d_lo;
    sum[1] += d_hi;
    squares[0] = at::vec::fmadd(d_lo, d_lo, squares[0]);
    squares[1] = at::vec::fmadd(d_hi, d_hi, squares[1]);
  }
  float sum_total() const { return horizontal_sum(sum[0] + sum[1]); }
  float squares_total() const { return horizontal_sum(squares[0] + squares[1]); }
};

// The pivot of row x + residual: the mean of its first step, which is near the row's mean unless those elements are
// outliers (stats_from_moments then falls back to the two-pass formula).
template <typename T>
float sum_pivot(const T* x, const T* residual, int64_t dim) {
  const int64_t n = std::min(dim, kStep);
  float total = 0.f;
  for (int64_t j = 0; j < n; ++j) total += static_cast<float>(x[j]) + static_cast<float>(residual[j]);
  return total / static_cast<float>(n);
}

// LayerNorm statistics of a float32 row from its ShiftedMoments (m, over the vector body, plus the scalar tail's
// d_sum and d_squares). One-pass when (mean − pivot)² ≤ var, so that the cancellation amplifies the rounding error of
// Σd² at most twofold; otherwise the two-pass formula over the row, which is still in L1.
RowStats stats_from_moments(const float* row, int64_t dim, const ShiftedMoments& m, float d_sum, float d_squares,
                            float eps) {
  const float n = static_cast<float>(dim);
  const float mean_d = (m.sum_total() + d_sum) / n;
  const float var = (m.squares_total() + d_squares) / n - mean_d * mean_d;
  if (mean_d * mean_d <= var) return {m.pivot + mean_d, 1.f / std::sqrt(var + eps)};
  return stats_about_mean(row, dim, m.pivot + mean_d, eps);
}

// One kStep block of build_row: row = x + residual, added into the moments.
template <typename T>
RSINFER_STEP void build_step(const T* x, const T* residual, int64_t j, float* row, ShiftedMoments& m) {
  Vec x_lo, x_hi, r_lo, r_hi;
  load_step(x + j, x_lo, x_hi);
  load_step(residual + j, r_lo, r_hi);
  const Vec s_lo = x_lo + r_lo, s_hi = x_hi + r_hi;
  s_lo.store(row + j);
  s_hi.store(row + j + kVec);
  m.add(s_lo, s_hi);
}

// build_row's scalar tail, elements [from, dim), then the statistics of the whole row.
template <typename T>
RowStats build_tail(const T* x, const T* residual, int64_t from, int64_t dim, float* row, const ShiftedMoments& m,
                    float eps) {
  float d_sum = 0.f, d_squares = 0.f;
  for (int64_t j = from; j < dim; ++j) {
    row[j] = static_cast<float>(x[j]) + static_cast<float>(residual[j]);
    const float d = row[j] - m.pivot;
    d_sum += d;
    d_squares += d * d;
  }
  return stats_from_moments(row, dim, m, d_sum, d_squares, eps);
}

// row = x + residual in float32; returns the row's LayerNorm statistics.
template <typename T>
RowStats build_row(const T* x, const T* residual, int64_t dim, float* row, float eps) {
  ShiftedMoments m(sum_pivot(x, residual, dim));
  const int64_t body = dim - dim % kStep;
  for (int64_t j = 0; j < body; j += kStep) build_step(x, residual, j, row, m);
  return build_tail(x, residual, body, dim, row, m, eps);
}

// build_row for the next row and normalise_row for the current one, in one loop: the next row's loads from memory
// overlap the current row's arithmetic in L1. Returns the next row's statistics.
template <Store store, typename T>
RowStats build_next_normalise_current(const T* x, const T* residual, float* next, const float* current,
                                      RowStats stats, const float* mul, const float* add, T* out, int64_t dim,
                                      float eps) {
  ShiftedMoments m(sum_pivot(x, residual, dim));
  const Vec mean(stats.mean), rstd(stats.rstd);
  const int64_t body = dim - dim % kStep;
  for (int64_t j = 0; j < body; j += kStep) {
    build_step(x, residual, j, next, m);
    normalise_step<store>(current, j, mean, rstd, mul, add, out);
  }
  normalise_tail(current, body, dim, stats, mul, add, out);
  return build_tail(x, residual, body, dim, next, m, eps);
}

template <typename T>
void modulate_typed(const ModulateArgs& a) {
  const int64_t rows = a.batch * a.tokens, dim = a.dim;
  at::parallel_for(0, rows, grain(dim), [&](int64_t begin, int64_t end) {
    float* buffer = row_buffer(dim);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / a.tokens, n = r % a.tokens;
      const int64_t segment = a.token_segment ? a.token_segment[n] : 0;
      const int64_t param = (b * a.segments + segment) * dim;  // row of the (B, S, D) parameters
      const T* x = static_cast<const T*>(a.x) + r * dim;
      const float* row = buffer;
      float sum;
      if (a.y) {
        sum = gated_residual_row(x, static_cast<const T*>(a.y) + r * dim, a.gate + param, dim,
                                 static_cast<T*>(a.residual_out) + r * dim, buffer);
      } else if constexpr (std::is_same_v<T, float>) {
        row = x;  // already float32: normalise it directly instead of a copy
        sum = row_sum(row, dim);
      } else {
        sum = to_float_row(x, dim, buffer);
      }
      normalise_row(row, dim, row_stats(row, dim, sum, a.eps), a.one_plus_scale + param, a.shift + param,
                    static_cast<T*>(a.out) + r * dim);
    }
  });
}

// Rows [begin, end) of add_layernorm as a software pipeline over two row buffers: while row r is normalised and
// written, row r + 1 is read from memory, summed and its statistics taken. Building a row and then normalising it in
// turn leaves the memory system idle for half of every row.
template <Store store, typename T>
void add_layernorm_rows(const AddLayerNormArgs& a, int64_t begin, int64_t end) {
  const int64_t dim = a.dim;
  const T* x = static_cast<const T*>(a.x);
  const T* residual = static_cast<const T*>(a.residual);
  T* out = static_cast<T*>(a.out);
  float* current = row_buffer(2 * row_stride(dim));
  float* next = current + row_stride(dim);
  RowStats stats = build_row(x + begin * dim, residual + begin * dim, dim, current, a.eps);
  for (int64_t r = begin; r + 1 < end; ++r) {
    stats = build_next_normalise_current<store>(x + (r + 1) * dim, residual + (r + 1) * dim, next, current, stats,
                                                a.weight, a.bias, out + r * dim, dim, a.eps);
    std::swap(current, next);
  }
  normalise_row<store>(current, dim, stats, a.weight, a.bias, out + (end - 1) * dim);
  finish_stores<store>();
}

template <typename T>
void add_layernorm_typed(const AddLayerNormArgs& a) {
  const Store store = store_for(static_cast<T*>(a.out), a.rows, a.dim);
  at::parallel_for(0, a.rows, grain(a.dim), [&](int64_t begin, int64_t end) {
    if (store == Store::Streaming) {
      add_layernorm_rows<Store::Streaming, T>(a, begin, end);
    } else {
      add_layernorm_rows<Store::Cached, T>(a, begin, end);
    }
  });
}

// Sum and sum of squared deviations of one chunk of a sample (chunk mean as the pivot), for Chan's merge.
struct ChunkMoments {
  double count, sum, m2;
};

template <typename T>
ChunkMoments chunk_moments(const T* x, int64_t n, float* row) {
  const float* values = row;
  float sum;
  if constexpr (std::is_same_v<T, float>) {
    values = x;
    sum = row_sum(values, n);
  } else {
    sum = to_float_row(x, n, row);
  }
  const float mean = sum / static_cast<float>(n);
  return {static_cast<double>(n), static_cast<double>(mean) * n, squared_deviations(values, n, mean)};
}

// Step 3 of group_modulate for NHWC samples, where element j of a sample belongs to channel j % C. The sample is
// cut into spans of `span_pixels` whole pixels, with span_pixels·C a multiple of kStep, and the per-channel factor
// rstd·(1 + scale_c) and shift_c are laid out once per sample over one span: every span is then one vector loop with
// no tail, whatever C is. Pixels left over after the last full span take the scalar loop.
template <typename T>
void modulate_channels_last(const GroupModulateArgs& a, const T* x, const std::vector<RowStats>& stats) {
  const int64_t channels = a.channels, sample = channels * a.pixels;
  int64_t span_pixels = kStep / std::gcd(channels, kStep);  // smallest span that is a multiple of kStep
  span_pixels *= std::max<int64_t>(1, 512 / (span_pixels * channels));  // widened to ~512 elements when C is small
  const int64_t span = span_pixels * channels, spans = a.pixels / span_pixels;
  std::vector<float> factor(a.batch * span), shift(a.batch * span);
  for (int64_t b = 0; b < a.batch; ++b) {
    for (int64_t j = 0; j < span; ++j) {
      const int64_t c = b * channels + j % channels;
      factor[b * span + j] = stats[b].rstd * a.one_plus_scale[c];
      shift[b * span + j] = a.shift[c];
    }
  }
  const int64_t items = spans + 1;  // per sample: the full spans, then the leftover pixels
  at::parallel_for(0, a.batch * items, grain(span), [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / items, s = item % items, start = b * sample + s * span;
      const float* f = factor.data() + b * span;
      const float* g = shift.data() + b * span;
      const T* src = x + start;
      T* dst = static_cast<T*>(a.out) + start;
      const float mean = stats[b].mean;
      if (s < spans) {
        const Vec mean_v(mean);
        for (int64_t j = 0; j < span; j += kStep) {
          Vec lo, hi;
          load_step(src + j, lo, hi);
          store_step(dst + j, at::vec::fmadd(lo - mean_v, Vec::loadu(f + j), Vec::loadu(g + j)),
                     at::vec::fmadd(hi - mean_v, Vec::loadu(f + j + kVec), Vec::loadu(g + j + kVec)));
        }
      } else {
        for (int64_t j = 0; j < sample - s * span; ++j) {
          dst[j] = static_cast<T>((static_cast<float>(src[j]) - mean) * f[j] + g[j]);
        }
      }
    }
  });
}

template <typename T>
void group_modulate_typed(const GroupModulateArgs& a) {
  constexpr int64_t kChunk = 1 << 13;  // 32 KiB of float32 per chunk: the second pass reads it from L1/L2
  const int64_t sample = a.channels * a.pixels;
  const int64_t chunks = (sample + kChunk - 1) / kChunk;
  const T* x = static_cast<const T*>(a.x);

  // 1. Moments of every chunk of every sample, in parallel.
  std::vector<ChunkMoments> moments(a.batch * chunks);
  at::parallel_for(0, a.batch * chunks, grain(kChunk), [&](int64_t begin, int64_t end) {
    float* row = row_buffer(kChunk);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / chunks, start = (t % chunks) * kChunk;
      moments[t] = chunk_moments(x + b * sample + start, std::min(kChunk, sample - start), row);
    }
  });

  // 2. Chan et al.'s merge per sample: M2 = Σ m2_i + Σ n_i (mean_i − mean)², in float64.
  std::vector<RowStats> stats(a.batch);
  for (int64_t b = 0; b < a.batch; ++b) {
    double sum = 0.0;
    for (int64_t i = 0; i < chunks; ++i) sum += moments[b * chunks + i].sum;
    const double mean = sum / static_cast<double>(sample);
    double m2 = 0.0;
    for (int64_t i = 0; i < chunks; ++i) {
      const ChunkMoments& m = moments[b * chunks + i];
      const double delta = m.sum / m.count - mean;
      m2 += m.m2 + m.count * delta * delta;
    }
    const double var = m2 / static_cast<double>(sample);
    stats[b] = {static_cast<float>(mean), static_cast<float>(1.0 / std::sqrt(var + a.eps))};
  }

  // 3. out = (x − mean) · (rstd · (1 + scale_c)) + shift_c.
  if (a.channels_last) {
    modulate_channels_last(a, x, stats);
    return;
  }
  at::parallel_for(0, a.batch * a.channels, grain(a.pixels), [&](int64_t begin, int64_t end) {
    for (int64_t plane = begin; plane < end; ++plane) {  // one (sample, channel) plane per item
      const int64_t b = plane / a.channels;
      const float factor = stats[b].rstd * a.one_plus_scale[plane], shift = a.shift[plane];
      const T* src = x + plane * a.pixels;
      T* dst = static_cast<T*>(a.out) + plane * a.pixels;
      const Vec mean_v(stats[b].mean), factor_v(factor), shift_v(shift);
      const int64_t body = a.pixels - a.pixels % kStep;
      for (int64_t j = 0; j < body; j += kStep) {
        Vec lo, hi;
        load_step(src + j, lo, hi);
        store_step(dst + j, at::vec::fmadd(lo - mean_v, factor_v, shift_v),
                   at::vec::fmadd(hi - mean_v, factor_v, shift_v));
      }
      for (int64_t j = body; j < a.pixels; ++j) {
        dst[j] = static_cast<T>((static_cast<float>(src[j]) - stats[b].mean) * factor + shift);
      }
    }
  });
}

// canvas_row[j·stride] += tile_row[j] · weight_row[j] for j < width, in float32, rounded once to the canvas type.
template <typename C, typename T>
void accumulate_row(C* canvas, int64_t stride, const T* tile, const float* weight, int64_t width) {
  int64_t body = 0;
  if (stride == 1) {
    body = width - width % kStep;
    for (int64_t j = 0; j < body; j += kStep) {
      Vec c_lo, c_hi, t_lo, t_hi;
      load_step(canvas + j, c_lo, c_hi);
      load_step(tile + j, t_lo, t_hi);
      store_step(canvas + j, at::vec::fmadd(t_lo, Vec::loadu(weight + j), c_lo),
                 at::vec::fmadd(t_hi, Vec::loadu(weight + j + kVec), c_hi));
    }
  }
  for (int64_t j = body; j < width; ++j) {
    C& c = canvas[j * stride];
    c = static_cast<C>(static_cast<float>(c) + static_cast<float>(tile[j]) * weight[j]);
  }
}

template <typename W>
void add_weight_row(W* weight_canvas, int64_t stride, const float* weight, int64_t width) {
  for (int64_t j = 0; j < width; ++j) {
    W& w = weight_canvas[j * stride];
    // The reference rounds the tile weight to the weight canvas's type before adding.
    w = static_cast<W>(static_cast<float>(w) + static_cast<float>(static_cast<W>(weight[j])));
  }
}

template <typename C, typename T>
void accumulate_typed(const AccumulateArgs& a) {
  // Items 0 .. C·h−1 are canvas rows (channel, tile row); items C·h .. (C+1)·h−1 are weight-canvas rows.
  const int64_t canvas_rows = a.channels * a.height;
  at::parallel_for(0, canvas_rows + a.height, grain(a.width), [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t i = item < canvas_rows ? item % a.height : item - canvas_rows;
      const float* weight = a.tile_weight + i * a.width;
      if (item < canvas_rows) {
        C* canvas = static_cast<C*>(a.canvas) + (item / a.height) * a.canvas_stride_c +
                    (a.row + i) * a.canvas_stride_h + a.col * a.canvas_stride_w;
        accumulate_row(canvas, a.canvas_stride_w, static_cast<const T*>(a.tile) + item * a.width, weight, a.width);
      } else {
        with_scalar_type(a.weight_dtype, [&](auto tag) {
          using W = decltype(tag);
          add_weight_row(static_cast<W*>(a.weight_canvas) + (a.row + i) * a.weight_stride_h + a.col * a.weight_stride_w,
                         a.weight_stride_w, weight, a.width);
        });
      }
    }
  });
}

void accumulate(const AccumulateArgs& a) {
  with_scalar_type(a.canvas_dtype, [&](auto canvas_tag) {
    with_scalar_type(a.tile_dtype, [&](auto tile_tag) {
      accumulate_typed<decltype(canvas_tag), decltype(tile_tag)>(a);
    });
  });
}

void modulate(const ModulateArgs& a) {
  with_scalar_type(a.dtype, [&](auto tag) { modulate_typed<decltype(tag)>(a); });
}
void add_layernorm(const AddLayerNormArgs& a) {
  with_scalar_type(a.dtype, [&](auto tag) { add_layernorm_typed<decltype(tag)>(a); });
}
void group_modulate(const GroupModulateArgs& a) {
  with_scalar_type(a.dtype, [&](auto tag) { group_modulate_typed<decltype(tag)>(a); });
}

}  // namespace

const KernelTable& kernel_table() {
  static const KernelTable table{RSINFER_STRINGIFY(CPU_CAPABILITY), modulate, add_layernorm, group_modulate,
                                 accumulate};
  return table;
}

}  // namespace CPU_CAPABILITY
}  // namespace rsinfer::cpu
