"""CrossDiff pansharpening on CPU: milliseconds per 256² PAN tile across engines at equal output, and the scene rate
against the model-only tile rate.

    .venv/bin/python bench/crossdiff.py [--threads 2] [--clock wall|cpu] [--repeats 10] [--bands 4 8]
        [--candidates eager-fp32 ...] [--scene-size 928] [--scene-repeats 3]

Candidates (one process, side by side), all float32, each serving the three official-size networks (P2M and M2P
encoders, fusion head; seeded random weights, `rsinfer.pipelines.pansharpen.random_networks`) through
`rsinfer.engines` as the pipeline does (`ServedCrossDiff`): eager-fp32 (the reference: eager PyTorch, NCHW),
eager-fp32-channels-last (NHWC), compile-fp32 (torch.export + inductor with freezing, channels-last),
onnxruntime-fp32 (the exported graphs on ONNX Runtime's CPU provider). One call = `CrossDiff.sharpen` of one
256² PAN tile and its 64² MS (bicubic ×4, both encoders, the head; the feature noise is drawn once beforehand).
Each engine is built and called twice first (export and compilation excluded, reported as setup); then
`rsinfer.benchmark.compare` runs the candidates interleaved round by round, `--repeats` rounds; medians with the
min–max spread. "rel.err" is the relative L2 distance of a candidate's residual sr_raw − MS_up (the networks'
contribution) from eager-fp32's. FLOPs are counted by `torch.utils.flop_counter` over one eager call (convolutions,
linear layers); GFLOP/s is set against two rates measured in the same rounds with the same threads
(`rsinfer.benchmark.machine`): a float32 2048³ GEMM and the head's costliest convolution shape (3×3, 128 → 128
channels on 128², channels-last).

Scene rate: the `pansharpen` pipeline (`rsinfer.pipelines.run`, tile 256, overlap 32, cosine, batch 4) with the
fastest candidate's engine on a `--scene-size`² PAN (928 = 16 tiles, 4 full batches) made from the bundled Landsat 8
scene: B2, B3, B4 repeated cyclically up to the band count (a speed input, not a spectral one), degraded and
decimated by 4, PAN synthetic (their mean), sensor landsat-8 (DN scale 65535). Tiles per second of the whole job
(reading, noise, networks, blending, writing) against the model-only rate of the same engine on batches of 4 tiles,
interleaved scene by batch (one warm-up each: it warms the reader and the writer).
`--clock cpu` times with the process's CPU time instead of the wall clock: on a shared machine a descheduled run
does not count, so ratios stay stable under load (at 1 thread; at 2, OpenMP's spinning at barriers counts too).
One JSON line (schema ``rsinfer.compare/1``) per band count and part ("crossdiff.tile", "crossdiff.scene") goes to
bench/crossdiff.jsonl. Targets (issue 11): the best engine ≥ 1.5x eager-fp32 at rel.err ≤ 1e-4, and
scenes ≥ 80 % of the model-only tile rate, at 2 threads.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio
import torch
from affine import Affine
from rasterio.windows import Window as RioWindow
from torch.utils.flop_counter import FlopCounterMode

from rsinfer.benchmark import RunLength, append_json_line, compare, convolution, gemm, settle_allocator, timed
from rsinfer.benchmark.comparison import CLOCK_NAMES
from rsinfer.io import OutputOptions
from rsinfer.pansharpening import degrade
from rsinfer.pipelines import CrossDiff, PipelineSpec, Tiling, build, run
from rsinfer.pipelines.pansharpen import ServedCrossDiff, random_networks

CANDIDATES = {
    "eager-fp32": dict(engine="torch", memory_format=None),
    "eager-fp32-channels-last": dict(engine="torch", memory_format="channels_last"),
    "compile-fp32": dict(engine="compile", memory_format=None),
    "onnxruntime-fp32": dict(engine="onnxruntime", memory_format=None),
}
TILE = 256
DN_SCALE = 2047.0
LANDSAT = Path(__file__).resolve().parents[2] / "shared" / "data" / "landsat"
SCENE_ORIGIN = (600, 700)


def reference_workloads():
    """The float32 2048³ GEMM and the head's costliest convolution (decoder.4: 3×3, 128 → 128 on 128²)."""
    return {"gemm": gemm(2048, 2048, 2048), "conv": convolution(128, 128, 3)}


