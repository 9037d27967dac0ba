"""Scene engine benchmarks (issue 3): engine overhead, peak memory vs scene size, tiles/s.

    .venv/bin/python bench/scene.py            # all three, prints a table, appends JSON lines to bench/scene.jsonl
    .venv/bin/python bench/scene.py --quick    # fewer repeats, memory only up to 8k²

1. Overhead: a small conv net (≥ 5 ms per 256² tile here) over the real Landsat 8 scene (B4, B3, B2; 2041x1860),
   tile 256, overlap 32: `run_scene` end to end (read, blend, write a GeoTIFF) vs the same model alone on the same
   tiles already in memory. Target ≤ 1.10x.
2. Peak resident memory (VmHWM, one fresh subprocess per size) for scenes of 2k², 8k², 16k² built as VRT mosaics of
   shifted copies of the Landsat 8 bands (nothing large is written except the output, in a temp dir). Target: the
   16k² peak ≤ 1.25x the 2k² peak.
3. Tiles/s for tile 256/512 and overlap 0/32/64 with a per-pixel product (the engine's own cost).

Timing (1 and 3) is `rsinfer.benchmark.compare`: one warm-up run of each candidate, then the candidates interleaved
run by run (1: model alone, engine and a 1024³ fp32 GEMM probe; 3: the six tile/overlap settings), wall clock with
each run's process CPU time alongside. Each part appends one JSON line (1 and 3: schema ``rsinfer.compare/1``, the
table row(s) under "table"; 2: the row itself).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from rsinfer.benchmark import Comparison, RunLength, append_json_line, compare, gemm, settle_allocator

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "landsat"
BANDS = {b: DATA / f"LC08_L1TP_224078_20200518_20200518_01_RT_{b}.TIF" for b in ("B2", "B3", "B4")}
JSONL = ROOT / "bench" / "scene.jsonl"


def _record(kind: str, result: Comparison | None, **row) -> dict:
    """One JSON line: the comparison's document with `row` as its table (or `row` alone, for the memory part)."""
    if result is None:
        append_json_line(JSONL, {"bench": f"scene.{kind}", **row})
    else:
        append_json_line(JSONL, result.document(f"scene.{kind}", [row], command=sys.argv))
    return row


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


