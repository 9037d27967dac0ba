"""The main job's quality tables and side-by-side previews, computed from the rasters `rsinfer` wrote (`make run`).

Cloud removal, on the held-out strip under its fixed cloud field (`demo.heldout`): PSNR (dB, data range 1), SSIM and
SAM (degrees) over all 13 bands, on all pixels, under cloud (opacity α > 0.5) and in the clear (α ≤ 0.5), in
reflectance = DN / 10000 clipped to [0, 1] (`train.evaluate_decloud.quality`, the demo weights' own evaluation), for
the cloudy input, the DB-CR demo with SAR and the SAR-free one (α-ratio sampler, 1 step), and the mean of K i2sb
draws when that run is there. Its uncertainty map (the draws' per-band standard deviation) is scored as a predictor of
the mean's error |mean − clear|: Spearman's rank correlation, and the AUROC for flagging errors above the median, over
every (pixel, band) value (`train.evaluate_decloud.spearman`, `auroc`).

Pansharpening, on the held-out Wald pair: the toolbox's reduced-resolution metrics and PSNR
(`train.evaluate_pansharpen.quality`: SAM, ERGAS, Q2n, Q_avg, SCC, PSNR; DN, 21-px border cut) of the CrossDiff demo
output of `rsinfer pansharpen` against EXP, GS and MTF-GLP-HPM, run here on the same MS and PAN files.

The tables are printed and written to OUT/quality.md (the numbers to OUT/quality.json); the previews are one PNG
per model (`demo.previews`).

Run from the repository root after the rsinfer commands of `make run`: ``python -m demo.report --out out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from demo.heldout import DECLOUD, DN_SCALE, PANSHARPEN, TRANSLATE, DecloudScene, scene_of
from demo.previews import Limits, colour, grey, stretch_limits, write_preview
from rsinfer.io import raster_tags
from rsinfer.pipelines.spec import PipelineSpec, Weights
from rsinfer.tiling import Window
from train.data import read_bands
from train.evaluate_decloud import STANDARD_COLUMNS, HeldOut, auroc, markdown, quality, spearman
from train.evaluate_pansharpen import baseline
from train.evaluate_pansharpen import markdown as pansharpen_markdown
from train.evaluate_pansharpen import quality as pansharpen_quality

RGB = ("B4", "B3", "B2")


DECLOUD_OUTPUTS = ("decloud/dbcr-demo.tif", "decloud/dbcr-demo-sar-free.tif", "decloud/dbcr-demo_i2sb_mean.tif")
PANSHARPEN_OUTPUT = "pansharpen/crossdiff-demo.tif"
TRANSLATE_OUTPUT = "translate/s2_l2a.tif"
BASELINES = {"exp": "EXP", "gs": "GS", "mtf-glp-hpm": "MTF-GLP-HPM"}
PANSHARPEN_COLUMNS = ("SAM", "ERGAS", "Q2n", "Q_avg", "SCC", "PSNR")


def label_of(path: str | os.PathLike) -> str:
    """A pipeline output's row label from its provenance tags: model, weights, sampler and steps, number of draws."""
    tags = raster_tags(path)
    weights = tags["RSINFER_WEIGHTS"].removeprefix("demo:")
    label = f"{tags['RSINFER_MODEL']} {weights[:len('sha256:') + 8] if weights.startswith('sha256:') else weights}"
    if "RSINFER_SAMPLER" in tags:
        steps = int(tags["RSINFER_STEPS"])
        label += f", {tags['RSINFER_SAMPLER']} {steps} step{'s' * (steps > 1)}"
    if "RSINFER_SAMPLES" in tags:
        label += f", mean of {tags['RSINFER_SAMPLES']}"
    return label


def uncertainty_of(path: Path) -> Path | None:
    """The uncertainty map written with the output `path` (its RSINFER_UNCERTAINTY tag), if it is there."""
    name = raster_tags(path).get("RSINFER_UNCERTAINTY")
    return path.with_name(name) if name and path.with_name(name).is_file() else None


