"""How much tiling changes a CrossDiff scene: tile-vs-whole PSNR and seam ratio per overlap and blend.

    .venv/bin/python bench/pansharpen_tiling.py [--size 512] [--tile 256] [--overlaps 0 16 32 64 96]
        [--blends cosine gaussian constant crop] [--threads 2] [--seed 0] [--weights demo]

The fusion head's cSE gates scale every channel by a function of its mean over the whole input, so a tile's output
depends on all of the tile and tiled scenes never equal the whole image exactly (the U-Net encoders and the rest of
the head are local, with a receptive field of a few dozen pixels). This measures the effect on a Wald pair made from
the bundled Landsat 8 scene (B2, B3, B4 of a `--size`² crop at rows/cols 600/700 are the reference; MS = MTF-degraded
and decimated by 4; PAN = SYNTHETIC, the mean of the three bands, at the reference scale), sensor landsat-8
(DN scale 65535), official-size networks with seeded random weights (`random:SEED`), or `--weights demo`: the
demo weights trained here (weights/README.md), at the DN scale of their model card.

The whole image is sharpened in one piece (`Pansharpen.sharpen_dn`); each (overlap, blend) runs through the scene
engine (`rsinfer.pipelines.run`, float32 output). Reported, on the model's [0, 1] scale (DN / the DN scale):
- PSNR tiled vs whole (data range 1);
- residual change: ‖tiled − whole‖ / ‖whole − MS_up‖, the share of the network's contribution that tiling changes;
- seam ratio: mean squared neighbour difference over the pixel pairs in overlap bands or across a tile edge, divided
  by the same over every other pair, for the tiled output, divided by that ratio for the whole-image output at the
  same pairs (1.0 = the tiling adds no visible seam);
- seconds of the scene run.
JSON lines go to bench/pansharpen_tiling.jsonl.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
import torch
from affine import Affine
from rasterio.windows import Window as RioWindow

from rsinfer.io import OutputOptions
from rsinfer.pansharpening import degrade
from rsinfer.pipelines import PipelineSpec, Tiling, build, run
from rsinfer.sensors import sensor
from rsinfer.tiling import plan_windows

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "landsat"
BANDS = ("B2", "B3", "B4")
ORIGIN = (600, 700)  # rows, cols of the crop: inside the scene's valid area


def wald_pair(size: int, directory: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """PAN and MS GeoTIFFs of the Landsat crop's Wald pair, and the PAN (H, W) and MS (3, H/4, W/4) arrays."""
    reference = []
    for band in BANDS:
        with rasterio.open(DATA / f"LC08_L1TP_224078_20200518_20200518_01_RT_{band}.TIF") as src:
            window = RioWindow(ORIGIN[1], ORIGIN[0], size, size)
            reference.append(src.read(1, window=window).astype(np.float64))
            transform, crs = src.window_transform(window), src.crs
    landsat = sensor("landsat-8")
    pair = degrade(np.stack(reference), None, dataclasses.replace(landsat, bands=landsat.select(BANDS)))
    pan_path, ms_path = directory / "pan.tif", directory / "ms.tif"
    profile = dict(driver="GTiff", crs=crs, dtype="float32")
    with rasterio.open(pan_path, "w", **profile, count=1, width=size, height=size, transform=transform) as dst:
        dst.write(pair.pan[None].astype(np.float32))
    with rasterio.open(ms_path, "w", **profile, count=3, width=size // 4, height=size // 4,
                       transform=transform @ Affine.scale(4)) as dst:
        dst.write(pair.ms.astype(np.float32))
    return pan_path, ms_path, pair.pan.astype(np.float32), pair.ms.astype(np.float32)


