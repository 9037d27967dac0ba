// Arguments of the rsinfer kernels as raw pointers and sizes, shared by the CPU kernels (cpu_kernels.cpp) and the
// CUDA kernels (cuda_kernels.cu): plain C++, no torch headers. ops.cpp checks shapes and fills them.
// Token and pixel buffers are contiguous unless a stride says otherwise; parameters are contiguous float32.
#pragma once

#include <cstdint>

namespace rsinfer {

enum class DType : int8_t { Float32, BFloat16, Float16 };

// modulate / residual_modulate over rows of x (B, N, D):
//   with y:    residual = round(x + gate·y) is written, then normalised;   without y: x itself is normalised.
//   out = LayerNorm(row) · one_plus_scale + shift, where the parameters (B, S, D) of row (b, n) are those of the
//   segment token_segment[n] (token_segment == nullptr: S = 1).
struct ModulateArgs {
  const void* x;
  const void* y;               // nullptr for modulate
  const float* gate;           // (B, S, D), nullptr for modulate
  const float* shift;          // (B, S, D)
  const float* one_plus_scale; // (B, S, D): 1 + scale, formed in float32 as the reference does
  const int32_t* token_segment;
  void* residual_out;          // (B, N, D), nullptr for modulate
  void* out;                   // (B, N, D)
  DType dtype;                 // of x, y, residual_out and out
  int64_t batch, tokens, dim, segments;
  float eps;
};

// add_layernorm over rows: out = LayerNorm(x + residual) · weight + bias, the sum kept in float32.
struct AddLayerNormArgs {
  const void* x;
  const void* residual;
  const float* weight;  // (D,)
  const float* bias;    // (D,)
  void* out;
  DType dtype;
  int64_t rows, dim;
  float eps;
};

// group_modulate of x (B, C, P) with P = H·W: statistics per sample over C·P, then per-channel affine.
struct GroupModulateArgs {
  const void* x;
  const float* shift;           // (B, C)
  const float* one_plus_scale;  // (B, C)
  void* out;
  DType dtype;
  int64_t batch, channels, pixels;
  float eps;
  bool channels_last;  // x and out are (B, H, W, C) in memory (NHWC) instead of (B, C, H, W)
};

// accumulate: canvas[c, row+i, col+j] += tile[c, i, j] · tile_weight[i, j];
//             weight_canvas[row+i, col+j] += tile_weight[i, j].
// canvas and weight_canvas are written through their strides (they are the caller's tensors, modified in place);
// tile (C, h, w) and tile_weight (h, w) are contiguous. The region is inside the canvas (checked by the caller).
struct AccumulateArgs {
  void* canvas;
  int64_t canvas_stride_c, canvas_stride_h, canvas_stride_w;
  DType canvas_dtype;
  void* weight_canvas;
  int64_t weight_stride_h, weight_stride_w;
  DType weight_dtype;
  const void* tile;
  DType tile_dtype;
  const float* tile_weight;
  int64_t channels, height, width, row, col;
};

}  // namespace rsinfer
