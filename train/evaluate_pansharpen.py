"""Held-out evaluation of the demo pansharpening weights: Wald's protocol on a rectangle of the Landsat 8 scene that
training never reads, CrossDiff against the classical baselines.

The pair (`heldout_pair`, `rsinfer.pipelines.evaluation.wald_pair`): the reference is B2, B3, B4 (uint16 L1 DN) of
`HOLDOUT`, rows 616–1795 × cols 1528–1975 (1180 × 448 px, 30 m); the MS is that reference through the landsat-8 MTF
(GNyq 0.3 per band) decimated by 4 (295 × 112 px, 120 m); the PAN is SYNTHETIC, the mean of the three bands at the
reference scale (Landsat's real PAN, B8 at 15 m, is not in the shared data). Every method sharpens the pair:
- the baselines of `rsinfer.pansharpening` (EXP, Brovey, GS, GSA, MTF-GLP, MTF-GLP-HPM), toolbox semantics;
- CrossDiff through the runtime (`Pansharpen.sharpen_dn` of a pipeline built from the weights file: the torch
  engine, window-seeded feature noise, the card's DN scale), on the whole rectangle at once.

Metrics (`rsinfer.metrics.reduced_resolution`, DLPan-Toolbox conventions, DN, 21-px border cut): SAM (degrees), ERGAS
(ratio 4), Q2n (Q4: the three bands padded to four), Q_avg (UIQI on 32 × 32 blocks) and SCC; and PSNR (`psnr`): per
band, peak = the band maximum of the cut reference, averaged over the bands. ERGAS and SAM depend on the radiometric
offset (ERGAS divides by the band means, SAM measures angles from the origin), so they are also given in top-of-
atmosphere reflectance ρ = 2e-5·DN − 0.1 (Landsat 8's REFLECTANCE_MULT/ADD, no sun-angle term: the research note's
units), as ERGAS_toa and SAM_toa; the DN values are several times smaller (a band mean of ~7700 DN is ~0.054 in ρ).

Run from the repository root: ``python -m train.evaluate_pansharpen --weights weights/crossdiff-demo.safetensors``
(prints a markdown table; ``--json`` writes the numbers).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from rsinfer.metrics import reduced_resolution
from rsinfer.metrics.reports import cut_borders
from rsinfer.pansharpening import BASELINES
from rsinfer.pipelines import PipelineSpec, build
from rsinfer.pipelines.evaluation import wald_pair
from rsinfer.sensors import Sensor
from rsinfer.sensors import sensor as lookup_sensor
from rsinfer.tiling import Window

LANDSAT = "landsat/LC08_L1TP_224078_20200518_20200518_01_RT_{}.TIF"
BANDS = ("B2", "B3", "B4")
RATIO = 4
CUT = 21  # the toolbox's border cut (rsinfer.metrics.reduced_resolution)
HOLDOUT = Window(616, 1528, 1180, 448)  # rows 616–1795, cols 1528–1975: never read by training
TOA_GAIN, TOA_OFFSET = 2e-5, -0.1  # Landsat 8 L1: ρ = gain·DN + offset (no sun-angle term)
METRICS = ("SAM", "ERGAS", "Q2n", "Q_avg", "SCC", "PSNR", "SAM_toa", "ERGAS_toa")
BASELINE_NAMES = {"exp": "EXP", "brovey": "Brovey", "gs": "GS", "gsa": "GSA", "mtf-glp": "MTF-GLP",
                  "mtf-glp-hpm": "MTF-GLP-HPM"}  # rsinfer.pansharpening.BASELINES → table rows

Sharpener = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (MS (B, h, w), PAN (4h, 4w)) DN → (B, 4h, 4w) DN


class WaldPair(NamedTuple):
    """reference (3, H, W), ms (3, H/4, W/4) and pan (H, W), float64 DN."""

    reference: np.ndarray
    ms: np.ndarray
    pan: np.ndarray


def landsat_bands() -> Sensor:
    """The landsat-8 registry entry restricted to B2, B3, B4 (their GNyq and wavelengths)."""
    l8 = lookup_sensor("landsat-8")
    return dataclasses.replace(l8, bands=l8.select(BANDS))


def landsat_paths(data: str | os.PathLike | None) -> list[Path]:
    """B2, B3, B4 of the bundled scene in `data` (default: ../shared/data beside the repository)."""
    folder = Path(data) if data is not None else Path(__file__).resolve().parents[2] / "shared" / "data"
    paths = [folder / LANDSAT.format(band) for band in BANDS]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"the Landsat 8 bands {missing} are not in {folder}")
    return paths


def heldout_pair(data: str | os.PathLike | None = None, window: Window = HOLDOUT) -> WaldPair:
    """The Wald pair of the hold-out rectangle (see the module docstring)."""
    return WaldPair(*wald_pair(landsat_paths(data), None, landsat_bands(), window))


def psnr(fused: np.ndarray, reference: np.ndarray, cut: int = CUT) -> float:
    """Mean over bands of 10·log10(peak_b² / MSE_b), peak_b = max of reference band b, after the border cut."""
    fused, reference = cut_borders(np.asarray(fused, np.float64), cut), cut_borders(np.asarray(reference), cut)
    mse = ((fused - reference) ** 2).mean(axis=(1, 2))
    peak = reference.max(axis=(1, 2))
    return float(np.mean(10 * np.log10(peak ** 2 / mse)))


def quality(fused: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """The toolbox's reduced-resolution metrics and PSNR of a fused image against its reference (DN), and ERGAS and
    SAM in TOA reflectance."""
    toa = reduced_resolution(TOA_GAIN * fused + TOA_OFFSET, TOA_GAIN * reference + TOA_OFFSET, RATIO, cut=CUT)
    return {**reduced_resolution(fused, reference, RATIO, cut=CUT), "PSNR": psnr(fused, reference),
            "SAM_toa": toa["SAM"], "ERGAS_toa": toa["ERGAS"]}


def baseline(name: str) -> Sharpener:
    gains = [b.gnyq for b in landsat_bands().bands]
    return lambda ms, pan: BASELINES[name](ms, pan, RATIO, gains)


def pipeline_sharpener(weights: str | os.PathLike) -> Sharpener:
    """CrossDiff through the ``pansharpen`` pipeline built from `weights` (a weights file, or "demo")."""
    pipe = build(PipelineSpec("pansharpen", os.fspath(weights)))

    def sharpen(ms: np.ndarray, pan: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            fused = pipe.sharpen_dn(torch.from_numpy(pan).float()[None, None], torch.from_numpy(ms).float()[None])
        return fused[0].double().numpy()

    return sharpen


def evaluate(methods: Mapping[str, Sharpener], pair: WaldPair) -> dict[str, dict[str, float]]:
    """Each method's metrics (and its seconds) on `pair`, in the order given."""
    rows = {}
    for name, method in methods.items():
        start = time.perf_counter()
        fused = method(pair.ms, pair.pan)
        seconds = time.perf_counter() - start
        rows[name] = {**quality(fused, pair.reference), "seconds": seconds}
    return rows


