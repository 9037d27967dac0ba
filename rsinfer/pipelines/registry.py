"""The pipeline registry: name → pipeline class, imported on first use (listing names and inputs loads no model code).

    rsinfer.pipelines.names()                      # every registered pipeline
    rsinfer.pipelines.get("decloud")               # its class: .Options, .inputs(), .default_tiling, ...
    rsinfer.pipelines.build(PipelineSpec("decloud", "random:0", {"steps": 3}))   # a ready pipeline
    rsinfer.pipelines.entry("decloud")             # what the command line needs to know without importing it

Each entry's `inputs` and `tiling` repeat the class's contract so that `rsinfer <command> --help` can state them without
loading torch; tests/pipelines/test_registry.py checks that they agree.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the registry itself loads nothing: listing names stays cheap
    from rsinfer.pipelines.contract import ScenePipeline
    from rsinfer.pipelines.spec import PipelineSpec


@dataclass(frozen=True)
class PipelineEntry:
    """Where a pipeline lives and what its command line states: the subcommand that runs it, a summary, its input
    names, its default tiling (tile, overlap, blend, batch size)."""

    target: str  # "module:Class"
    command: str
    summary: str
    inputs: tuple[str, ...]
    tiling: tuple[int | None, int, str, int]


_PIPELINES: dict[str, PipelineEntry] = {
    "ndwi": PipelineEntry("rsinfer.pipelines.indices:Ndwi", "scene", "normalised difference water index of Sentinel-2",
                          ("s2",), (256, 32, "cosine", 4)),
    "ndvi": PipelineEntry("rsinfer.pipelines.indices:Ndvi", "scene",
                          "normalised difference vegetation index of Sentinel-2", ("s2",), (256, 32, "cosine", 4)),
    "decloud": PipelineEntry("rsinfer.pipelines.decloud:Decloud", "decloud",
                             "cloud removal of Sentinel-2 fused with Sentinel-1 (DB-CR)", ("s2", "s1"),
                             (256, 32, "cosine", 4)),
    "translate": PipelineEntry("rsinfer.pipelines.translate:Translate", "translate",
                               "any-to-any Sentinel/DEM translation (COP-GEN-Beta)",
                               ("dem", "s1_rtc", "s2_l1c", "s2_l2a"), (256, 96, "cosine", 16)),
    "pansharpen": PipelineEntry("rsinfer.pipelines.pansharpen:Pansharpen", "pansharpen",
                                "pansharpening of PAN + multispectral (CrossDiff)", ("pan", "ms"),
                                (256, 32, "cosine", 4)),
    "classify": PipelineEntry("rsinfer.pipelines.atomizer_scene:Classify", "classify",
                              "multi-label class probability maps of any optical scene (Atomizer)", ("s2",),
                              (120, 56, "cosine", 4)),
    "embed": PipelineEntry("rsinfer.pipelines.atomizer_scene:Embed", "embed",
                           "pooled latent embedding per window of any optical scene (Atomizer)", ("s2",),
                           (120, 0, "constant", 4)),
    "fill-gap": PipelineEntry("rsinfer.pipelines.fill_gap:FillGap", "fill-gap",
                              "a missing acquisition from neighbouring dates (TIRSIT)",
                              ("source", *(f"{role}_{n}" for n in range(1, 5) for role in ("source", "target"))),
                              (512, 192, "crop", 2)),
}


def names(command: str | None = None) -> tuple[str, ...]:
    """Every registered pipeline name in registry order (only those `command` runs, when given)."""
    return tuple(name for name, e in _PIPELINES.items() if command is None or e.command == command)


def entry(name: str) -> PipelineEntry:
    """The registry entry of `name` (no import)."""
    if name not in _PIPELINES:
        raise ValueError(f"unknown pipeline {name!r}; choose one of {names()}")
    return _PIPELINES[name]


def get(name: str) -> type[ScenePipeline]:
    """The pipeline class registered as `name`."""
    module, _, attribute = entry(name).target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def build(spec: PipelineSpec) -> ScenePipeline:
    """The pipeline `spec` describes (its networks loaded, engines ready): the same object in every process."""
    return get(spec.name).from_spec(spec)
