"""Held-out evaluation of the demo cloud-removal weights (columns 384–511 of the Sen1Floods11 chip, never trained on).

The set (`heldout_set`): the 16 non-overlapping 64 × 64 tiles of the hold-out columns × 4 cloud fields (seeds 0–3 of
`train.clouds.generate_clouds`, one field per tile) = 64 samples. The opaque set is the same with every core fully
opaque (`Clouds.opaque`): there the optics carry no signal and only SAR can help.

Every estimate runs through the runtime path, `rsinfer.pipelines.dbcr.DbCr.restore` (the torch engine, each tile's
window on the chip grid seeding its noise), and is clipped to [0, 1] as the pipeline does before writing.

Metrics (`quality`), in reflectance with data range 1, over all 13 bands, per sample and then averaged over the samples
that have pixels in the region:
- PSNR = 10·log10(1 / MSE) with the MSE over the bands and the region's pixels;
- SSIM: Wang et al. (Gaussian 11, σ 1.5, valid windows, as `rsinfer.metrics.ssim`) per band, the band mean at each
  window centre averaged over the centres in the region;
- SAM: the spectral angle in degrees per pixel (`rsinfer.metrics.sam`'s convention), averaged over the region.
Regions: all pixels; "cloud" = opacity α > 0.5; "clear" = α ≤ 0.5 (thin haze included); "opaque" = α = 1.

Uncertainty (`uncertainty`): K samples of a stochastic sampler (i2sb, or dbim with η > 0), seeds 0..K−1; their mean
is the estimate and their per-pixel, per-band standard deviation the uncertainty. How well the std predicts the error
|mean − clear|: the Spearman rank correlation and the AUROC of the std for flagging values whose error is above the
median error, over every (pixel, band) value and over pixels (band means).

Run from the repository root: ``python -m train.evaluate_decloud --weights weights/dbcr-demo.safetensors
--sar-free-weights weights/dbcr-demo-sar-free.safetensors`` (prints markdown tables; ``--json`` writes the numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from rsinfer.metrics.image import SSIM_K1, SSIM_K2, gaussian_window
from rsinfer.pipelines.dbcr import DbCr, SamplingPlan
from rsinfer.tiling import Window, blend_tiles, plan_windows, tile_weights
from train.clouds import CloudConfig, Clouds, generate_clouds
from train.data import SEN1FLOODS11_HOLDOUT, Chip, load_chip

TILE = 64
CLOUD_FIELDS = 4
STEPS = (1, 3, 5)
CLOUD_OPACITY = 0.5  # the "cloud" / "clear" split


@dataclass(frozen=True)
class HeldOut:
    """N samples: clear (N, 13, h, w), sar (N, 2, h, w), their clouds, and each tile's window on the chip grid."""

    clear: torch.Tensor
    sar: torch.Tensor
    clouds: Clouds
    windows: tuple[Window, ...]

    @property
    def cloudy(self) -> torch.Tensor:
        return self.clouds.apply(self.clear)

    def opaque(self) -> HeldOut:
        return replace(self, clouds=self.clouds.opaque())

    def regions(self) -> dict[str, torch.Tensor]:
        """Region name → (N, h, w) bool mask."""
        alpha = self.clouds.opacity[:, 0]
        return {"all": torch.ones_like(alpha, dtype=torch.bool), "cloud": alpha > CLOUD_OPACITY,
                "clear": alpha <= CLOUD_OPACITY, "opaque": alpha >= 1}


def tiles_of(area: Window, tile: int) -> list[Window]:
    """The non-overlapping tile × tile windows filling `area`, row by row."""
    return [Window(area.row + r, area.col + c, tile, tile) for r in range(0, area.height - tile + 1, tile)
            for c in range(0, area.width - tile + 1, tile)]