def weights_of(path: str | os.PathLike) -> Weights:
    """The weights a pipeline output was made with, from its RSINFER_SPEC tag."""
    return PipelineSpec.from_json(raster_tags(path)["RSINFER_SPEC"]).parsed_weights()


def reflectance(path: str | os.PathLike) -> torch.Tensor:
    """(13, H, W) a written S2 raster in the network's units: DN / 10000 clipped to [0, 1] (nodata: NaN)."""
    values, _ = read_bands(Path(path))
    return (values / DN_SCALE).clamp(0, 1)


def true_colour(image: torch.Tensor, names: Sequence[str], limits: Limits) -> torch.Tensor:
    return colour(torch.stack([image[list(names).index(band)] for band in RGB]), limits)


def decloud_report(out: Path, scene: DecloudScene, names: Sequence[str], numbers: dict) -> list[str]:
    """The cloud-removal table (and the uncertainty line) as markdown lines, the numbers into `numbers`; the previews
    written."""
    data = HeldOut(scene.clear[None], scene.sar[None], scene.clouds, (Window(0, 0, *scene.clear.shape[1:]),))
    cloudy = reflectance(out / DECLOUD["s2"])
    rows = {"cloudy input": quality(cloudy[None], data)}
    outputs = [out / path for path in DECLOUD_OUTPUTS if (out / path).is_file()]
    estimates = {label_of(path): reflectance(path) for path in outputs}
    rows.update({label: quality(estimate[None], data) for label, estimate in estimates.items()})
    numbers["decloud"] = rows
    area = scene.area
    where = (f"Sen1Floods11 Spain_7370579, held-out rows {area.row}-{area.bottom - 1}, cols {area.col}-"
             f"{area.right - 1}, synthetic cloud field seed {scene.seed}")
    lines = [f"Cloud removal with the demo weights: {where} ({rows['cloudy input']['cloud_fraction']:.0%} under "
             f"cloud, {rows['cloudy input']['opaque_fraction']:.0%} fully opaque). PSNR dB, SSIM, SAM degrees over "
             "13 bands; cloud: opacity > 0.5; clear: the rest.", "", markdown(rows, STANDARD_COLUMNS), ""]

    limits = stretch_limits(torch.stack([scene.clear[names.index(b)] for b in RGB]))
    before, reference = true_colour(cloudy, names, limits), true_colour(scene.clear, names, limits)
    for path, (label, estimate) in zip(outputs, estimates.items()):
        panels = {"cloudy input": before, label: true_colour(estimate, names, limits), "clear reference": reference}
        uncertainty = uncertainty_of(path)
        if uncertainty is not None:
            std = reflectance(uncertainty)  # the std's DN / 10000, its reflectance
            spread = std.mean(0)  # (H, W)
            panels["std of the draws (band mean)"] = grey(spread, stretch_limits(spread[None], 0.0, 0.99))
            numbers["uncertainty"] = {"output": label, **uncertainty_scores(std, (estimate - scene.clear).abs())}
            lines += [uncertainty_line(uncertainty, numbers["uncertainty"]), ""]
        preview = path.with_name(f"preview_{path.stem}.png")
        write_preview(preview, panels, f"cloud removal: {label}", weights_of(path), where, zoom=2)
        lines.append(f"preview: {preview} ({' | '.join(panels)})")
    return lines


def uncertainty_scores(std: torch.Tensor, error: torch.Tensor) -> dict[str, float]:
    """How well the draws' std (13, H, W) predicts the mean's |error| (13, H, W), over every (pixel, band)."""
    flat_std, flat_error = std.flatten(), error.flatten()
    keep = torch.isfinite(flat_std) & torch.isfinite(flat_error)
    flat_std, flat_error = flat_std[keep].double(), flat_error[keep].double()
    return {"spearman": spearman(flat_std, flat_error), "auroc": auroc(flat_std, flat_error > flat_error.median()),
            "std_mean": float(flat_std.mean()), "error_mean": float(flat_error.mean())}


