"""Mutation testing: plant known bugs one at a time and check that the tests catch every one (`make mutate`).

Each mutation is a realistic bug: a file, an exact snippet of its source, the snippet's replacement, and the tests
that must catch it. For each mutation the working tree is copied to a temporary directory (without .venv, .git,
build, out and caches; the built extension rsinfer/_C*.so comes along), the snippet is replaced there, and the
selected tests run against the copy. The working tree itself is never modified: other people run tests in it.

The copy is imported instead of the working tree: PYTHONPATH and the working directory point at it, and kernels/ is
also placed at rsinfer/kernels inside it (the editable install maps `rsinfer.kernels` to the working tree's kernels/
only when no `rsinfer/kernels` is found first). A probe prints where `rsinfer`, `rsinfer.kernels`, `rsinfer._C` and
`tests` were imported from, and stops the run if any of them is not the copy. The copy's tests find the real data
through a `shared` link beside the copy, as they do beside the checkout. RSINFER_REQUIRE_BACKENDS=ext,triton makes a
test that would skip for a missing backend fail instead.

A baseline runs every test selection on an unmodified copy first: a mutation whose tests already fail cannot be
judged. The run ends with a table and the score.

    .venv/bin/python tools/mutate.py                        # every mutation (~10 minutes on 2 cores)
    .venv/bin/python tools/mutate.py --only blend-cosine-ramp-linear --only scene-no-input-mapping
    .venv/bin/python tools/mutate.py --list

Exit status 0 when every mutation was caught; 1 when one was missed or could not be judged, or when a snippet no
longer occurs exactly once in its file (the list must stay true to the code: update the snippet with the code).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOP_LEVEL_EXCLUDED = {".venv", ".git", "build", "out", ".cache"}
EXCLUDED_ANYWHERE = {"__pycache__", ".pytest_cache", ".hypothesis"}
DEFAULT_TIMEOUT_S = 900


@dataclass(frozen=True)
class Mutation:
    """One planted bug: `original` (which must occur exactly once in `path`) becomes `replacement`; the pytest
    arguments `tests` must then fail."""

    name: str
    bug: str
    path: str
    original: str
    replacement: str
    tests: tuple[str, ...]


BLEND_TESTS = ("tests/tiling/test_blend_values.py",)
TILING_TESTS = ("tests/tiling/test_tiling.py",)
SCENE_COMPOSITION_TESTS = ("tests/pipelines/test_copgen_scene_composition.py",)
SINGLESTEP_TESTS = ("tests/samplers/test_dpm_solver_singlestep.py", "tests/pipelines/test_copgen_sampling.py")
PF_ODE_TESTS = ("tests/samplers/test_pf_ode.py", "tests/pipelines/test_copgen_sampling.py")
WRITER_TESTS = ("tests/io/test_rasters.py",)

MUTATIONS: list[Mutation] = [
    # ---------------------------------------------------------------------------------------------------- tiling
    Mutation("blend-cosine-ramp-linear", "cosine (sin²) blend ramp replaced by a linear ramp",
             "rsinfer/tiling/blend.py",
             "torch.sin(math.pi / 2 * (distance + 0.5) / overlap) ** 2",
             "(distance + 0.5) / overlap",
             BLEND_TESTS),
    Mutation("blend-gaussian-sigma", "gaussian blend σ = tile/8 changed to tile/4",
             "rsinfer/tiling/blend.py",
             "_GAUSSIAN_SIGMA = 0.125",
             "_GAUSSIAN_SIGMA = 0.25",
             BLEND_TESTS),
    Mutation("blend-crop-margin", "crop margin overlap // 2 rounded up instead of down",
             "rsinfer/tiling/blend.py",
             "margin = overlap // 2  # crop",
             "margin = (overlap + 1) // 2  # crop",
             BLEND_TESTS),
    Mutation("blend-grid-border", "a tile ending exactly on the grid's bottom border is not a border tile",
             "rsinfer/tiling/blend.py",
             "if window.bottom >= height:",
             "if window.bottom > height:",
             BLEND_TESTS),
    Mutation("merge-not-normalised", "overlap-add not divided by the accumulated weight",
             "rsinfer/tiling/merge.py",
             "values = canvas / torch.where(covered, weight, 1.0)",
             "values = canvas.clone()",
             BLEND_TESTS),
    Mutation("windows-last-off-by-one", "last window shifted one pixel too far inward",
             "rsinfer/tiling/windows.py",
             "+ [size - tile]",
             "+ [size - tile - 1]",
             TILING_TESTS),
    Mutation("windows-stride-plus-one", "window stride tile − overlap + 1",
             "rsinfer/tiling/windows.py",
             "stride = tile - overlap",
             "stride = tile - overlap + 1",
             TILING_TESTS),
    Mutation("windows-floor-for-ceil", "window count by floor division instead of ceiling",
             "rsinfer/tiling/windows.py",
             "count = -(-(size - tile) // stride) + 1",
             "count = (size - tile) // stride + 1",
             TILING_TESTS),
    # ---------------------------------------------------------------------------------------------- pipelines
    Mutation("scene-no-input-mapping", "scene translation without the 2x − 1 input mapping",
             "rsinfer/pipelines/copgen_scene.py",
             "pipe.vae.encode(2.0 * padded[None] - 1.0, generator)",
             "pipe.vae.encode(padded[None], generator)",
             SCENE_COMPOSITION_TESTS),
    Mutation("scene-no-output-mapping", "scene translation without the (x + 1)/2 output mapping",
             "rsinfer/pipelines/copgen_scene.py",
             "((pixels[0, :, :height, :width].float() + 1.0) / 2.0)",
             "(pixels[0, :, :height, :width].float())",
             SCENE_COMPOSITION_TESTS),
    Mutation("s2-normalisation-constant", "Sentinel-2 DN scale 1000 instead of 10000",
             "rsinfer/pipelines/sentinel.py",
             "S2_SCALE = 10000.0",
             "S2_SCALE = 1000.0",
             ("tests/pipelines/test_sentinel.py", "-k", "normalisation")),
    Mutation("s1-normalisation-constant", "Sentinel-1 VH clipped to the VV range [−25, 0] dB",
             "rsinfer/pipelines/sentinel.py",
             '"VH": (-32.5, 0.0)',
             '"VH": (-25.0, 0.0)',
             ("tests/pipelines/test_sentinel.py", "-k", "normalisation")),
    # ----------------------------------------------------------------------------------------------- samplers
    Mutation("alpha-ratio-swapped", "α-ratio step coefficients swapped",
             "rsinfer/samplers/alpha_ratio.py",
             "return (1 - ratio) * x0_hat + ratio * x_t",
             "return ratio * x0_hat + (1 - ratio) * x_t",
             ("tests/samplers/test_bridge_samplers.py", "-k", "alpha_ratio and oracle")),
    Mutation("dpm-solver-3s-sign", "DPM-Solver++ third-order correction with the wrong sign",
             "rsinfer/samplers/dpm_solver.py",
             "+ (1.0 / r2) * (alpha_t * phi_2) * (d_s2 - d_s)",
             "- (1.0 / r2) * (alpha_t * phi_2) * (d_s2 - d_s)",
             SINGLESTEP_TESTS),
    Mutation("dpm-solver-2s-factor", "DPM-Solver++ second-order factor 1/r1 instead of 1/(2 r1)",
             "rsinfer/samplers/dpm_solver.py",
             "- (0.5 / r1) * (alpha_t * phi_1) * (d_s1 - d_s))",
             "- (1.0 / r1) * (alpha_t * phi_1) * (d_s1 - d_s))",
             ("tests/samplers/test_dpm_solver_singlestep.py",)),
    Mutation("dpm-solver-2m-factor", "DPM-Solver++(2M) correction without its factor ½",
             "rsinfer/samplers/dpm_solver_2m.py",
             "return x_t - 0.5 * (alpha_t * phi_1) * (d_0 - d_1) / r_0",
             "return x_t - (alpha_t * phi_1) * (d_0 - d_1) / r_0",
             PF_ODE_TESTS),
    Mutation("vp-betas-linear", "Stable Diffusion betas linear instead of scaled-linear",
             "rsinfer/samplers/vp_schedule.py",
             "(torch.linspace(start ** 0.5, end ** 0.5, n, dtype=torch.float64) ** 2).float()",
             "torch.linspace(start, end, n, dtype=torch.float64).float()",
             PF_ODE_TESTS),
    # ---------------------------------------------------------------------------------------------------- ops
    Mutation("modulate-reference-scale", "(1 + scale) → scale in the modulate reference, judged by bf16/fp16 cases",
             "rsinfer/ops/reference.py",
             "return (xf * (1 + scale) + shift).to(x.dtype)",
             "return (xf * scale + shift).to(x.dtype)",
             ("tests/ops/test_parity.py", "-k", "test_modulate and (bf16 or fp16)")),
    Mutation("attention-reference-scale", "attention reference default scale 1/D instead of 1/√D",
             "rsinfer/ops/reference.py",
             "scale = q.shape[-1] ** -0.5 if scale is None else scale",
             "scale = q.shape[-1] ** -1.0 if scale is None else scale",
             ("tests/ops/test_parity.py", "-k", "test_attention")),
    Mutation("triton-attention-base-2", "Triton attention exponentiates in base 2 without the log2(e) factor",
             "kernels/attention.py",
             "scale * math.log2(math.e),",
             "scale,",
             ("tests/ops/test_triton_kernels.py", "-k", "attention")),
    # ----------------------------------------------------------------------------------------------------- io
    Mutation("writer-nodata-dropped", "GeoTIFF writer drops the nodata value",
             "rsinfer/io/writer.py",
             "transform=grid.transform, nodata=nodata, tiled=True",
             "transform=grid.transform, nodata=None, tiled=True",
             WRITER_TESTS),
    Mutation("writer-transform-dropped", "GeoTIFF writer drops the geotransform",
             "rsinfer/io/writer.py",
             "transform=grid.transform, nodata=nodata, tiled=True",
             "nodata=nodata, tiled=True",
             WRITER_TESTS),
    Mutation("writer-truncation", "integer outputs truncated instead of rounded",
             "rsinfer/io/writer.py",
             "np.clip(np.rint(np.where(missing, 0, values)), info.min, info.max)",
             "np.clip(np.trunc(np.where(missing, 0, values)), info.min, info.max)",
             ("tests/scene/test_scene_engine.py",)),
    # ------------------------------------------------------------------------------------------------- models
    Mutation("copgen-skip-order", "COP-GEN-Beta long-skip concatenation order swapped",
             "rsinfer/models/copgen.py",
             "torch.cat([x, skip], dim=-1)",
             "torch.cat([skip, x], dim=-1)",
             ("tests/models/test_copgen.py", "-k", "tiny_matches_official")),
]

# ------------------------------------------------------------------------------------------------ model families
# FAMILY MUTATIONS: the lead adds one planted bug per model family of this round when its module lands, in the form
# above, each with the tests that must catch it:
#   - CrossDiff: the two halves of the sinusoidal time embedding swapped (cos | sin → sin | cos);
#   - Atomizer: the pooling softmax temperature dropped or inverted;
#   - TIRSIT: the sign of a learned fusion weight flipped.
FAMILY_MUTATIONS: list[Mutation] = [
    Mutation("crossdiff-time-embedding-halves", "CrossDiff time embedding halves swapped (sin before cos)",
             "rsinfer/models/crossdiff.py", "return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)",
             "return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)", ("tests/models/test_crossdiff.py",)),
    Mutation("atomizer-pooling-temperature", "Atomizer pooling temperature 1 instead of 10",
             "rsinfer/models/atomizer.py", "POOLING_TEMPERATURE = 10.0", "POOLING_TEMPERATURE = 1.0",
             ("tests/models/test_atomizer.py",)),
    Mutation("tirsit-weight-sign", "TIRSIT fusion weights softmax(+k·d) instead of softmax(−k·d)",
             "rsinfer/pipelines/tirsit.py", "logits = -k * torch.stack(list(dissimilarities))",
             "logits = k * torch.stack(list(dissimilarities))", ("tests/pipelines/test_tirsit_reconstruction.py",)),
]

ALL_MUTATIONS = MUTATIONS + FAMILY_MUTATIONS


@dataclass(frozen=True)
class Outcome:
    result: str  # caught | MISSED | stale snippet | baseline fails | selection error
    seconds: float
    detail: str = ""

    @property
    def caught(self) -> bool:
        return self.result.startswith("caught")


def _ignore(directory: str, names: list[str]) -> set[str]:
    """copytree's filter: caches anywhere; the venv, git, build outputs and egg-info at the top level."""
    top = Path(directory).resolve() == REPO
    excluded = {n for n in names if n in EXCLUDED_ANYWHERE}
    return excluded | ({n for n in names if n in TOP_LEVEL_EXCLUDED or n.endswith(".egg-info")} if top else set())


