"""Running one registered pipeline from parsed arguments: spec → pipeline → `rsinfer.pipelines.run` → one summary line.

Every pipeline subcommand ends here, so they all build, tile, write and report the same way. Everything that can be
checked without the networks is checked before they are built or loaded (which can take minutes for large
checkpoints): the tiling flags, and every output path (`rsinfer.pipelines.runner.check_outputs`).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rsinfer.cli.options import inputs_of, tiling_of

if TYPE_CHECKING:
    from rsinfer.pipelines import Tiling


def run_pipeline(args: argparse.Namespace, pipeline: str, weights: str | Mapping[str, str],
                 options: Mapping[str, Any], inputs: Mapping[str, str] | None = None) -> int:
    """Build `pipeline` from (weights, options) and run it over the parsed inputs into --out (and the standard
    deviation of its draws into --uncertainty-out, for subcommands that have it)."""
    from rsinfer import pipelines
    from rsinfer.pipelines.runner import check_outputs

    inputs = dict(inputs if inputs is not None else inputs_of(args, pipeline))
    start = time.perf_counter()
    changes = tiling_of(args).changes()
    _tiling_with(pipelines.Tiling(*pipelines.entry(pipeline).tiling), changes)
    uncertainty = getattr(args, "uncertainty_out", None)
    check_outputs(args.out, getattr(args, "preview", None), inputs, args.overwrite, uncertainty)
    pipe = pipelines.build(pipelines.PipelineSpec(pipeline, weights, {k: v for k, v in options.items()
                                                                      if v is not None}))
    tiling = _tiling_with(pipe.default_tiling, changes)
    output_options = pipelines.OutputOptions(dtype=getattr(args, "dtype", None), cog=args.cog, overwrite=args.overwrite)
    summary = pipelines.run(pipe, inputs, args.out, tiling=tiling, output_options=output_options,
                            preview=getattr(args, "preview", None), progress=not args.quiet,
                            command=args.command_line, uncertainty=uncertainty)
    if not args.quiet:
        bands, height, width = summary.shape
        label = "  [RANDOM WEIGHTS]" if pipe.weights.random else ""
        print(f"wrote {summary.path} ({pipeline}: {bands} band{'s' * (bands > 1)}, {height}x{width}, "
              f"{summary.tiles_run} tiles run, {summary.tiles_skipped} skipped, "
              f"{time.perf_counter() - start:.1f} s){label}")
        if uncertainty is not None:
            print(f"wrote {uncertainty} (per-band standard deviation of {options['samples']} draws)")
        if getattr(args, "preview", None):
            print(f"wrote {args.preview}")
    return 0


def _tiling_with(default: Tiling, changes: Mapping[str, object]) -> Tiling:
    """The pipeline's default tiling with the flags given; a combination it refuses is named by its flags."""
    try:
        return dataclasses.replace(default, **changes)
    except ValueError as err:
        given = " ".join(f"--{name.replace('_', '-')} {value}" for name, value in changes.items())
        raise ValueError(f"{given or 'the default tiling'}: {err}") from None
