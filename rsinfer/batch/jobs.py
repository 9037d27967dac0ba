"""The job model of a batch: one job = one scene through one pipeline, what every job of a batch shares, and a job's
outcome (one line of the report).

A `Job` names its inputs (pipeline input name → absolute path, or a GDAL ``/vsi…`` path for remote files) and its
output (an absolute GeoTIFF path). `JobSettings` are the batch's pipeline spec, tiling and output options; their
`identity` (a digest) goes into the report with every outcome, so that a later run knows whether an output was made
with the settings it would use. An `Outcome` is what the report records for a job: status ``ok`` (written now),
``skipped`` (a verified output was already there, `--resume`) or ``failed`` (the error), the number of attempts (task
submissions: more than one only when a worker or its node died), seconds of the last attempt, the output's SHA-256 and
the host and Ray node that ran it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    from rsinfer.io import OutputOptions
    from rsinfer.tiling import Tiling

Status = Literal["ok", "failed", "skipped"]
STATUSES: tuple[str, ...] = get_args(Status)

# What to do with outputs that already exist: refuse to start, skip the verified ones and redo the rest, or redo all.
ExistingOutputs = Literal["refuse", "resume", "overwrite"]
EXISTING_OUTPUTS: tuple[str, ...] = get_args(ExistingOutputs)


@dataclass(frozen=True)
class Job:
    """One scene: its id (unique in the batch), inputs (name → absolute path or /vsi path) and output path."""

    id: str
    inputs: Mapping[str, str]
    output: str


@dataclass(frozen=True)
class JobSettings:
    """What every job of a batch shares: the pipeline spec (JSON), the tiling asked for, how outputs are written,
    whether verified outputs are skipped, and the command line recorded in RSINFER_COMMAND."""

    spec: str
    tiling: Tiling
    output_options: OutputOptions
    resume: bool = False
    command: tuple[str, ...] | None = None

    def identity(self) -> str:
        """A digest of what decides an output's content: spec, tiling, output options (not `overwrite`)."""
        output = {k: v for k, v in dataclasses.asdict(self.output_options).items() if k != "overwrite"}
        text = json.dumps({"spec": json.loads(self.spec), "tiling": dataclasses.asdict(self.tiling),
                           "output": output}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Outcome:
    """One line of the report (`rsinfer.batch.ledger`)."""

    id: str
    status: Status
    output: str
    error: str | None = None
    attempts: int = 1
    seconds: float = 0.0
    sha256: str | None = None
    host: str | None = None
    node: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown job status {self.status!r}; one of {STATUSES}")

    def record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
