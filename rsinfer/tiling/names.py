"""The tiling vocabulary (importable without torch): how overlapping tiles are blended (see `rsinfer.tiling.blend`)."""

from typing import Literal, get_args

BlendMode = Literal["cosine", "gaussian", "constant", "crop"]
BLEND_MODES: tuple[str, ...] = get_args(BlendMode)
