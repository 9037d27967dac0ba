"""`Tiling`: how a grid is cut into tiles and put back together, one value object for every tiled computation.

The scene engine (`rsinfer.scene.run_scene`), the latent MultiDiffusion fusion of COP-GEN-Beta scenes and the tiled VAE
decode all take it, so the rule tile > 2·overlap (`check_tile_overlap`) is checked in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from rsinfer.tiling.blend import BlendMode
from rsinfer.tiling.windows import check_tile_overlap


@dataclass(frozen=True)
class Tiling:
    """Tiles of `tile` × `tile` pixels overlapping by `overlap`, blended `blend`-wise, `batch_size` per call.

    tile=None means one tile covering the whole grid (jobs that need the whole scene at once); overlap is then 0.
    """

    tile: int | None = 256
    overlap: int = 32
    blend: BlendMode = "cosine"
    batch_size: int = 4

    def __post_init__(self) -> None:
        if self.tile is None:
            if self.overlap != 0:
                raise ValueError(f"a whole-grid tiling (tile=None) has no overlap, got overlap {self.overlap}")
        else:
            check_tile_overlap(self.tile, self.overlap)
        if self.blend not in get_args(BlendMode):
            raise ValueError(f"unknown blend {self.blend!r}; choose one of {get_args(BlendMode)}")
        if not isinstance(self.batch_size, int) or isinstance(self.batch_size, bool) or self.batch_size < 1:
            raise ValueError(f"batch size must be an integer >= 1, got {self.batch_size!r}")
