"""Provenance, written in one place: the RSINFER_* tags on every GeoTIFF a pipeline writes, the banner on previews
of untrained networks, and the warning that goes with them.

Tags:
- ``RSINFER_VERSION``, ``RSINFER_PIPELINE`` (registry name), ``RSINFER_MODEL``;
- ``RSINFER_SPEC``: the `PipelineSpec` (name, weights, options) as JSON, from which the pipeline is rebuilt
  (`PipelineSpec.from_json`); `rsinfer batch --resume` compares it;
- ``RSINFER_WEIGHTS``: ``sha256:<hex>`` of the weights file (several files: ``part=sha256:<hex>`` joined by spaces in
  part order; a directory: each file in it), ``random:seed=<n>`` for seeded untrained networks, ``none`` for
  pipelines without a network, ``demo:<name>`` for the demo weights trained here;
- ``RSINFER_SAMPLER``, ``RSINFER_STEPS``, ``RSINFER_SEED``, ``RSINFER_ENGINE``, ``RSINFER_PRECISION``: from the
  pipeline (`ScenePipeline.run_tags`), where they apply;
- ``RSINFER_TILING``: JSON of the `Tiling` used;
- ``RSINFER_INPUTS``: JSON list of {name, file, bytes, sha256} per input (sha256 null for remote inputs);
- ``RSINFER_COMMAND`` (the argv, when run from the command line) and ``RSINFER_CREATED`` (UTC, ISO 8601).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import json
import logging
import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path

from rsinfer.pipelines.spec import Weights
from rsinfer.tiling import Tiling

RANDOM_WEIGHTS_BANNER = "RANDOM WEIGHTS - NOT A TRAINED MODEL"
DEMO_WEIGHTS_BANNER = "DEMO WEIGHTS - TRAINED ON ONE SCENE"
_log = logging.getLogger("rsinfer.pipelines")
_CHUNK = 1 << 22


@functools.lru_cache(maxsize=256)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file (remembered per path, size and modification time within a process)."""
    stat = os.stat(path)
    return _file_sha256(os.fspath(path), stat.st_size, stat.st_mtime_ns)


def _is_remote(path: str) -> bool:
    return path.startswith(("/vsi", "http://", "https://", "s3://", "gs://"))


def weights_tag(weights: Weights) -> str:
    if weights.none:
        return "none"
    if weights.demo is not None:
        return f"demo:{weights.demo}"
    if weights.random:
        return f"random:seed={weights.seed}"
    parts = []
    for part, path in weights.files:
        path = Path(path)
        files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        for file in files:
            name = part or (file.name if path.is_dir() else "")
            digest = f"sha256:{file_sha256(file)}"
            parts.append(f"{name}={digest}" if name else digest)
    return " ".join(parts)


def inputs_tag(inputs: Mapping[str, str | os.PathLike]) -> str:
    records = []
    for name, path in inputs.items():
        path = os.fspath(path)
        if _is_remote(path):
            records.append({"name": name, "file": path, "bytes": None, "sha256": None})
        else:
            records.append({"name": name, "file": Path(path).name, "bytes": os.path.getsize(path),
                            "sha256": file_sha256(path)})
    return json.dumps(records)


def provenance_tags(*, pipeline: str, model: str, weights: Weights, run_tags: Mapping[str, str], tiling: Tiling,
                    inputs: Mapping[str, str | os.PathLike], command: Sequence[str] | None = None,
                    spec: str | None = None) -> dict[str, str]:
    """Every RSINFER_* tag of one output (see the module docstring)."""
    from rsinfer import __version__

    tags = {"RSINFER_VERSION": __version__, "RSINFER_PIPELINE": pipeline, "RSINFER_MODEL": model,
            "RSINFER_WEIGHTS": weights_tag(weights), **run_tags,
            "RSINFER_TILING": json.dumps(dataclasses.asdict(tiling)), "RSINFER_INPUTS": inputs_tag(inputs),
            "RSINFER_CREATED": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    if spec is not None:
        tags["RSINFER_SPEC"] = spec
    if command is not None:
        tags["RSINFER_COMMAND"] = shlex.join(command)
    return tags


def weights_banner(weights: Weights) -> str | None:
    """The text burnt into previews, by kind of weights: random and demo weights are labelled; a user's trained
    weights, and pipelines without networks, are not."""
    if weights.random:
        return RANDOM_WEIGHTS_BANNER
    if weights.demo is not None:
        return DEMO_WEIGHTS_BANNER
    return None


def warn_untrained(pipeline: str, weights: Weights) -> None:
    """One warning (to stderr through logging) when a pipeline runs seeded random weights."""
    if weights.random:
        _log.warning("%s runs seeded random weights (seed %d): the output is not a trained model's result; its tags "
                     "and preview say so", pipeline, weights.seed)
