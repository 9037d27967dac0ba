"""`PipelineSpec`: the small, picklable description from which any process rebuilds the same pipeline.

    PipelineSpec("decloud", weights="random:0", options={"sampler": "i2sb", "steps": 2, "seed": 7})
    PipelineSpec("translate", weights={"network": "nnet_ema.pth", "vae": "autoencoder_kl_ema.pth"})

`weights` says where the networks' parameters come from:
- ``"none"``: the pipeline has no network (spectral indices);
- ``"random:SEED"``: seeded, untrained networks (smoke runs and benchmarks; outputs are labelled);
- ``"demo:NAME"`` or ``"demo"`` (the pipeline's own): small networks trained here on the bundled data
  (`rsinfer.pipelines.demo_weights`; outputs are labelled);
- a path: one checkpoint file, or a directory holding the family's official file names;
- a mapping part → path, for pipelines with several networks (COP-GEN-Beta's network and VAE).

`options` are the pipeline's own options (`rsinfer.pipelines.get(name).Options` lists them); values are plain
Python (str, int, float, bool, None, lists and dicts of them), so a spec pickles and round-trips through JSON
(`to_json` / `from_json`) for worker processes and other machines.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_RANDOM = re.compile(r"^random:(-?\d+)$")
_PLAIN = (str, int, float, bool, type(None))


def _check_plain(value: Any, where: str) -> Any:
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (list, tuple)):
        return tuple(_check_plain(v, where) for v in value)
    if isinstance(value, Mapping):
        return {str(k): _check_plain(v, where) for k, v in value.items()}
    raise TypeError(f"{where}: {value!r} ({type(value).__name__}) is not a plain value (str, int, float, bool, None, "
                    "lists or dicts of them), so the spec could not be sent to another process")


@dataclass(frozen=True)
class Weights:
    """Parsed `PipelineSpec.weights`: none, random (with a seed) or files (part name → path; "" for a single file)."""

    seed: int | None = None
    files: tuple[tuple[str, str], ...] = ()
    demo: str | None = None  # the demo name (`files` then holds its file)

    @property
    def random(self) -> bool:
        return self.seed is not None

    @property
    def none(self) -> bool:
        return self.seed is None and not self.files and self.demo is None

    def file(self, part: str = "") -> Path:
        """The path of one part ("" = the single file or directory)."""
        found = dict(self.files)
        if part not in found:
            known = ", ".join(repr(p) for p in found) or "none"
            raise ValueError(f"no weights given for {part or 'the network'!r} (weights given: {known})")
        return Path(found[part])


@dataclass(frozen=True)
class PipelineSpec:
    """Registry name, weights and options of a pipeline; `rsinfer.pipelines.build(spec)` makes the pipeline."""

    name: str
    weights: str | Mapping[str, str] = "none"
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a pipeline spec needs a registry name, got {self.name!r}")
        weights = self.weights
        if isinstance(weights, os.PathLike):
            weights = os.fspath(weights)
        elif isinstance(weights, Mapping):
            weights = {str(k): os.fspath(v) for k, v in weights.items()}
        elif not isinstance(weights, str):
            raise TypeError(f"weights must be 'random:SEED', a path or a mapping part → path, got {weights!r}")
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "options", _check_plain(dict(self.options), f"options of {self.name!r}"))

    def parsed_weights(self) -> Weights:
        if isinstance(self.weights, str):
            if self.weights == "none":
                return Weights()
            if self.weights.startswith("demo:"):
                from rsinfer.pipelines.demo_weights import demo_path

                name = self.weights.partition(":")[2]
                return Weights(files=(("", str(demo_path(name))),), demo=name)
            match = _RANDOM.match(self.weights)
            if match:
                return Weights(seed=int(match.group(1)))
            if self.weights.startswith("random"):
                raise ValueError(f"weights {self.weights!r}: random weights are written 'random:SEED', e.g. random:0")
            return Weights(files=(("", self.weights),))
        return Weights(files=tuple(sorted(self.weights.items())))

    def with_options(self, **options: Any) -> PipelineSpec:
        return PipelineSpec(self.name, self.weights, {**self.options, **options})

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "weights": self.weights, "options": self.options}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PipelineSpec:
        data = json.loads(text)
        return cls(data["name"], data["weights"], data.get("options", {}))