def scene_inputs(size: int, bands: int, directory: Path) -> dict[str, Path]:
    """PAN and MS GeoTIFFs of a Landsat 8 Wald pair with `bands` MS bands (B2, B3, B4 cycled), PAN synthetic."""
    reference = []
    for band in ("B2", "B3", "B4"):
        with rasterio.open(LANDSAT / f"LC08_L1TP_224078_20200518_20200518_01_RT_{band}.TIF") as src:
            window = RioWindow(SCENE_ORIGIN[1], SCENE_ORIGIN[0], size, size)
            reference.append(src.read(1, window=window).astype(np.float64))
            transform, crs = src.window_transform(window), src.crs
    stack = np.stack([reference[i % 3] for i in range(bands)])
    pair = degrade(stack, None, 0.3)
    paths = {"pan": directory / "pan.tif", "ms": directory / f"ms{bands}.tif"}
    profile = dict(driver="GTiff", crs=crs, dtype="float32")
    with rasterio.open(paths["pan"], "w", **profile, count=1, width=size, height=size, transform=transform) as dst:
        dst.write(pair.pan[None].astype(np.float32))
    with rasterio.open(paths["ms"], "w", **profile, count=bands, width=size // 4, height=size // 4,
                       transform=transform @ Affine.scale(4)) as dst:
        dst.write(pair.ms.astype(np.float32))
    return paths