def snippet_count(mutation: Mutation) -> int:
    """How often the mutation's snippet occurs in the working tree's file (read only)."""
    path = REPO / mutation.path
    return path.read_text().count(mutation.original) if path.is_file() else 0


def make_copy(root: Path, mutation: Mutation | None) -> Path:
    """A copy of the working tree at root/main (root/shared links to the data), with `mutation` applied."""
    copy = root / "main"
    shutil.copytree(REPO, copy, ignore=_ignore, symlinks=True)
    shared = REPO.parent / "shared"
    if shared.exists() and not (root / "shared").exists():
        (root / "shared").symlink_to(shared, target_is_directory=True)
    if mutation is not None:
        target = copy / mutation.path
        source = target.read_text()
        if source.count(mutation.original) != 1:
            raise RuntimeError(f"{mutation.name}: snippet changed between the check and the copy")
        target.write_text(source.replace(mutation.original, mutation.replacement))
    if (copy / "kernels").is_dir():  # after the mutation: a mutated kernel must be the one imported
        shutil.copytree(copy / "kernels", copy / "rsinfer" / "kernels")
    return copy


def child_env(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1", RSINFER_REQUIRE_BACKENDS="ext,triton",
               TRITON_INTERPRET="1")
    return env


PROBE = ("import sys, rsinfer, rsinfer.kernels, rsinfer.ops.ext, tests; "
         "print(rsinfer.__file__); print(rsinfer.kernels.__file__); print(sys.modules['rsinfer._C'].__file__); "
         "print(tests.__file__)")


