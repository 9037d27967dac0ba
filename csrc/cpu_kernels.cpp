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
#include <numeric>
#include <type_traits>
#include <vector>

#ifndef CPU_CAPABILITY
#error "cpu_kernels.cpp is compiled once per SIMD level with CPU_CAPABILITY=DEFAULT or AVX2"
#endif

#define RSINFER_STRINGIFY_(x) #x
#define RSINFER_STRINGIFY(x) RSINFER_STRINGIFY_(x)

namespace rsinfer::cpu {
namespace CPU_CAPABILITY {
namespace {

using Vec = at::vec::Vectorized<float>;
constexpr int64_t kVec = Vec::size();
// One step of every row loop: two float vectors, which is one vector of 16-bit floats.
constexpr int64_t kStep = 2 * kVec;
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
void load_step(const T* p, Vec& lo, Vec& hi) {
  if constexpr (std::is_same_v<T, float>) {
    lo = Vec::loadu(p);
    hi = Vec::loadu(p + kVec);
  } else {
    at::vec::load_to_float<T>(p, lo, hi);
  }
}

template <typename T>
void store_step(T* p, const Vec& lo, const Vec& hi) {
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
  void add(int half, const Vec& lo, const Vec& hi) {
    part[half] += lo;
    part[half + 1] += hi;
  }
  float total() const { return horizontal_sum((part[0] + part[1]) + (part[2] + part[3])); }
};

// Calls step(j, half) for every full kStep block of [0, n), `half` alternating 0 and 2 so that consecutive blocks feed
// different VecSum chains; returns the first index not covered (where the scalar tail starts).
template <typename Step>
int64_t for_each_step(int64_t n, Step&& step) {
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
  const int64_t body = for_each_step(n, [&](int64_t j, int half) {
    acc.add(half, Vec::loadu(row + j), Vec::loadu(row + j + kVec));
  });
  float sum = acc.total();
  for (int64_t j = body; j < n; ++j) sum += row[j];
  return sum;
}

float squared_deviations(const float* row, int64_t n, float mean) {
  const Vec mean_v(mean);
  VecSum sq;
  const int64_t body = for_each_step(n, [&](int64_t j, int half) {
    const Vec d_lo = Vec::loadu(row + j) - mean_v;
    const Vec d_hi = Vec::loadu(row + j + kVec) - mean_v;
    sq.part[half] = at::vec::fmadd(d_lo, d_lo, sq.part[half]);
    sq.part[half + 1] = at::vec::fmadd(d_hi, d_hi, sq.part[half + 1]);
  });
  float m2 = sq.total();
  for (int64_t j = body; j < n; ++j) m2 += (row[j] - mean) * (row[j] - mean);
  return m2;
}

// LayerNorm statistics of a row: mean and 1/sqrt(biased variance + eps).
struct RowStats {
  float mean, rstd;
};

RowStats row_stats(const float* row, int64_t dim, float sum, float eps) {
  const float mean = sum / static_cast<float>(dim);
  return {mean, 1.f / std::sqrt(squared_deviations(row, dim, mean) / static_cast<float>(dim) + eps)};
}

// out[j] = (row[j] − mean) · rstd · mul[j] + add[j], written in T.
template <typename T>
void normalise_row(const float* row, int64_t dim, RowStats stats, const float* mul, const float* add, T* out) {
  const int64_t body = dim - dim % kStep;
  const Vec mean(stats.mean), rstd(stats.rstd);
  for (int64_t j = 0; j < body; j += kStep) {
    const Vec lo = at::vec::fmadd((Vec::loadu(row + j) - mean) * rstd, Vec::loadu(mul + j), Vec::loadu(add + j));
    const Vec hi = at::vec::fmadd((Vec::loadu(row + j + kVec) - mean) * rstd, Vec::loadu(mul + j + kVec),
                                  Vec::loadu(add + j + kVec));
    store_step(out + j, lo, hi);
  }
  for (int64_t j = body; j < dim; ++j) out[j] = static_cast<T>((row[j] - stats.mean) * stats.rstd * mul[j] + add[j]);
}

// Asks for every cache line of row[0, n) ahead of its use: the row loops spend two of their three passes in L1, and
// the memory system would otherwise idle during them.
template <typename T>
void prefetch_row(const T* row, int64_t n) {
  constexpr int64_t kLine = 64 / sizeof(T);
  for (int64_t j = 0; j < n; j += kLine) __builtin_prefetch(row + j);
}

// Per-thread float32 copy of the row being normalised (a few KiB: stays in L1 between the passes).
float* row_buffer(int64_t dim) {
  thread_local std::vector<float> buffer;
  if (static_cast<int64_t>(buffer.size()) < dim) buffer.resize(dim);
  return buffer.data();
}

// residual = round_T(x + gate·y) is written to `residual` and its float value (after rounding, as the reference
// normalises the rounded residual) to `row`.
template <typename T>
float gated_residual_row(const T* x, const T* y, const float* gate, int64_t dim, T* residual, float* row) {
  VecSum acc;
  const int64_t body = for_each_step(dim, [&](int64_t j, int half) {
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
  const int64_t body = for_each_step(dim, [&](int64_t j, int half) {
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

// row = x + residual in float32; returns the row's sum.
template <typename T>
float sum_row(const T* x, const T* residual, int64_t dim, float* row) {
  VecSum acc;
  const int64_t body = for_each_step(dim, [&](int64_t j, int half) {
    Vec x_lo, x_hi, r_lo, r_hi;
    load_step(x + j, x_lo, x_hi);
    load_step(residual + j, r_lo, r_hi);
    const Vec s_lo = x_lo + r_lo, s_hi = x_hi + r_hi;
    s_lo.store(row + j);
    s_hi.store(row + j + kVec);
    acc.add(half, s_lo, s_hi);
  });
  float sum = acc.total();
  for (int64_t j = body; j < dim; ++j) sum += row[j] = static_cast<float>(x[j]) + static_cast<float>(residual[j]);
  return sum;
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

template <typename T>
void add_layernorm_typed(const AddLayerNormArgs& a) {
  const int64_t dim = a.dim;
  const T* x = static_cast<const T*>(a.x);
  const T* residual = static_cast<const T*>(a.residual);
  at::parallel_for(0, a.rows, grain(dim), [&](int64_t begin, int64_t end) {
    float* row = row_buffer(dim);
    for (int64_t r = begin; r < end; ++r) {
      if (r + 1 < end) {  // the next row streams in while this one is normalised from L1
        prefetch_row(x + (r + 1) * dim, dim);
        prefetch_row(residual + (r + 1) * dim, dim);
      }
      const float sum = sum_row(x + r * dim, residual + r * dim, dim, row);
      normalise_row(row, dim, row_stats(row, dim, sum, a.eps), a.weight, a.bias, static_cast<T*>(a.out) + r * dim);
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
// rstd·(1 + scale_c) and shift_c are laid out once per sample over one span: every span is then one vector loop with no
// tail, whatever C is. Pixels left over after the last full span take the scalar loop.
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