def seam_pairs(size: int, tile: int, overlap: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks of horizontal (H, W−1) and vertical (H−1, W) neighbour pairs that lie in an overlap band or straddle a
    tile edge."""
    windows = plan_windows(size, size, tile, overlap)
    cover = np.zeros((size, size), dtype=int)
    edges_x, edges_y = np.zeros((size, size - 1), bool), np.zeros((size - 1, size), bool)
    for w in windows:
        cover[w.row:w.bottom, w.col:w.right] += 1
        for col in (w.col, w.right):
            if 0 < col < size:
                edges_x[w.row:w.bottom, col - 1] = True
        for row in (w.row, w.bottom):
            if 0 < row < size:
                edges_y[row - 1, w.col:w.right] = True
    band = cover > 1
    return edges_x | band[:, 1:] | band[:, :-1], edges_y | band[1:] | band[:-1]


def neighbour_ratio(image: np.ndarray, pairs: tuple[np.ndarray, np.ndarray]) -> float:
    """Mean squared neighbour difference over the `pairs` / over the other pairs, (C, H, W) image."""
    dx, dy = np.diff(image, axis=2) ** 2, np.diff(image, axis=1) ** 2
    seam = np.concatenate([dx[:, pairs[0]].ravel(), dy[:, pairs[1]].ravel()])
    other = np.concatenate([dx[:, ~pairs[0]].ravel(), dy[:, ~pairs[1]].ravel()])
    return float(seam.mean() / other.mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512, help="PAN side of the Wald pair (default 512)")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlaps", type=int, nargs="+", default=[0, 16, 32, 64, 96])
    parser.add_argument("--blends", nargs="+", default=["cosine", "gaussian", "constant", "crop"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights", help="the pipeline's weights (default random:SEED, official size; demo: the "
                                          "crossdiff-demo weights at their model card's DN scale)")
    parser.add_argument("--jsonl", type=Path, default=Path(__file__).with_suffix(".jsonl"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    weights = args.weights or f"random:{args.seed}"
    trained = not weights.startswith("random:")
    options = {"seed": args.seed} if trained else {"sensor": "landsat-8", "seed": args.seed}
    pipe = build(PipelineSpec("pansharpen", weights, options))
    scale = pipe.dn_scale
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory() as tmp:
        pan_path, ms_path, pan, ms = wald_pair(args.size, Path(tmp))
        pan_t, ms_t = torch.from_numpy(pan)[None, None], torch.from_numpy(ms)[None]
        start = time.perf_counter()
        whole = pipe.sharpen_dn(pan_t, ms_t)[0].double().numpy() / scale  # (3, H, W) on the [0, 1] scale
        whole_seconds = time.perf_counter() - start
        ms_up = pipe.crossdiff(3).sharpen(pan_t, ms_t).ms_up[0].double().numpy()
        residual = np.linalg.norm(whole - ms_up)
        networks = f"{weights} networks" if trained else f"official-size random:{args.seed} networks"
        print(f"Wald pair {args.size}² PAN (synthetic) / {args.size // 4}² MS, Landsat 8 B2 B3 B4, {networks}; "
              f"whole image {whole_seconds:.1f} s; |residual| / |MS_up| = "
              f"{residual / np.linalg.norm(ms_up):.3f}", flush=True)
        print("\n| overlap | blend | PSNR tiled vs whole (dB) | residual change | seam ratio | seconds |")
        print("|---|---|---|---|---|---|")
        for overlap in args.overlaps:
            pairs = seam_pairs(args.size, args.tile, overlap)
            for blend in args.blends:
                out = Path(tmp) / f"tiled_{overlap}_{blend}.tif"
                start = time.perf_counter()
                run(pipe, {"pan": pan_path, "ms": ms_path}, out, tiling=Tiling(args.tile, overlap, blend, 4),
                    output_options=OutputOptions(dtype="float32"), progress=False)
                seconds = time.perf_counter() - start
                with rasterio.open(out) as src:
                    tiled = src.read().astype(np.float64) / scale
                mse = float(((tiled - whole) ** 2).mean())
                row = dict(bench="pansharpen_tiling", size=args.size, tile=args.tile, overlap=overlap, blend=blend,
                           psnr_db=10 * np.log10(1 / mse) if mse else float("inf"),
                           residual_change=float(np.linalg.norm(tiled - whole) / residual),
                           seam_ratio=neighbour_ratio(tiled, pairs) / neighbour_ratio(whole, pairs),
                           seconds=seconds, threads=args.threads, seed=args.seed, weights=weights, date=date)
                with open(args.jsonl, "a") as handle:
                    handle.write(json.dumps(row) + "\n")
                print(f"| {overlap} | {blend} | {row['psnr_db']:.1f} | {row['residual_change']:.2e} | "
                      f"{row['seam_ratio']:.3f} | {seconds:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
