"""Tiling primitives on tensors: plan windows, weight them, merge them. Imports only torch and `rsinfer.ops`.

The scene engine (`rsinfer.scene`) streams GeoTIFFs through these; models and pipelines use them directly on
in-memory tensors, e.g. MultiDiffusion-style fusion of overlapping latent tiles at every denoising step::

    windows = plan_windows(H, W, tile=64, overlap=16)                    # row-major, all inside the grid
    weights = [tile_weights(w, H, W, 16, "cosine") for w in windows]     # no fade towards the grid border
    tiles = torch.stack([denoise(latent[:, w.row:w.bottom, w.col:w.right]) for w in windows])  # (N, C, 64, 64)
    latent = blend_tiles(tiles, windows, H, W, weights)                  # (C, H, W), Σ wᵢ·yᵢ / Σ wᵢ

Public names:
- `Window(row, col, height, width)`: frozen, integers only; `.slices()`, `.bottom`, `.right`.
- `Tiling(tile, overlap, blend, batch_size)`: the value object every tiled computation takes; `check_tile_overlap`, the
  one rule (tile > 2·overlap).
- `grid_noise` / `batch_noise` (`rsinfer.tiling.noise`): random draws anchored to the output grid, a pure function of
  (seed, stream, step, position), so stochastic results do not depend on tile order, batch size or workers.
- `plan_windows(height, width, tile, overlap)`: tile × tile windows stepping by tile − overlap; the last row/column of
  windows is shifted inward (never padded); an axis shorter than the tile gets one window spanning it (pad it yourself).
- `blend_weights(height, width, overlap, mode, grid_edges=())` with mode "cosine" | "gaussian" | "constant" | "crop":
  a cached (height, width) float32 map, strictly positive where the tile contributes; `tile_weights(window, H, W,
  overlap, mode)` picks the grid edges for a window.
- `blend_tiles(tiles, windows, height, width, weights)` and `TensorMerger`: normalised overlap-add in memory;
  `BlockMerger`: the streaming version that releases each output block once every tile touching it is done;
"""

from rsinfer.lazy_exports import lazy_exports
from rsinfer.tiling.names import BLEND_MODES, BlendMode

__getattr__, __dir__ = lazy_exports(__name__, {
    **dict.fromkeys(("Edge", "blend_weights", "grid_edges_of", "tile_weights"), "rsinfer.tiling.blend"),
    **dict.fromkeys(("BlockMerger", "FinishedBlock", "TensorMerger", "blend_tiles"), "rsinfer.tiling.merge"),
    **dict.fromkeys(("batch_noise", "grid_noise"), "rsinfer.tiling.noise"),
    "Tiling": "rsinfer.tiling.options",
    **dict.fromkeys(("Window", "check_tile_overlap", "plan_windows"), "rsinfer.tiling.windows"),
})
__all__ = ["BLEND_MODES", "BlendMode", *__dir__()]