def heldout_set(chip: Chip, area: Window = SEN1FLOODS11_HOLDOUT, tile: int = TILE, fields: int = CLOUD_FIELDS,
                config: CloudConfig = CloudConfig()) -> HeldOut:
    """Every tile of `area` under `fields` cloud fields, field j drawn from seed j (one independent field per tile)."""
    windows = tiles_of(area, tile)
    clear = torch.stack([chip.optical[:, w.row:w.bottom, w.col:w.right] for w in windows])
    sar = torch.stack([chip.sar[:, w.row:w.bottom, w.col:w.right] for w in windows])
    clouds = [generate_clouds(len(windows), tile, tile, torch.Generator().manual_seed(seed), config)
              for seed in range(fields)]
    joined = Clouds(*(torch.cat([getattr(c, name) for c in clouds]) for name in ("ramp", "peak", "spectrum", "haze")))
    return HeldOut(clear.repeat(fields, 1, 1, 1), sar.repeat(fields, 1, 1, 1), joined, tuple(windows) * fields)


def restore(dbcr: DbCr, data: HeldOut, batch: int = 16) -> torch.Tensor:
    """The runtime's estimate of every sample (N, 13, h, w), clipped to [0, 1]."""
    cloudy = data.cloudy
    parts = [dbcr.restore(cloudy[i:i + batch], data.sar[i:i + batch], data.windows[i:i + batch])
             for i in range(0, len(cloudy), batch)]
    return torch.cat(parts).clamp(0, 1)


def with_plan(dbcr: DbCr, sampler: str = "alpha-ratio", steps: int = 1, eta: float = 0.0, seed: int = 0) -> DbCr:
    return dbcr.with_plan(SamplingPlan(sampler, steps, eta, seed))


# --- metrics -------------------------------------------------------------------------------------------------------

def squared_error_map(estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) → (N, h, w): the squared error averaged over bands."""
    return ((estimate.double() - reference.double()) ** 2).mean(dim=1)


def sam_map(estimate: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) → (N, h, w) spectral angle in degrees; NaN where either spectrum is zero."""
    x, y = estimate.double(), reference.double()
    norms = (x * x).sum(1).sqrt() * (y * y).sum(1).sqrt()
    cosine = ((x * y).sum(1) / norms).clamp(-1, 1)
    return torch.rad2deg(torch.acos(cosine)).masked_fill(norms == 0, float("nan"))


def window_matrix(length: int) -> torch.Tensor:
    """(length, length − 10) float64: column j holds the SSIM Gaussian taps at rows j..j+10, so v @ M filters every
    full window along v's last axis."""
    taps = torch.from_numpy(gaussian_window())  # (11,)
    matrix = torch.zeros(length, length - len(taps) + 1, dtype=torch.float64)
    for j in range(matrix.shape[1]):
        matrix[j:j + len(taps), j] = taps
    return matrix


def ssim_map(estimate: torch.Tensor, reference: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """(N, C, h, w) → (N, h − 10, w − 10): SSIM (Wang et al. 2004, `rsinfer.metrics.ssim`) at every valid window
    centre, averaged over bands. Centre (i, j) of the map is pixel (i + 5, j + 5)."""
    x, y = estimate.double(), reference.double()
    rows, cols = window_matrix(x.shape[-2]), window_matrix(x.shape[-1])

    def local_mean(v: torch.Tensor) -> torch.Tensor:  # separable Gaussian over every full window
        return rows.T @ v @ cols  # (N, C, h − 10, w − 10)

    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    mu_x, mu_y = local_mean(x), local_mean(y)
    var_x, var_y = local_mean(x * x) - mu_x ** 2, local_mean(y * y) - mu_y ** 2
    cov = local_mean(x * y) - mu_x * mu_y
    index = (2 * mu_x * mu_y + c1) * (2 * cov + c2) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return index.mean(dim=1)


def region_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N, h, w) values and mask → (N,) mean over the masked (finite) values; NaN for a sample with none."""
    keep = mask & torch.isfinite(values)
    return torch.where(keep, values, 0).sum((1, 2)) / keep.sum((1, 2))  # 0/0 = NaN


def quality(estimate: torch.Tensor, data: HeldOut) -> dict[str, float]:
    """PSNR, SSIM, SAM over all pixels and per region: {"psnr": …, "psnr_cloud": …, "ssim_clear": …, …}."""
    squared = squared_error_map(estimate, data.clear)
    angles = sam_map(estimate, data.clear)
    structure = ssim_map(estimate, data.clear)
    border = (squared.shape[-1] - structure.shape[-1]) // 2
    out: dict[str, float] = {}
    for region, mask in data.regions().items():
        suffix = "" if region == "all" else f"_{region}"
        psnr = -10 * torch.log10(region_mean(squared, mask))
        ssim = region_mean(structure, mask[:, border:-border, border:-border])
        sam = region_mean(angles, mask)
        for name, per_sample in (("psnr", psnr), ("ssim", ssim), ("sam", sam)):
            present = per_sample[torch.isfinite(per_sample)]
            out[name + suffix] = float(present.mean()) if present.numel() else float("nan")
    out["cloud_fraction"] = float(data.regions()["cloud"].double().mean())
    out["opaque_fraction"] = float(data.regions()["opaque"].double().mean())
    return out


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """0-based ranks of a 1-D tensor, ties sharing the mean of their ranks (float64)."""
    _, inverse, counts = torch.unique(values, return_inverse=True, return_counts=True)  # sorted unique values
    first = (counts.cumsum(0) - counts).double()
    return (first + (counts.double() - 1) / 2)[inverse]


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's rank correlation of two equally long samples (Pearson's r of their average ranks)."""
    ra, rb = average_ranks(a.flatten()), average_ranks(b.flatten())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / ((ra * ra).sum() * (rb * rb).sum()).sqrt())