def bench_tiles(bands: int, args) -> str:
    """The candidates on one tile; returns the fastest candidate that meets the error bound."""
    torch.manual_seed(bands)
    nets = random_networks(0, bands, None)
    pan = torch.rand(1, 1, TILE, TILE) * DN_SCALE
    ms = torch.rand(1, bands, TILE // 4, TILE // 4) * DN_SCALE
    plain = CrossDiff(*nets, dn_scale=DN_SCALE)
    noise = plain.feature_noise(1, TILE, TILE)
    counter = FlopCounterMode(display=False)
    with counter:
        plain.sharpen(pan, ms, noise)
    flops = counter.get_total_flops()
    params = sum(p.numel() for net in nets for p in net.parameters())
    print(f"\n{bands} bands: {params / 1e6:.2f} M parameters (P2M + M2P + head), {flops / 1e9:.1f} GFLOP per "
          f"{TILE}² tile (the U-Net decoders never run)", flush=True)

    engines, setups, residuals, unavailable = {}, {}, {}, {}
    for name in args.candidates:  # build and call every engine first (excluded from the timings)
        def setup(spec=CANDIDATES[name]):
            engine = ServedCrossDiff(*nets, DN_SCALE, 0, engine=spec["engine"], memory_format=spec["memory_format"],
                                     cache_dir=args.cache_dir, threads=args.threads, batch_size=1)
            out = engine.sharpen(pan, ms, noise)
            engine.sharpen(pan, ms, noise)
            return engine, out.sr_raw - out.ms_up

        try:
            (engines[name], residuals[name]), setups[name] = timed(setup, args.clock)
        except Exception as err:  # an engine that cannot serve these networks is reported, not fatal
            unavailable[name] = f"{type(err).__name__}: {str(err).splitlines()[0]}"
            print(f"  {name:26s} UNAVAILABLE: {unavailable[name]}", flush=True)
            continue
        print(f"  {name:26s} ready (setup {setups[name]:.1f} s)", flush=True)
    reference = residuals.get("eager-fp32")
    if reference is None:
        reference = (lambda r: r.sr_raw - r.ms_up)(plain.sharpen(pan, ms, noise))
    errors = {name: float((r - reference).norm() / reference.norm()) for name, r in residuals.items()}

    probes = reference_workloads()
    result = compare({**{name: (lambda engine=engine: engine.sharpen(pan, ms, noise))
                         for name, engine in engines.items()},
                      **{probe.name: probe.call for probe in probes.values()}},
                     RunLength(count=args.repeats), warmup=1, clock=args.clock)
    rates = {kind: result[probe.name].rate(probe.flops) / 1e9 for kind, probe in probes.items()}

    rows = []
    for name in engines:
        timing = result[name]
        speedup = result.speedup(name, "eager-fp32") if "eager-fp32" in engines else float("nan")
        rows.append(dict(bands=bands, candidate=name, precision="float32", tile=TILE, threads=args.threads,
                         ms_median=timing.median * 1e3, ms_min=timing.min * 1e3, ms_max=timing.max * 1e3,
                         speedup=speedup, rel_err=errors[name], setup_s=setups[name], gflop=flops / 1e9,
                         gflops=timing.rate(flops) / 1e9, gemm_gflops=rates["gemm"], conv_gflops=rates["conv"]))
    rows += [dict(bands=bands, candidate=name, unavailable=reason) for name, reason in unavailable.items()]
    document = result.document("crossdiff.tile", rows, command=sys.argv, extra={
        "bands": bands, "flops_per_tile": flops, "tile": TILE, "reference_gflops": rates,
        "reference_workloads": {kind: probe.name for kind, probe in probes.items()}})
    append_json_line(args.jsonl, document)

    print(f"\nrates in the same rounds: {probes['gemm'].name} {rates['gemm']:.0f} GFLOP/s, {probes['conv'].name} "
          f"{rates['conv']:.0f} GFLOP/s")
    print(f"\n| bands | candidate | ms / {TILE}² tile (median, min–max) | vs eager-fp32 | rel.err | GFLOP/s | "
          f"% of GEMM | % of conv | setup s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        if "unavailable" in row:
            print(f"| {bands} | {row['candidate']} | unavailable: {row['unavailable']} | | | | | | |")
            continue
        print(f"| {bands} | {row['candidate']} | {row['ms_median']:.0f} ({row['ms_min']:.0f}–{row['ms_max']:.0f}) | "
              f"{row['speedup']:.2f}x | {row['rel_err']:.1e} | {row['gflops']:.0f} | "
              f"{100 * row['gflops'] / rates['gemm']:.0f}% of {rates['gemm']:.0f} | "
              f"{100 * row['gflops'] / rates['conv']:.0f}% of {rates['conv']:.0f} | {row['setup_s']:.1f} |")
    eligible = [name for name in engines if errors[name] <= 1e-4]
    return min(eligible, key=lambda name: result[name].median)


def bench_scene(bands: int, best: str, args, directory: Path) -> None:
    """The pipeline over a scene with `best`'s engine against the same engine's model-only rate (batches of 4)."""
    spec = CANDIDATES[best]
    options = {"sensor": "landsat-8", "engine": spec["engine"], "memory_format": spec["memory_format"],
               "threads": args.threads, "cache_dir": str(args.cache_dir)}
    pipe = build(PipelineSpec("pansharpen", "random:0", {k: v for k, v in options.items() if v is not None}))
    inputs = scene_inputs(args.scene_size, bands, directory)
    tiling = Tiling(TILE, 32, "cosine", 4)
    crossdiff = pipe.crossdiff(bands)
    pan = torch.rand(4, 1, TILE, TILE) * crossdiff.dn_scale
    ms = torch.rand(4, bands, TILE // 4, TILE // 4) * crossdiff.dn_scale
    noise = crossdiff.feature_noise(4, TILE, TILE)
    crossdiff.sharpen(pan, ms, noise)  # compiles the batch-4 graphs the scene uses
    out = directory / "scene.tif"
    summaries = []

    def scene() -> None:
        summaries.append(run(pipe, inputs, out, tiling=tiling, progress=False,
                             output_options=OutputOptions(dtype="float32", overwrite=True)))

    # The warm-up scene run warms the reader and the writer.
    result = compare({"model": lambda: crossdiff.sharpen(pan, ms, noise), "scene": scene},
                     RunLength(count=args.scene_repeats), warmup=1, clock=args.clock)
    tiles = summaries[-1].tiles_run
    model_rate, scene_rate = result["model"].rate(4), result["scene"].rate(tiles)
    row = dict(bands=bands, candidate=best, scene=args.scene_size, tiles=tiles, threads=args.threads,
               model_tiles_per_s=model_rate, scene_tiles_per_s=scene_rate, scene_min=tiles / result["scene"].max,
               scene_max=tiles / result["scene"].min, ratio=scene_rate / model_rate)
    append_json_line(args.jsonl, result.document("crossdiff.scene", [row], command=sys.argv))
    print(f"\nscene {args.scene_size}² PAN, {bands} bands, {tiles} tiles, {best}: {scene_rate:.2f} tiles/s "
          f"({row['scene_min']:.2f}–{row['scene_max']:.2f}) against {model_rate:.2f} tiles/s model-only = "
          f"{100 * row['ratio']:.0f} %", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch and ONNX Runtime threads (default 2)")
    parser.add_argument("--clock", choices=CLOCK_NAMES, default="wall", help="wall clock or process CPU time")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--bands", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--scene-size", type=int, default=928, help="PAN side of the scene (default 928: 16 tiles)")
    parser.add_argument("--scene-repeats", type=int, default=3, help="timed scene runs (0: no scene)")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "rsinfer-bench-crossdiff")
    parser.add_argument("--jsonl", type=Path, default=Path(__file__).with_suffix(".jsonl"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settle_allocator()
    print(f"clock: {args.clock}; {args.threads} threads", flush=True)
    with torch.no_grad(), tempfile.TemporaryDirectory() as tmp:
        for bands in args.bands:
            best = bench_tiles(bands, args)
            if args.scene_repeats:
                bench_scene(bands, best, args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
