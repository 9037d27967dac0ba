"""The main job's inputs: held-out data the demo weights never saw, written as GeoTIFFs that `rsinfer` reads.

- Cloud removal (`decloud_scene`, `write_decloud_inputs`): the hold-out strip of the Sen1Floods11 chip, rows 0–511 ×
  columns 384–511 (`train.data.SEN1FLOODS11_HOLDOUT`, never used in training), under one fixed synthetic cloud field
  (`train.clouds.generate_clouds`, seed `CLOUD_SEED`: 37 % of the strip under cloud with α > 0.5, 31 % fully opaque,
  where only SAR sees the ground). Written: the cloudy S2 L1C (13 bands, int16 DN = round(10000·y), at least 1 since
  0 is the chip's nodata), its S1 (VV, VH dB as in the chip), the clear reference (DN) and the cloud opacity α.
- Pansharpening (`write_pansharpen_inputs`): Wald's protocol on `PANSHARPEN_AREA`, the Landsat 8 hold-out
  (`train.evaluate_pansharpen.HOLDOUT`, never read in training): the reference is B2, B3, B4 (DN); the MS is the
  reference through the landsat-8 MTF decimated by 4 (120 m); the PAN is SYNTHETIC, the mean of the three bands at
  30 m (`rsinfer.pipelines.evaluation.wald_pair`). Written as float32 DN on their grids (the MS pixel is 4 PAN pixels).
- Translation (`write_translate_input`): `TRANSLATE_AREA`, 256 × 256 pixels of the chip's S1, for COP-GEN-Beta with
  random weights (the 512² chip took 6.3 minutes).

Run from the repository root: ``python -m demo.heldout --out out`` (``--data``: the shared data folder).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rsinfer.io import Grid, grid_of, open_raster, raster_tags, write_raster
from rsinfer.tiling import Window
from train.clouds import Clouds, generate_clouds
from train.data import SEN1FLOODS11_HOLDOUT, SEN1FLOODS11_S1, SEN1FLOODS11_S2, data_dir, load_chip, read_bands
from train.evaluate_pansharpen import BANDS, HOLDOUT, heldout_pair, landsat_paths

CLOUD_SEED = 8
DN_SCALE = 10000  # Sentinel-2 L1C: reflectance × 10000
PANSHARPEN_AREA = HOLDOUT  # rows 616–1795, cols 1528–1975
TRANSLATE_AREA = Window(128, 128, 256, 256)

# Where each input and reference lies under the output folder.
DECLOUD = {"s2": "decloud/s2_cloudy.tif", "s1": "decloud/s1.tif", "clear": "decloud/s2_clear_reference.tif",
           "opacity": "decloud/cloud_opacity.tif"}
PANSHARPEN = {"ms": "pansharpen/ms.tif", "pan": "pansharpen/pan_synthetic.tif",
              "reference": "pansharpen/reference.tif"}
TRANSLATE = {"s1_rtc": "translate/s1.tif"}


@dataclass(frozen=True)
class DecloudScene:
    """An area of the chip (its window `area`): clear (13, H, W) and sar (2, H, W) in the network's units [0, 1], and
    its clouds (batch 1) drawn with `seed`."""

    clear: torch.Tensor
    sar: torch.Tensor
    clouds: Clouds
    area: Window
    seed: int

    @property
    def cloudy(self) -> torch.Tensor:
        """(13, H, W) the cloudy reflectance as written: quantised to DN, at least 1 DN."""
        return to_dn(self.clouds.apply(self.clear[None])[0]) / DN_SCALE


def to_dn(reflectance: torch.Tensor) -> torch.Tensor:
    """Reflectance → whole DN in 1 … 10000 (0 is the chip's nodata)."""
    return (reflectance * DN_SCALE).round().clamp(1, DN_SCALE)


def decloud_scene(data: str | os.PathLike | None = None, seed: int = CLOUD_SEED,
                  area: Window = SEN1FLOODS11_HOLDOUT) -> DecloudScene:
    """`area` of the chip (default: the hold-out strip) under the cloud field of `seed`."""
    chip = load_chip(data)
    rows, cols = slice(area.row, area.bottom), slice(area.col, area.right)
    clouds = generate_clouds(1, area.height, area.width, torch.Generator().manual_seed(seed))
    return DecloudScene(chip.optical[:, rows, cols], chip.sar[:, rows, cols], clouds, area, seed)


def scene_of(out: Path, data: str | os.PathLike | None = None) -> DecloudScene:
    """The scene `write_decloud_inputs` wrote under `out` (its area and cloud seed from the cloudy S2's tags)."""
    tags = raster_tags(out / DECLOUD["s2"])
    return decloud_scene(data, int(tags["RSINFER_DEMO_CLOUD_SEED"]), Window(*json.loads(tags["RSINFER_DEMO_WINDOW"])))


def window_grid(path: str | os.PathLike, window: Window) -> Grid:
    """The grid of `window` of the raster `path` (its CRS, nodata and band descriptions)."""
    dataset = open_raster(path)
    try:
        grid = grid_of(dataset)
    finally:
        dataset.close()
    return dataclasses.replace(grid, transform=grid.window_transform(window), height=window.height,
                               width=window.width)


def _write(array, grid: Grid, path: Path, dtype: str, descriptions: Sequence[str], nodata: float | None = None,
           **tags: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_raster(np.asarray(array, dtype=np.float32), grid, path, nodata=nodata, dtype=dtype,
                        descriptions=list(descriptions), tags=tags, overwrite=True)


def write_decloud_inputs(out: Path, data: str | os.PathLike | None = None, area: Window = SEN1FLOODS11_HOLDOUT,
                         seed: int = CLOUD_SEED) -> DecloudScene:
    """The cloudy S2 (clouds of `seed`), its S1, the clear reference and the opacity of `area` of the chip; the
    cloudy S2 records the area and the seed (`scene_of` rebuilds the scene from them)."""
    folder = data_dir(data)
    scene = decloud_scene(folder, seed, area)
    s2_grid, s1_grid = window_grid(folder / SEN1FLOODS11_S2, area), window_grid(folder / SEN1FLOODS11_S1, area)
    _, s2_names = read_bands(folder / SEN1FLOODS11_S2)
    s1, s1_names = read_bands(folder / SEN1FLOODS11_S1)
    where = (f"Sen1Floods11 Spain_7370579, rows {area.row}-{area.bottom - 1}, cols {area.col}-{area.right - 1} (the "
             "demo weights' hold-out)")
    clouds = f"synthetic (train.clouds.generate_clouds, seed {seed})"
    _write(scene.cloudy * DN_SCALE, s2_grid, out / DECLOUD["s2"], "int16", s2_names, RSINFER_DEMO_DATA=where,
           RSINFER_DEMO_CLOUDS=clouds, RSINFER_DEMO_WINDOW=json.dumps(dataclasses.astuple(area)),
           RSINFER_DEMO_CLOUD_SEED=str(seed))
    _write(s1[:, area.row:area.bottom, area.col:area.right], s1_grid, out / DECLOUD["s1"], "float32", s1_names,
           RSINFER_DEMO_DATA=where)
    _write(to_dn(scene.clear), s2_grid, out / DECLOUD["clear"], "int16", s2_names, RSINFER_DEMO_DATA=where,
           RSINFER_DEMO_CLOUDS="none: the clear reference")
    _write(scene.clouds.opacity[0], s2_grid, out / DECLOUD["opacity"], "float32", ["cloud opacity"], float("nan"),
           RSINFER_DEMO_DATA=where, RSINFER_DEMO_CLOUDS=clouds)
    return scene


def write_pansharpen_inputs(out: Path, data: str | os.PathLike | None = None,
                            area: Window = PANSHARPEN_AREA) -> None:
    pair = heldout_pair(data, area)
    grid = window_grid(landsat_paths(data)[0], area)
    where = (f"Landsat 8 LC08_L1TP_224078_20200518 B2, B3, B4, rows {area.row}-{area.bottom - 1}, cols {area.col}-"
             f"{area.right - 1} (in the demo weights' hold-out)")
    _write(pair.reference, grid, out / PANSHARPEN["reference"], "float32", BANDS, RSINFER_DEMO_DATA=where)
    _write(pair.ms, grid.scaled(0.25), out / PANSHARPEN["ms"], "float32", BANDS, RSINFER_DEMO_DATA=where,
           RSINFER_DEMO_WALD="the reference through the landsat-8 MTF (GNyq 0.3), decimated by 4")
    _write(pair.pan[None], grid, out / PANSHARPEN["pan"], "float32", ["PAN (synthetic: mean of B2, B3, B4)"],
           RSINFER_DEMO_DATA=where, RSINFER_DEMO_WALD="SYNTHETIC PAN: the mean of the reference's bands at 30 m")


def write_translate_input(out: Path, data: str | os.PathLike | None = None, area: Window = TRANSLATE_AREA) -> None:
    folder = data_dir(data)
    s1, names = read_bands(folder / SEN1FLOODS11_S1)
    _write(s1[:, area.row:area.bottom, area.col:area.right], window_grid(folder / SEN1FLOODS11_S1, area),
           out / TRANSLATE["s1_rtc"], "float32", names,
           RSINFER_DEMO_DATA=f"Sen1Floods11 Spain_7370579 S1, rows {area.row}-{area.bottom - 1}, cols {area.col}-"
                             f"{area.right - 1}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="out", help="the output folder (default %(default)s)")
    parser.add_argument("--data", help="the shared data folder (default ../shared/data beside the repository)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    scene = write_decloud_inputs(out, args.data)
    cloud, opaque = (float(mask.float().mean()) for mask in (scene.clouds.opacity > 0.5, scene.clouds.opacity >= 1))
    print(f"held-out inputs: {out / DECLOUD['s2']} (cloud field seed {CLOUD_SEED}: {cloud:.0%} under cloud, "
          f"{opaque:.0%} fully opaque), {out / DECLOUD['s1']}, {out / DECLOUD['clear']}")
    write_pansharpen_inputs(out, args.data)
    print(f"held-out Wald pair: {out / PANSHARPEN['ms']} (120 m), {out / PANSHARPEN['pan']} (SYNTHETIC, 30 m), "
          f"{out / PANSHARPEN['reference']}")
    write_translate_input(out, args.data)
    print(f"translation input: {out / TRANSLATE['s1_rtc']} (256 x 256)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