def markdown(rows: Mapping[str, Mapping[str, float]], columns: Sequence[str] = (*METRICS, "seconds")) -> str:
    """A markdown table, SAM/ERGAS with 3 decimals, PSNR and seconds with 2, the Q's and SCC with 4."""
    digits = {"SAM": 3, "ERGAS": 3, "PSNR": 2, "SAM_toa": 3, "ERGAS_toa": 3, "seconds": 2}
    lines = ["| method | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, values in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{values[c]:.{digits.get(c, 4)}f}" for c in columns) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", nargs="*", default=["demo"],
                        help="CrossDiff weights files (train/pansharpen.py output), or demo (the shipped ones)")
    parser.add_argument("--data", help="the shared data folder (default ../shared/data beside the repository)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write every number to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    pair = heldout_pair(args.data)
    methods: dict[str, Sharpener] = {row: baseline(name) for name, row in BASELINE_NAMES.items()}
    for weights in args.weights:
        methods[f"CrossDiff {Path(weights).stem}"] = pipeline_sharpener(weights)
    rows = evaluate(methods, pair)
    print(f"Wald protocol on the hold-out rows {HOLDOUT.row}-{HOLDOUT.bottom - 1}, cols {HOLDOUT.col}-"
          f"{HOLDOUT.right - 1} of the Landsat 8 scene (B2, B3, B4 DN; MS {pair.ms.shape[1]} x {pair.ms.shape[2]} px "
          f"at 120 m, SYNTHETIC PAN = mean of the bands at 30 m), {CUT}-px border cut:\n")
    print(markdown(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"holdout": dataclasses.asdict(HOLDOUT), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
