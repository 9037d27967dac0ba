"""Weighted overlap-add of one tile into a canvas, in place (the blend step of tiled inference).

canvas[:, row:row+h, col:col+w] += tile·tile_weight and weight_canvas[row:row+h, col:col+w] += tile_weight.
Grid (pixel blocks of the tile, C + 1): each program adds one block of one channel, or (the last column of the grid)
one block of the weights. Programs never overlap, so plain loads and stores suffice (no atomics). The product is
rounded to the canvas dtype before the add, as in the reference. The bounds are checked in Python: out-of-bounds
stores would not fail here.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from rsinfer.kernels.arguments import INTERPRETING, check_device, check_float, check_rank
from rsinfer.kernels.rounding import cast_rounded

_BLOCK = 1 << 14 if INTERPRETING else 1 << 10  # tile pixels per program (see modulation.py)


@triton.jit
def _accumulate_kernel(
    CANVAS, WEIGHT_CANVAS, TILE, TILE_WEIGHT,
    stride_cc, stride_ch, stride_cw, stride_wh, stride_ww,
    stride_tc, stride_th, stride_tw, stride_qh, stride_qw,
    row, col, h, w, channels,
    BLOCK: tl.constexpr,
):
    pixel = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)  # flat index into the h×w tile
    c = tl.program_id(1)  # a canvas channel, or `channels` for the weight canvas
    ok = pixel < h * w
    i = pixel // w
    j = pixel % w
    tile_weight = tl.load(TILE_WEIGHT + i * stride_qh + j * stride_qw, mask=ok, other=0.0)

    # The two branches must not assign one name with two types (the compiler rejects it; the interpreter would not).
    if c < channels:
        channel = c.to(tl.int64)
        tile = tl.load(TILE + channel * stride_tc + i * stride_th + j * stride_tw, mask=ok, other=0.0)
        canvas_ptrs = CANVAS + channel * stride_cc + (row + i) * stride_ch + (col + j) * stride_cw
        canvas = tl.load(canvas_ptrs, mask=ok, other=0.0)
        product = cast_rounded(tile.to(tl.float32) * tile_weight.to(tl.float32), CANVAS.dtype.element_ty)
        tl.store(canvas_ptrs, cast_rounded(canvas.to(tl.float32) + product.to(tl.float32), CANVAS.dtype.element_ty),
                 mask=ok)
    else:
        weight_ptrs = WEIGHT_CANVAS + (row + i) * stride_wh + (col + j) * stride_ww
        weight = tl.load(weight_ptrs, mask=ok, other=0.0)
        added = cast_rounded(tile_weight.to(tl.float32), WEIGHT_CANVAS.dtype.element_ty).to(tl.float32)
        tl.store(weight_ptrs, cast_rounded(weight.to(tl.float32) + added, WEIGHT_CANVAS.dtype.element_ty), mask=ok)


def accumulate(canvas: torch.Tensor, weight_canvas: torch.Tensor, tile: torch.Tensor, tile_weight: torch.Tensor,
               row: int, col: int) -> None:
    """In place: canvas[:, row:row+h, col:col+w] += tile·tile_weight, weight_canvas[...] += tile_weight.

    canvas (C, H, W), weight_canvas (H, W), tile (C, h, w), tile_weight (h, w); the tile must lie inside the canvas
    (see `rsinfer.ops.reference.accumulate`).
    """
    for name, t, layout in (("canvas", canvas, "(C, H, W)"), ("weight_canvas", weight_canvas, "(H, W)"),
                            ("tile", tile, "(C, h, w)"), ("tile_weight", tile_weight, "(h, w)")):
        check_float(name, t)
        check_rank(name, t, len(layout.split(",")), layout)
    check_device(canvas=canvas, weight_canvas=weight_canvas, tile=tile, tile_weight=tile_weight)
    channels, height, width = canvas.shape
    _, h, w = tile.shape
    if (tile.shape[0], tuple(weight_canvas.shape), tuple(tile_weight.shape)) != (channels, (height, width), (h, w)):
        raise ValueError(f"accumulate shapes disagree: canvas {tuple(canvas.shape)}, weight_canvas "
                         f"{tuple(weight_canvas.shape)}, tile {tuple(tile.shape)}, tile_weight "
                         f"{tuple(tile_weight.shape)}")
    if not (hasattr(row, "__index__") and hasattr(col, "__index__")):
        raise ValueError(f"row and col must be integers, got {row!r} and {col!r}")
    row, col = row.__index__(), col.__index__()
    if row < 0 or col < 0 or row + h > height or col + w > width:
        raise ValueError(f"tile of {h}x{w} at row={row}, col={col} does not fit in a {height}x{width} canvas")
    if h * w == 0:
        return
    _accumulate_kernel[(triton.cdiv(h * w, _BLOCK), channels + 1)](
        canvas, weight_canvas, tile, tile_weight,
        *canvas.stride(), *weight_canvas.stride(), *tile.stride(), *tile_weight.stride(),
        row, col, h, w, channels,
        BLOCK=_BLOCK, num_warps=4,
    )