def check_imports_resolve_to(copy: Path) -> None:
    """Stop unless rsinfer, rsinfer.kernels, rsinfer._C and tests are imported from `copy`."""
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=copy, env=child_env(copy), capture_output=True,
                          text=True, timeout=300)
    if done.returncode != 0:
        sys.exit(f"import probe failed in the copy:\n{done.stderr[-3000:]}")
    files = done.stdout.split()
    print("imports resolve to the copy:", *files, sep="\n  ")
    outside = [f for f in files if not Path(f).resolve().is_relative_to(copy.resolve())]
    if outside:
        sys.exit(f"imported from outside the copy {copy}: {outside}")


def run_tests(copy: Path, tests: Sequence[str], timeout: float) -> tuple[int | None, float, str]:
    """pytest `tests` in `copy`: (exit status or None on timeout, seconds, the last lines of its output)."""
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    start = time.monotonic()
    process = subprocess.Popen(command, cwd=copy, env=child_env(copy), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
        status: int | None = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the whole session: pytest and anything it started
        output, _ = process.communicate()
        status = None
    tail = " | ".join(line for line in output.strip().splitlines()[-3:])
    return status, time.monotonic() - start, tail


def judge(status: int | None) -> str:
    """pytest's exit status after a mutation → the result (1: tests failed; 2: collection error)."""
    if status is None:
        return "caught (timeout)"
    return {0: "MISSED", 1: "caught", 2: "caught (collection error)"}.get(status, "selection error")


def table(rows: list[tuple[Mutation, Outcome]]) -> str:
    lines = ["| # | planted bug | file | tests | result | s |", "|---|---|---|---|---|---|"]
    for i, (m, outcome) in enumerate(rows, start=1):
        cells = [f"{m.bug} (`{m.name}`)", f"`{m.path}`", f"`{' '.join(m.tests)}`"]
        cells = [cell.replace("|", "\\|") for cell in cells]  # a pipe would end the Markdown cell
        lines.append(f"| {i} | {' | '.join(cells)} | {outcome.result} | {outcome.seconds:.0f} |")
    caught = sum(outcome.caught for _, outcome in rows)
    lines.append("")
    lines.append(f"score: {caught}/{len(rows)} caught ({100 * caught / max(len(rows), 1):.0f} %)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this mutation (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per test run")
    args = parser.parse_args(argv)

    names = [m.name for m in ALL_MUTATIONS]
    if len(set(names)) != len(names):
        sys.exit("mutation names must be unique")
    if args.list:
        for m in ALL_MUTATIONS:
            print(f"{m.name:28} {m.path:36} {m.bug}")
        return 0
    unknown = sorted(set(args.only or ()) - set(names))
    if unknown:
        sys.exit(f"unknown mutations {unknown}; see --list")
    chosen = [m for m in ALL_MUTATIONS if not args.only or m.name in args.only]

    outcomes: dict[str, Outcome] = {}
    for m in chosen:
        count = snippet_count(m)
        if count != 1 or m.original == m.replacement:
            outcomes[m.name] = Outcome("stale snippet", 0.0, f"found {count} times in {m.path}")

    with tempfile.TemporaryDirectory(prefix="rsinfer-mutate-") as tmp:
        baseline = make_copy(Path(tmp) / "baseline", None)
        check_imports_resolve_to(baseline)
        selections = sorted({m.tests for m in chosen if m.name not in outcomes})
        passing = set()
        for tests in selections:
            status, seconds, tail = run_tests(baseline, tests, args.timeout)
            print(f"baseline {'passes' if status == 0 else 'FAILS '} ({seconds:4.0f} s): {' '.join(tests)}"
                  + ("" if status == 0 else f"\n    {tail}"), flush=True)
            if status == 0:
                passing.add(tests)

        for m in chosen:
            if m.name in outcomes:
                continue
            if m.tests not in passing:
                outcomes[m.name] = Outcome("baseline fails", 0.0)
                continue
            root = Path(tmp) / m.name
            status, seconds, tail = run_tests(make_copy(root, m), m.tests, args.timeout)
            shutil.rmtree(root)
            outcomes[m.name] = Outcome(judge(status), seconds, tail)
            print(f"{outcomes[m.name].result:26} ({seconds:4.0f} s) {m.name}", flush=True)

    rows = [(m, outcomes[m.name]) for m in chosen]
    print()
    print(table(rows))
    for m, outcome in rows:
        if not outcome.caught and outcome.detail:
            print(f"  {m.name}: {outcome.result}: {outcome.detail}")
    return 0 if all(outcome.caught for _, outcome in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