def auroc(scores: torch.Tensor, positive: torch.Tensor) -> float:
    """Area under the ROC curve of `scores` for the boolean labels `positive` (Mann–Whitney U / (n₊·n₋), ties ½)."""
    ranks = average_ranks(scores.flatten()) + 1  # 1-based
    positive = positive.flatten()
    n_pos = int(positive.sum())
    n_neg = positive.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUROC needs both classes, got {n_pos} positive and {n_neg} negative values")
    u = float(ranks[positive].sum()) - n_pos * (n_pos + 1) / 2
    return u / (n_pos * n_neg)


def uncertainty(dbcr: DbCr, data: HeldOut, samples: int, sampler: str = "i2sb", steps: int = 5,
                eta: float = 0.0) -> dict[str, float]:
    """K = `samples` stochastic restorations (seeds 0..K−1): the quality of their mean, and how well their std
    predicts its error (see the module docstring)."""
    if samples < 2:
        raise ValueError(f"uncertainty needs at least 2 samples, got {samples}")
    draws = torch.stack([restore(with_plan(dbcr, sampler, steps, eta, seed), data) for seed in range(samples)])
    mean, std = draws.mean(0), draws.std(0)  # (N, 13, h, w); std with Bessel's correction
    error = (mean - data.clear).abs()
    pixel_std, pixel_error = std.mean(1), error.mean(1)  # (N, h, w)
    return {"samples": samples, "steps": steps, "eta": eta,
            "psnr_mean": quality(mean, data)["psnr"], "psnr_single": quality(draws[0], data)["psnr"],
            "std_mean": float(std.mean()), "error_mean": float(error.mean()),
            "spearman": spearman(std, error), "auroc": auroc(std, error > error.median()),
            "spearman_pixel": spearman(pixel_std, pixel_error),
            "auroc_pixel": auroc(pixel_std, pixel_error > pixel_error.median())}


# --- tiling ----------------------------------------------------------------------------------------------------------

TILINGS: dict[str, tuple[int, int, str] | None] = {  # name → (tile, overlap, blend); None: the strip in one piece
    "whole strip": None, "64 tiles, no overlap": (64, 0, "constant"),
    "64 tiles, 16 overlap, cosine": (64, 16, "cosine"), "128 tiles, 32 overlap, cosine": (128, 32, "cosine"),
    "256 tiles, 32 overlap, cosine (decloud default; 256 × 128 here)": (256, 32, "cosine")}
SEAM_PERIOD = 64


def seam_ratio(image: torch.Tensor, period: int = SEAM_PERIOD) -> float:
    """Mean |difference| of neighbouring pixels across the lines between the period × period cells of the grid,
    over the same mean everywhere else (image (C, H, W), differences averaged over bands); 1 = no seam signature."""
    across_cols = (image[:, :, 1:] - image[:, :, :-1]).abs().mean(0)  # (H, W − 1): pixel j to j + 1
    across_rows = (image[:, 1:] - image[:, :-1]).abs().mean(0)  # (H − 1, W)
    col_line = torch.arange(across_cols.shape[1]) % period == period - 1
    row_line = torch.arange(across_rows.shape[0]) % period == period - 1
    on = torch.cat([across_cols[:, col_line].flatten(), across_rows[row_line].flatten()])
    off = torch.cat([across_cols[:, ~col_line].flatten(), across_rows[~row_line].flatten()])
    return float(on.mean() / off.mean())


