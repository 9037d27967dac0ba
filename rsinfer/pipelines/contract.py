"""The pipeline contract: what every scene pipeline states and provides, so the CLI, the Python API, the batch runner
and the benchmark harness all build and run any of them the same way.

A pipeline (a `ScenePipeline` subclass, registered by name in `rsinfer.pipelines.registry`) states:
- `inputs()`: its named inputs (`InputContract`: which bands, at what scale relative to the output grid, resampled
  how);
- `plan(rasters, tiling)`: given what the input files hold (`RasterInfo`) and the tiling asked for, the band indexes
  to read (band identity, one rule for all: `rsinfer.pipelines.bands`), the output (`OutputContract`: bands, names,
  dtype, nodata) and the tile function the scene engine runs (`ScenePlan`);
- `run_tags()`: what it ran with (sampler, steps, seed, engine, precision, where they apply), for the provenance tags
  that `rsinfer.pipelines.provenance` writes — in one place — on every output;
- `Options`: a frozen dataclass of its options; with `PipelineSpec(name, weights, options)` it is rebuilt anywhere by
  `from_spec(spec)`.

`rsinfer.pipelines.run(pipeline, inputs, output, tiling=..., output_options=...)` runs a plan through the scene engine.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from rsinfer.engines.names import EngineKind, MemoryFormat, Precision, ThreadWait
from rsinfer.io import InputSpec, OutputDtype, RasterInfo, Resampling
from rsinfer.ops.names import Backend
from rsinfer.pipelines.bands import BandRule
from rsinfer.pipelines.spec import PipelineSpec
from rsinfer.scene import TileFunction, Tiles
from rsinfer.tiling import Tiling, plan_windows


@dataclass(frozen=True)
class InputContract:
    """One named input: what it is, which bands are read (`bands`), and where it lies relative to the grid input's
    grid (`scale`: its pixels per grid-input pixel, whatever the output's own scale; `resampling` when it is not on
    that grid)."""

    name: str
    description: str
    bands: BandRule
    scale: float = 1.0
    resampling: Resampling = "bilinear"
    required: bool = True

    @property
    def spec(self) -> InputSpec:
        return InputSpec(self.scale, self.resampling)


@dataclass(frozen=True)
class OutputContract:
    """The output raster: band names (descriptions), data type, nodata (None: the grid input's, else NaN for floats),
    and its pixel scale: 1/f for a grid f times coarser than the grid input's (`rsinfer.scene.run_scene`'s
    `output_scale`; the inputs' scales stay relative to the grid input's grid)."""

    bands: tuple[str, ...]
    dtype: OutputDtype
    nodata: float | None = None
    scale: float = 1.0


@dataclass(frozen=True)
class ScenePlan:
    """What the scene engine runs for one scene: the tile function (`Tiles` → (B, C_out, h, w) on the output grid),
    the input whose grid the output takes, the bands read per input (1-based), the output, a tiling the job
    requires (None: the caller's or the pipeline's default), tags this scene adds (e.g. the detected S1 scale), and
    how many stochastic draws the tile function returns side by side (`samples`)."""

    tile_fn: typing.Callable[[Tiles], torch.Tensor]
    grid: str
    bands: dict[str, tuple[int, ...]]
    output: OutputContract
    tiling: Tiling | None = None
    tags: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # > 1: tile_fn returns that many draws, (B, samples·C_out, h, w) draw-major; the runner writes their mean as the
    # output and their standard deviation as the uncertainty map (`rsinfer.pipelines.uncertainty`)
    samples: int = 1


@dataclass(frozen=True)
class EngineOptions:
    """How a pipeline's networks run (`rsinfer.engines.create_engine`): the engine, precision, activation layout of the
    PyTorch engines (None: the engine's own) and ops backend, ONNX Runtime's intra-op threads and how they idle, and
    where exported graphs are cached (None: not cached). Pipelines with networks derive their `Options` from it."""

    engine: EngineKind = "torch"
    precision: Precision = "float32"
    memory_format: MemoryFormat | None = None
    backend: Backend = "auto"
    threads: int | None = None
    thread_wait: ThreadWait = "spin"
    cache_dir: str | None = None

    def engine_kwargs(self) -> dict[str, Any]:
        """Every keyword of `create_engine` but the engine kind."""
        return {"precision": self.precision, "memory_format": self.memory_format, "backend": self.backend,
                "cache_dir": self.cache_dir, "threads": self.threads, "thread_wait": self.thread_wait}


def scene_tile_count(shape: tuple[int, int], tiling: Tiling) -> int:
    """How many tiles `tiling` cuts a grid of `shape` (height, width) into."""
    if tiling.tile is None:
        return 1
    return len(plan_windows(shape[0], shape[1], tiling.tile, tiling.overlap))


def options_from(options_cls: type, values: Mapping[str, Any], pipeline: str) -> Any:
    """`options_cls(**values)`, with unknown names and Literal values reported against the allowed ones."""
    fields = {f.name: f for f in dataclasses.fields(options_cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for pipeline {pipeline!r}; allowed: {sorted(fields)}")
    hints = typing.get_type_hints(options_cls)
    for name, value in values.items():
        choices = literal_choices(hints[name])
        if choices and value not in choices:
            raise ValueError(f"option {name!r} of pipeline {pipeline!r} is {value!r}; choose one of {choices}")
    return options_cls(**values)


def literal_choices(hint: Any) -> tuple:
    """The values of a Literal type (also inside `X | None`); () for other types."""
    if typing.get_origin(hint) is typing.Literal:
        return typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            if typing.get_origin(arg) is typing.Literal:
                return typing.get_args(arg)
    return ()


class ScenePipeline(ABC):
    """The contract every pipeline follows (see the module docstring)."""

    name: ClassVar[str]  # registry name, written as RSINFER_PIPELINE
    model: ClassVar[str]  # what computes it, written as RSINFER_MODEL
    Options: ClassVar[type]  # frozen dataclass of the pipeline's options
    default_tiling: ClassVar[Tiling] = Tiling()
    has_networks: ClassVar[bool] = True  # False: no weights at all (spec weights "none")
    demo_weights: ClassVar[str | None] = None  # what spec weights "demo" means (`rsinfer.pipelines.demo_weights`)

    def __init__(self, spec: PipelineSpec) -> None:
        if spec.name != self.name:
            raise ValueError(f"spec names pipeline {spec.name!r}, not {self.name!r}")
        if spec.weights == "demo":
            if self.demo_weights is None:
                raise ValueError(f"pipeline {self.name!r} has no demo weights; give trained weights or random ones")
            spec = PipelineSpec(spec.name, f"demo:{self.demo_weights}", spec.options)
        self.spec = spec
        self.options = options_from(self.Options, spec.options, self.name)
        self.weights = spec.parsed_weights()
        if self.has_networks and self.weights.none:
            raise ValueError(f"pipeline {self.name!r} runs networks: give weights (a checkpoint path, or 'random:SEED' "
                             "for seeded untrained networks)")
        if not self.has_networks and not self.weights.none:
            raise ValueError(f"pipeline {self.name!r} has no network, so it takes no weights (got {spec.weights!r})")

    @classmethod
    def from_spec(cls, spec: PipelineSpec) -> ScenePipeline:
        """The pipeline `spec` describes, networks built or loaded and engines ready."""
        return cls(spec)

    @abstractmethod
    def inputs(self) -> tuple[InputContract, ...]:
        """The named inputs, in order (the first required one defines the output grid unless the plan says else)."""

    @abstractmethod
    def plan(self, rasters: Mapping[str, RasterInfo], tiling: Tiling) -> ScenePlan:
        """Band identity checked, output decided, tile function ready, for inputs described by `rasters` (in the
        caller's order) and tiles as `tiling` says."""

    def run_tags(self) -> dict[str, str]:
        """RSINFER_* tags of how it ran (SAMPLER, STEPS, SEED, ENGINE, PRECISION where they apply)."""
        return {}

    def preview(self, output: str, plan: ScenePlan) -> torch.Tensor | None:
        """A (3, h, w) uint8 rendering of a written output for a PNG preview, or None when it has none."""
        return None


class PlannedTiles(TileFunction):
    """A plan's tile function with the attributes the scene engine reads (input specs, band names, band count)."""

    def __init__(self, plan: ScenePlan, inputs: tuple[InputContract, ...]) -> None:
        self._fn = plan.tile_fn
        self.input_specs = {c.name: c.spec for c in inputs if c.name in plan.bands}
        self.band_descriptions = plan.output.bands
        self.out_channels = len(plan.output.bands)

    def __call__(self, tiles: Tiles) -> torch.Tensor:
        return self._fn(tiles)
