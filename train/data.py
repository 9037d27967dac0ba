"""Training data: the Sen1Floods11 chip in the network's units, and a crop sampler that never reads a hold-out
rectangle.

The chip (`load_chip`) is Spain_7370579 of Sen1Floods11: Sentinel-2 L1C (13 bands, DN) and Sentinel-1 VV/VH (σ0 in
dB) on one 512 × 512 grid, about 10 m. It is normalised by the very functions the ``decloud`` pipeline applies
(`rsinfer.pipelines.sentinel`: S2 clip(DN, 0, 10000)/10000, S1 VV [−25, 0] and VH [−32.5, 0] dB onto [0, 1]), so
weights trained on it run unchanged in ``rsinfer decloud``.

Hold-out: `SEN1FLOODS11_HOLDOUT`, columns 384–511 (all rows), is never cropped for training; evaluation uses it only.
`CropSampler` draws square crops of a stack of same-grid images whose window does not intersect the hold-out
rectangle, each under one of the 8 symmetries of the square (rot90 × flip), the same for every image of the stack.
`random_gains` scales reflectance by a per-sample factor (illumination and calibration variety).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from rsinfer.io import open_raster
from rsinfer.pipelines.sentinel import detect_s1_scale, normalise_s1, normalise_s2, s2_layout
from rsinfer.tiling import Window

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
SEN1FLOODS11_S2 = "sen1floods11/Spain_7370579_S2Hand.tif"
SEN1FLOODS11_S1 = "sen1floods11/Spain_7370579_S1Hand.tif"
SEN1FLOODS11_HOLDOUT = Window(0, 384, 512, 128)  # columns 384–511: never used in training


@dataclass(frozen=True)
class Chip:
    """optical (13, H, W) clear S2 reflectance in [0, 1]; sar (2, H, W) VV, VH in [0, 1]; same grid."""

    optical: torch.Tensor
    sar: torch.Tensor


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The shared data folder: `path`, else ../shared/data beside the repository."""
    folder = Path(path) if path is not None else DEFAULT_DATA_DIR
    if not (folder / SEN1FLOODS11_S2).is_file() or not (folder / SEN1FLOODS11_S1).is_file():
        raise FileNotFoundError(f"the Sen1Floods11 chip ({SEN1FLOODS11_S2}, {SEN1FLOODS11_S1}) is not in {folder}")
    return folder


def read_bands(path: Path) -> tuple[torch.Tensor, tuple[str | None, ...]]:
    """(C, H, W) float32 of every band (nodata as NaN) and the band descriptions."""
    dataset = open_raster(path)
    try:
        values = torch.from_numpy(dataset.read(masked=True).astype("float32").filled(float("nan")))
        return values, tuple(dataset.descriptions)
    finally:
        dataset.close()


def load_chip(folder: str | os.PathLike | None = None) -> Chip:
    """The Sen1Floods11 chip normalised as the ``decloud`` pipeline does (S1 NaN → the low end of its range, 0)."""
    folder = data_dir(folder)
    dn, descriptions = read_bands(folder / SEN1FLOODS11_S2)
    s1, _ = read_bands(folder / SEN1FLOODS11_S1)
    optical = normalise_s2(dn[None], s2_layout(dn.shape[0], descriptions))[0]
    sar = normalise_s1(s1[None], detect_s1_scale(s1[0]))[0].nan_to_num(0.0)
    if not torch.isfinite(optical).all():
        raise ValueError(f"{SEN1FLOODS11_S2} has nodata pixels: the chip must be complete")
    return Chip(optical, sar)


class CropSampler:
    """Random size × size crops of same-grid images (C_i, H, W), outside the `holdout` window.

    `sample(batch)` returns one (batch, C_i, size, size) tensor per image, all cut at the same places and under the
    same symmetry. Every draw comes from `generator`.
    """

    def __init__(self, images: Sequence[torch.Tensor], size: int, holdout: Window, generator: torch.Generator) -> None:
        shapes = {tuple(image.shape[-2:]) for image in images}
        if not images or len(shapes) != 1:
            raise ValueError(f"images must be one or more tensors on one grid, got shapes "
                             f"{[tuple(image.shape) for image in images]}")
        height, width = shapes.pop()
        if not 1 <= size <= min(height, width):
            raise ValueError(f"crop size {size} must lie in 1..{min(height, width)} for a {height} × {width} grid")
        self.images, self.size, self.generator = list(images), size, generator
        rows, cols = torch.meshgrid(torch.arange(height - size + 1), torch.arange(width - size + 1), indexing="ij")
        inside = ((rows < holdout.row + holdout.height) & (holdout.row < rows + size)
                  & (cols < holdout.col + holdout.width) & (holdout.col < cols + size))  # crop meets the hold-out
        self.corners = torch.stack([rows[~inside], cols[~inside]], dim=1)  # (N, 2) top-left corners
        if len(self.corners) == 0:
            raise ValueError(f"no {size} × {size} crop of the {height} × {width} grid avoids the hold-out {holdout}")

    def windows(self, batch: int) -> list[Window]:
        """`batch` random crop windows outside the hold-out."""
        picks = self.corners[torch.randint(len(self.corners), (batch,), generator=self.generator)]
        return [Window(int(r), int(c), self.size, self.size) for r, c in picks]

    def sample(self, batch: int) -> list[torch.Tensor]:
        windows = self.windows(batch)
        turns = torch.randint(4, (batch,), generator=self.generator).tolist()
        flips = torch.randint(2, (batch,), generator=self.generator).tolist()
        stacks = []
        for image in self.images:
            crops = []
            for w, k, flip in zip(windows, turns, flips):
                crop = torch.rot90(image[:, w.row:w.row + w.height, w.col:w.col + w.width], k, dims=(1, 2))
                crops.append(crop.flip(2) if flip else crop)
            stacks.append(torch.stack(crops))  # (batch, C_i, size, size)
        return stacks


def random_gains(reflectance: torch.Tensor, bounds: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    """(B, C, H, W) reflectance × a factor U(bounds) per sample, clipped to [0, 1] like the pipeline's input."""
    low, high = bounds
    gain = low + (high - low) * torch.rand(reflectance.shape[0], generator=generator)
    return (reflectance * gain[:, None, None, None]).clamp(0, 1)