def uncertainty_line(path: Path, scores: dict[str, float]) -> str:
    return (f"Uncertainty map {path} ({scores['output']}): std of the draws against the mean's |error| over every "
            f"(pixel, band): Spearman {scores['spearman']:.3f}, AUROC {scores['auroc']:.3f} for flagging errors above "
            f"the median; mean std {scores['std_mean']:.4f}, mean |error| {scores['error_mean']:.4f} (reflectance). "
            "The demo network was trained on the noise-free bridge, so i2sb's draws carry the bridge noise (see "
            "weights/README.md).")


def pansharpen_report(out: Path, numbers: dict) -> list[str]:
    """The pansharpening table as markdown lines, the numbers into `numbers`; the preview written."""
    fused_path = out / PANSHARPEN_OUTPUT
    ms, pan, reference = (read_bands(out / PANSHARPEN[name])[0].double().numpy() for name in ("ms", "pan",
                                                                                              "reference"))
    fused = read_bands(fused_path)[0].double().numpy()
    label = label_of(fused_path)
    rows = {name: pansharpen_quality(baseline(method)(ms, pan[0]), reference) for method, name in BASELINES.items()}
    rows[f"{label} (rsinfer pansharpen)"] = pansharpen_quality(fused, reference)
    numbers["pansharpen"] = rows
    tags = raster_tags(out / PANSHARPEN["reference"])
    lines = [f"Pansharpening with the demo weights, Wald's protocol: {tags['RSINFER_DEMO_DATA']}; MS at 120 m, "
             "SYNTHETIC PAN (mean of the bands) at 30 m; DN, 21-px border cut.", "",
             pansharpen_markdown(rows, PANSHARPEN_COLUMNS), ""]
    to_rgb = [2, 1, 0]  # B4, B3, B2 of the MS order B2, B3, B4
    limits = stretch_limits(torch.from_numpy(reference[to_rgb]))
    upsampled = torch.from_numpy(ms[to_rgb]).repeat_interleave(4, 1).repeat_interleave(4, 2)
    panels = {"MS (120 m, nearest)": colour(upsampled, limits),
              label: colour(torch.from_numpy(fused[to_rgb]), limits),
              "reference (30 m)": colour(torch.from_numpy(reference[to_rgb]), limits)}
    preview = out / "pansharpen" / "preview_crossdiff-demo.png"
    write_preview(preview, panels, f"pansharpening: {label}", weights_of(fused_path), tags["RSINFER_DEMO_DATA"])
    return lines + [f"preview: {preview} ({' | '.join(panels)})", ""]


def translate_lines(out: Path) -> list[str]:
    path = out / TRANSLATE_OUTPUT
    if not path.is_file():
        return []
    return [f"Translation S1 -> S2 L2A ({label_of(path)}, RANDOM WEIGHTS: no official weights can be downloaded "
            f"here, so the output is not a translation; its tags and preview say so): {path} from "
            f"{out / TRANSLATE['s1_rtc']}", ""]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="out", help="the output folder of the main job (default %(default)s)")
    parser.add_argument("--data", help="the shared data folder (default ../shared/data beside the repository)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    _, names = read_bands(out / DECLOUD["clear"])
    numbers: dict = {}
    lines = [*decloud_report(out, scene_of(out, args.data), list(names), numbers), "",
             *pansharpen_report(out, numbers), *translate_lines(out)]
    text = "\n".join(lines).rstrip() + "\n"
    print(text, end="")
    (out / "quality.md").write_text(text)
    (out / "quality.json").write_text(json.dumps(numbers, indent=1))
    print(f"wrote {out / 'quality.md'} and {out / 'quality.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
