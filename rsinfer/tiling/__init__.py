"""Tiling primitives on tensors: plan windows, weight them, merge them. Imports only torch and `rsinfer.ops`.

The scene engine (`rsinfer.scene`) streams GeoTIFFs through these; models and pipelines use them directly on
in-memory tensors, e.g. MultiDiffusion-style fusion of overlapping latent tiles at every denoising step::

    windows = plan_windows(H, W, tile=64, overlap=16)                    # row-major, all inside the grid
    weights = [tile_weights(w, H, W, 16, "cosine") for w in windows]     # no fade towards the grid border
    tiles = torch.stack([denoise(latent[:, w.row:w.bottom, w.col:w.right]) for w in windows])  # (N, C, 64, 64)
    latent = blend_tiles(tiles, windows, H, W, weights)                  # (C, H, W), Σ wᵢ·yᵢ / Σ wᵢ

Public names:
- `Window(row, col, height, width)`: frozen, integers only; `.slices()`, `.bottom`, `.right`.
- `plan_windows(height, width, tile, overlap)`: tile × tile windows stepping by tile − overlap; the last row/column of
  windows is shifted inward (never padded); an axis shorter than the tile gets one window spanning it (pad it yourself).
- `blend_weights(height, width, overlap, mode, grid_edges=())` with mode "cosine" | "gaussian" | "constant" | "crop":
  a cached (height, width) float32 map, strictly positive where the tile contributes; `tile_weights(window, H, W,
  overlap, mode)` picks the grid edges for a window.
- `blend_tiles(tiles, windows, height, width, weights)` and `TensorMerger`: normalised overlap-add in memory;
  `BlockMerger`: the streaming version that releases each output block once every tile touching it is done;
"""

from rsinfer.tiling.blend import BlendMode, Edge, blend_weights, grid_edges_of, tile_weights
from rsinfer.tiling.merge import BlockMerger, FinishedBlock, TensorMerger, blend_tiles
from rsinfer.tiling.windows import Window, plan_windows

__all__ = ["Window", "plan_windows", "BlendMode", "Edge", "blend_weights", "grid_edges_of",
           "tile_weights", "TensorMerger", "blend_tiles", "BlockMerger", "FinishedBlock"]