def tiled_restore(dbcr: DbCr, cloudy: torch.Tensor, sar: torch.Tensor, area: Window,
                  tiling: tuple[int, int, str] | None) -> torch.Tensor:
    """(13, H, W) estimate of `area` (cloudy, sar: (C, H, W) of it) cut into tiles and blended back as the scene engine
    does (`rsinfer.tiling`: windows, weights not fading at the border, normalised overlap-add); noise is anchored to
    each tile's window on the chip grid."""
    height, width = cloudy.shape[-2:]
    if tiling is None:
        return dbcr.restore(cloudy[None], sar[None], [area])[0].clamp(0, 1)
    tile, overlap, blend = tiling
    windows = plan_windows(height, width, tile, overlap)
    tiles = torch.cat([dbcr.restore(torch.stack([cloudy[:, w.row:w.bottom, w.col:w.right] for w in part]),
                                    torch.stack([sar[:, w.row:w.bottom, w.col:w.right] for w in part]),
                                    [Window(area.row + w.row, area.col + w.col, w.height, w.width) for w in part])
                       for part in (windows[i:i + 16] for i in range(0, len(windows), 16))])
    weights = [tile_weights(w, height, width, overlap, blend) for w in windows]
    return blend_tiles(tiles, windows, height, width, weights).clamp(0, 1)


def tiling_report(dbcr: DbCr, chip: Chip, steps: Sequence[int] = (1, 5), area: Window = SEN1FLOODS11_HOLDOUT,
                  seed: int = 0) -> dict[str, dict[str, float]]:
    """The hold-out strip under one cloud field (seed `seed`) restored whole and tiled: PSNR against the clear strip,
    PSNR against the whole-strip result, and the seam ratio across the 64-px grid lines (`seam_ratio`)."""
    clear = chip.optical[:, area.row:area.bottom, area.col:area.right]
    sar = chip.sar[:, area.row:area.bottom, area.col:area.right]
    clouds = generate_clouds(1, area.height, area.width, torch.Generator().manual_seed(seed))
    cloudy = clouds.apply(clear[None])[0]
    report = {"clear reference": {"seam": seam_ratio(clear), "cloud_fraction": float((clouds.opacity > 0.5).double()
                                                                                     .mean())},
              "cloudy input": {"psnr": psnr(cloudy, clear), "seam": seam_ratio(cloudy)}}
    for k in steps:
        plan = with_plan(dbcr, steps=k)
        whole = tiled_restore(plan, cloudy, sar, area, None)
        for name, tiling in TILINGS.items():
            estimate = whole if tiling is None else tiled_restore(plan, cloudy, sar, area, tiling)
            report[f"{name}, {k} step{'s' * (k > 1)}"] = {
                "psnr": psnr(estimate, clear), "seam": seam_ratio(estimate),
                "psnr_vs_whole": psnr(estimate, whole) if tiling is not None else float("inf")}
    return report