class ConvNet(torch.nn.Module):
    """3 → 24 → 24 → 1 channels of 3x3 convolutions: a stand-in model of 0.8 GFLOP per 256² tile."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 24, 3, padding=1), torch.nn.ReLU(),
                                       torch.nn.Conv2d(24, 24, 3, padding=1), torch.nn.ReLU(),
                                       torch.nn.Conv2d(24, 1, 3, padding=1))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = torch.cat([batch["red"], batch["green"], batch["blue"]], 1) / 1e4  # (B, 3, h, w)
        return self.net(x)  # (B, 1, h, w)

    @staticmethod
    def flops(h: int, w: int) -> float:
        return 2.0 * h * w * 9 * (3 * 24 + 24 * 24 + 24 * 1)


def normalised_difference(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    a, b = batch["a"], batch["b"]
    return (a - b) / (a + b).clamp_min(1)


def bench_overhead(repeats: int, tmp: Path) -> dict:
    from rsinfer.scene import run_scene
    from rsinfer.scene.inputs import close_all, input_specs_of, open_inputs
    from rsinfer.scene.tiles import read_batch
    from rsinfer.tiling import plan_windows

    torch.manual_seed(0)
    model = ConvNet().eval()
    inputs = {"red": BANDS["B4"], "green": BANDS["B3"], "blue": BANDS["B2"]}
    tile, overlap, batch_size = 256, 32, 4
    grid, sources = open_inputs(inputs, None, None, input_specs_of(model, list(inputs)), pad_to=tile)
    windows = plan_windows(grid.height, grid.width, tile, overlap)
    batches = [read_batch(sources, windows[i:i + batch_size], (tile, tile))
               for i in range(0, len(windows), batch_size)]
    close_all(sources)
    in_memory = [{k: torch.from_numpy(v) for k, v in b.inputs.items()} for b in batches]

    def model_alone() -> None:
        with torch.inference_mode():
            for batch in in_memory:
                model(batch)

    def engine() -> None:
        run_scene(model, inputs, tmp / "overhead.tif", tile=tile, overlap=overlap, batch_size=batch_size,
                  overwrite=True, progress=False)

    probe = gemm(1024, 1024, 1024)
    # warm-up: allocator, GDAL caches, page cache; then interleaved, so load drift hits both alike
    result = compare({"model": model_alone, "engine": engine, probe.name: probe.call}, RunLength(count=repeats),
                     warmup=1)
    alone, full = result["model"], result["engine"]
    ratios = result.pair_ratios("engine", "model")  # per interleaved pair: robust to load drift
    return _record("overhead", result, tiles=len(windows), model_ms_per_tile=alone.median / len(windows) * 1e3,
                   model_s=alone.median, engine_s=full.median, ratio=statistics.median(ratios),
                   ratio_of_minima=full.min / alone.min, ratio_min=ratios[0], ratio_max=ratios[-1],
                   cpu_ratio=statistics.median(result.pair_ratios("engine", "model", cpu=True)),
                   model_gflops=alone.rate(ConvNet.flops(tile, tile) * len(windows)) / 1e9,
                   gemm_gflops=result[probe.name].rate(probe.flops) / 1e9, repeats=repeats,
                   threads=torch.get_num_threads())


def mosaic_vrt(source: Path, size: int, path: Path) -> Path:
    """A size × size VRT tiling shifted copies of `source` (each copy placed at its own offset)."""
    import rasterio

    with rasterio.open(source) as src:
        h, w, crs, t, dtype = src.height, src.width, src.crs.to_wkt(), src.transform, src.dtypes[0]
    gdal_type = {"uint16": "UInt16"}[dtype]
    sources = []
    for row in range(0, size, h):
        for col in range(0, size, w):
            sources.append(f'<SimpleSource><SourceFilename relativeToVRT="0">{source}</SourceFilename>'
                           f'<SourceBand>1</SourceBand><SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>'
                           f'<DstRect xOff="{col}" yOff="{row}" xSize="{w}" ySize="{h}"/></SimpleSource>')
    path.write_text(f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}"><SRS>{crs.replace("<", "&lt;")}</SRS>'
                    f'<GeoTransform>{t.c}, {t.a}, 0, {t.f}, 0, {t.e}</GeoTransform>'
                    f'<VRTRasterBand dataType="{gdal_type}" band="1">{"".join(sources)}</VRTRasterBand>'
                    f'</VRTDataset>')
    return path


def _vm(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def child_memory(size: int, a: str, b: str, out: str) -> None:
    """Run in a fresh process: one scene job, then report peak RSS (VmHWM) as JSON on stdout."""
    from rsinfer.scene import run_scene

    baseline = _vm("VmRSS")
    summary = run_scene(normalised_difference, {"a": a, "b": b}, out, tile=256, overlap=32, progress=False)
    print(json.dumps({"size": size, "peak_rss": _vm("VmHWM"), "baseline_rss": baseline,
                      "engine_peak_bytes": summary.peak_bytes, "seconds": summary.seconds,
                      "tiles": summary.tiles_run + summary.tiles_skipped}))


def bench_memory(sizes: list[int], tmp: Path) -> list[dict]:
    rows = []
    for size in sizes:
        a = mosaic_vrt(BANDS["B3"], size, tmp / f"b3_{size}.vrt")
        b = mosaic_vrt(BANDS["B4"], size, tmp / f"b4_{size}.vrt")
        out = tmp / f"mem_{size}.tif"
        done = subprocess.run([sys.executable, __file__, "--child-memory", str(size), str(a), str(b), str(out)],
                              check=True, capture_output=True, text=True)
        out.unlink()
        rows.append(_record("memory", None, **json.loads(done.stdout.strip().splitlines()[-1])))
    return rows


def bench_throughput(repeats: int, tmp: Path) -> list[dict]:
    from rsinfer.scene import run_scene

    inputs = {"a": BANDS["B3"], "b": BANDS["B4"]}
    summaries = {}

    def job(tile: int, overlap: int):
        def run() -> None:
            summaries[tile, overlap] = run_scene(normalised_difference, inputs, tmp / f"tput_{tile}_{overlap}.tif",
                                                 tile=tile, overlap=overlap, overwrite=True, progress=False)
        return run

    settings = [(tile, overlap) for tile in (256, 512) for overlap in (0, 32, 64)]
    # the first run of each warms up; then the settings interleaved run by run
    result = compare({f"tile {tile} overlap {overlap}": job(tile, overlap) for tile, overlap in settings},
                     RunLength(count=repeats), warmup=1)
    rows = []
    for tile, overlap in settings:
        timing, summary = result[f"tile {tile} overlap {overlap}"], summaries[tile, overlap]
        tiles = summary.tiles_run + summary.tiles_skipped
        rows.append(dict(tile=tile, overlap=overlap, tiles=tiles, seconds=timing.median,
                         tiles_per_s=timing.rate(tiles), mpix_per_s=timing.rate(1860 * 2041) / 1e6,
                         spread=(timing.min, timing.max)))
    _record("throughput", result, rows=rows)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats; memory up to 8k² only")
    parser.add_argument("--only", choices=("overhead", "memory", "throughput"), action="append")
    parser.add_argument("--sizes", help="comma-separated scene edges for the memory bench, e.g. 2048,16384")
    parser.add_argument("--child-memory", nargs=4, metavar=("SIZE", "A", "B", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_memory:
        size, a, b, out = args.child_memory
        child_memory(int(size), a, b, out)
        return
    settle_allocator()
    only = set(args.only or ("overhead", "memory", "throughput"))
    repeats = 3 if args.quick else 5
    sizes = [2048, 8192] if args.quick else [2048, 8192, 16384]
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else sizes
    lines = [f"# bench/scene.py {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {_cpu()}, "
             f"{torch.get_num_threads()} torch threads"]
    with tempfile.TemporaryDirectory(prefix="rsinfer-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if "overhead" in only:
            r = bench_overhead(repeats, tmp)
            lines += ["", "overhead (Landsat 8 2041x1860, 3 bands, tile 256 / overlap 32, batch 4)",
                      "| model ms/tile | model alone s (median) | engine s (median) | engine/model: median of pairs "
                      "| pair spread | fastest/fastest | CPU time | target ≤ 1.10 (median of pairs) |",
                      "|---|---|---|---|---|---|---|---|",
                      f"| {r['model_ms_per_tile']:.1f} | {r['model_s']:.2f} | {r['engine_s']:.2f} | "
                      f"{r['ratio']:.3f} | {r['ratio_min']:.3f}–{r['ratio_max']:.3f} | {r['ratio_of_minima']:.3f} | "
                      f"{r['cpu_ratio']:.3f} | {'met' if r['ratio'] <= 1.10 else 'NOT met'} |",
                      f"model conv net: {r['model_gflops']:.1f} GFLOP/s vs measured fp32 GEMM {r['gemm_gflops']:.1f} "
                      f"GFLOP/s ({r['model_gflops'] / r['gemm_gflops']:.0%})"]
        if "memory" in only:
            rows = bench_memory(sizes, tmp)
            base = rows[0]["peak_rss"]
            lines += ["", "peak resident memory (VmHWM, fresh process per size; 2 inputs uint16 → float32 output)",
                      "| scene | tiles | seconds | peak RSS MiB | RSS after imports MiB | engine-held MiB | vs 2k² |",
                      "|---|---|---|---|---|---|---|"]
            for r in rows:
                lines.append(f"| {r['size']}² | {r['tiles']} | {r['seconds']:.1f} | {r['peak_rss'] / 2**20:.0f} | "
                             f"{r['baseline_rss'] / 2**20:.0f} | {r['engine_peak_bytes'] / 2**20:.1f} | "
                             f"{r['peak_rss'] / base:.3f} |")
            last = rows[-1]["peak_rss"] / base
            lines.append(f"target: {rows[-1]['size']}² peak ≤ 1.25x the 2k² peak: {last:.3f} → "
                         f"{'met' if last <= 1.25 else 'NOT met'}")
        if "throughput" in only:
            rows = bench_throughput(max(1, repeats - 2), tmp)
            lines += ["", "throughput (normalised difference of 2 Landsat 8 bands, 2041x1860, end to end)",
                      "| tile | overlap | tiles | seconds (median) | spread | tiles/s | Mpx/s |",
                      "|---|---|---|---|---|---|---|"]
            for r in rows:
                lines.append(f"| {r['tile']} | {r['overlap']} | {r['tiles']} | {r['seconds']:.2f} | "
                             f"{r['spread'][0]:.2f}–{r['spread'][1]:.2f} | {r['tiles_per_s']:.1f} | "
                             f"{r['mpix_per_s']:.1f} |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
