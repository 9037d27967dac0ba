"""Running one registered pipeline from parsed arguments: spec → pipeline → `rsinfer.pipelines.run` → one summary line.

Every pipeline subcommand ends here, so they all build, tile, write and report the same way.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Mapping
from typing import Any

from rsinfer.cli.options import inputs_of, tiling_of


def run_pipeline(args: argparse.Namespace, pipeline: str, weights: str | Mapping[str, str],
                 options: Mapping[str, Any], inputs: Mapping[str, str] | None = None) -> int:
    """Build `pipeline` from (weights, options) and run it over the parsed inputs into --out."""
    from rsinfer import pipelines

    inputs = dict(inputs if inputs is not None else inputs_of(args, pipeline))
    start = time.perf_counter()
    pipe = pipelines.build(pipelines.PipelineSpec(pipeline, weights, {k: v for k, v in options.items()
                                                                      if v is not None}))
    tiling = dataclasses.replace(pipe.default_tiling, **tiling_of(args).changes())
    output_options = pipelines.OutputOptions(dtype=getattr(args, "dtype", None), cog=args.cog, overwrite=args.overwrite)
    summary = pipelines.run(pipe, inputs, args.out, tiling=tiling, output_options=output_options,
                            preview=getattr(args, "preview", None), progress=not args.quiet,
                            command=args.command_line)
    if not args.quiet:
        bands, height, width = summary.shape
        label = "  [RANDOM WEIGHTS]" if pipe.weights.random else ""
        print(f"wrote {summary.path} ({pipeline}: {bands} band{'s' * (bands > 1)}, {height}x{width}, "
              f"{summary.tiles_run} tiles run, {summary.tiles_skipped} skipped, "
              f"{time.perf_counter() - start:.1f} s){label}")
        if getattr(args, "preview", None):
            print(f"wrote {args.preview}")
    return 0