def psnr(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    """10·log10(1 / MSE) over every value (data range 1)."""
    return float(-10 * torch.log10(((estimate.double() - reference.double()) ** 2).mean()))


# --- the report ----------------------------------------------------------------------------------------------------

def load_dbcr(path: str | os.PathLike) -> DbCr:
    """A demo weight file behind the runtime (its preset read from the file's metadata)."""
    from safetensors import safe_open

    with safe_open(os.fspath(path), "pt") as f:
        preset = (f.metadata() or {}).get("preset")
    if preset is None:
        raise ValueError(f"{path} has no 'preset' in its metadata: not a demo weight file of train/decloud.py")
    return DbCr.from_checkpoint(path, network={"preset": preset}, tile=TILE, batch_size=16)


def model_rows(name: str, dbcr: DbCr, data: HeldOut, steps: Sequence[int]) -> dict[str, dict[str, float]]:
    return {f"{name}, {k} step{'s' * (k > 1)}": quality(restore(with_plan(dbcr, steps=k), data), data) for k in steps}


def evaluate(models: dict[str, DbCr], chip: Chip, steps: Sequence[int] = STEPS) -> dict[str, dict[str, dict]]:
    """{"standard": rows, "opaque": rows}: the cloudy input and every model at every step count, on both sets."""
    standard = heldout_set(chip)
    report = {}
    for name, data in (("standard", standard), ("opaque", standard.opaque())):
        rows = {"cloudy input": quality(data.cloudy, data)}
        for model, dbcr in models.items():
            rows.update(model_rows(model, dbcr, data, steps))
        report[name] = rows
    return report


def markdown(rows: dict[str, dict[str, float]], columns: Sequence[str], missing: str = "") -> str:
    """A markdown table: one row per entry, SSIM and seam ratios with 3 decimals, the rest with 2."""
    def cell(values: dict[str, float], column: str) -> str:
        value = values.get(column)
        if value is None or value == float("inf"):
            return missing
        return f"{value:.3f}" if column in ("ssim", "seam") or column.startswith("ssim_") else f"{value:.2f}"

    lines = ["| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(cell(values, c) for c in columns) + " |" for name, values in rows.items()]
    return "\n".join(lines)


STANDARD_COLUMNS = ("psnr", "ssim", "sam", "psnr_cloud", "ssim_cloud", "sam_cloud", "psnr_clear", "ssim_clear",
                    "sam_clear")
OPAQUE_COLUMNS = ("psnr", "ssim", "sam", "psnr_cloud", "psnr_opaque", "sam_opaque")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True, help="the SAR model (train/decloud.py output)")
    parser.add_argument("--sar-free-weights", help="the SAR-free ablation, for the comparison")
    parser.add_argument("--data", help="the shared data folder (default ../shared/data beside the repository)")
    parser.add_argument("--steps", type=int, nargs="+", default=list(STEPS), help="α-ratio step counts")
    parser.add_argument("--uncertainty-samples", type=int, default=8, help="K stochastic samples (0: skip)")
    parser.add_argument("--uncertainty-sampler", choices=("i2sb", "dbim"), default="i2sb")
    parser.add_argument("--uncertainty-steps", type=int, default=5)
    parser.add_argument("--uncertainty-eta", type=float, default=0.0, help="dbim's η (> 0 for a stochastic dbim)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write every number to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    chip = load_chip(args.data)
    models = {"SAR model": load_dbcr(args.weights)}
    if args.sar_free_weights:
        models["SAR-free"] = load_dbcr(args.sar_free_weights)
    report: dict = evaluate(models, chip, args.steps)
    print("Held-out columns 384–511, 16 tiles × 4 cloud fields (PSNR dB, SSIM, SAM °; cloud: α > 0.5):\n")
    print(markdown(report["standard"], STANDARD_COLUMNS))
    print("\nOpaque set (same fields, cores fully opaque; opaque: α = 1):\n")
    print(markdown(report["opaque"], OPAQUE_COLUMNS))
    report["tiling"] = tiling_report(models["SAR model"], chip, args.steps)
    print("\nTiling, SAR model: the hold-out strip (512 × 128) under one cloud field; seam = mean |neighbour "
          "difference| across the 64-px grid lines over the same elsewhere:\n")
    print(markdown(report["tiling"], ("psnr", "psnr_vs_whole", "seam"), missing="–"))
    if args.uncertainty_samples:
        report["uncertainty"] = uncertainty(models["SAR model"], heldout_set(chip), args.uncertainty_samples,
                                            args.uncertainty_sampler, args.uncertainty_steps, args.uncertainty_eta)
        u = report["uncertainty"]
        eta = f", η {u['eta']}" if args.uncertainty_sampler == "dbim" else ""
        print(f"\nUncertainty, SAR model, {args.uncertainty_sampler} ({u['steps']} steps{eta}), "
              f"K = {u['samples']} seeds: PSNR of the mean {u['psnr_mean']:.2f} dB (one sample "
              f"{u['psnr_single']:.2f}); std vs |error| per pixel and band: Spearman {u['spearman']:.3f}, AUROC "
              f"{u['auroc']:.3f} (error > median); per pixel (band means): Spearman {u['spearman_pixel']:.3f}, "
              f"AUROC {u['auroc_pixel']:.3f}; mean std {u['std_mean']:.4f}, mean |error| {u['error_mean']:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
