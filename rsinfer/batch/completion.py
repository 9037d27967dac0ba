"""Done means verified: when an existing output counts as this job's result, and the leftovers of killed runs.

An output is this job's result only if
- it exists, and the report recorded writing (or verifying) it: its bytes are the bytes recorded then (SHA-256: a
  truncated, half-copied or altered file fails here, even when its header still opens), with the batch settings this
  run uses (`JobSettings.identity`: spec, tiling asked for, output options);
- it opens as a raster, and its provenance tags (`rsinfer.pipelines.provenance`) say it was made from this job:
  ``RSINFER_PIPELINE`` and ``RSINFER_SPEC`` (name, weights, options) are this spec's, ``RSINFER_WEIGHTS`` is the
  weights' tag now (the SHA-256 of the weights files: a checkpoint replaced at the same path makes the output stale),
  and ``RSINFER_INPUTS`` lists the job's inputs with their current sizes and SHA-256 (remote inputs by URL).

Anything else — missing, unrecorded, unreadable, truncated, made by another spec or from other input bytes — is
redone. Outputs
are written to a hidden temporary file beside the target and renamed when complete (`rsinfer.files`), so a killed run
leaves temporaries, never a half-written output at the target: `remove_stale_temporaries` deletes them.
"""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass
from pathlib import Path

from rsinfer.batch.jobs import Job, JobSettings
from rsinfer.pipelines.spec import PipelineSpec

# rsinfer.files names temporaries ".<target name>.<random><suffix>"; rsinfer.io.writer uses these two suffixes.
TEMPORARY_SUFFIXES = (".tmp.tif", ".cog.tif")


@dataclass(frozen=True)
class Recorded:
    """What the report last recorded of an output: its SHA-256, and the identity of the settings it was made with."""

    sha256: str
    settings: str


def expected_tags(job: Job, spec: PipelineSpec) -> dict[str, str]:
    """The provenance tags that say an output was made from `job` with `spec` (the tiling is the runner's to fit to
    the scene, and is checked through the settings' identity instead)."""
    from rsinfer.pipelines.provenance import inputs_tag, weights_tag

    return {"RSINFER_PIPELINE": spec.name, "RSINFER_SPEC": spec.to_json(),
            "RSINFER_WEIGHTS": weights_tag(spec.parsed_weights()), "RSINFER_INPUTS": inputs_tag(job.inputs)}


def _same(key: str, found: str, expected: str) -> bool:
    if key in ("RSINFER_SPEC", "RSINFER_INPUTS"):
        try:
            found_value, expected_value = json.loads(found), json.loads(expected)
        except json.JSONDecodeError:
            return False
        if key == "RSINFER_INPUTS":  # the same inputs in any order
            return sorted(found_value, key=json.dumps) == sorted(expected_value, key=json.dumps)
        return found_value == expected_value
    return found == expected


def not_done_reason(job: Job, settings: JobSettings, recorded: Recorded | None) -> str | None:
    """None when `job.output` is verified as this job's result under `settings`; else why it must be (re)done.

    recorded: what the report last recorded of the output (`rsinfer.batch.ledger.recorded_outputs`).
    """
    from rsinfer.io import raster_tags
    from rsinfer.pipelines.provenance import file_sha256

    output = Path(job.output)
    if not output.exists():
        return "no output yet"
    if recorded is None:
        return "the report has no record of writing this output"
    if recorded.settings != settings.identity():
        return "the report recorded this output with other settings (spec, tiling or output options)"
    if file_sha256(output) != recorded.sha256:
        return "the output's bytes are not the bytes the report recorded"
    try:
        tags = raster_tags(output)
    except (OSError, ValueError) as err:  # RasterInputError is a ValueError
        return f"the output does not open ({err})"
    for key, expected in expected_tags(job, PipelineSpec.from_json(settings.spec)).items():
        if key not in tags:
            return f"the output has no {key} tag"
        if not _same(key, tags[key], expected):
            return f"the output's {key} differs from this job's"
    return None


def stale_temporaries(output: str | Path) -> list[Path]:
    """Temporary files a killed writer of `output` left beside it."""
    output = Path(output)
    if not output.parent.is_dir():
        return []
    name = glob.escape(output.name)
    return sorted(p for suffix in TEMPORARY_SUFFIXES for p in output.parent.glob(f".{name}.*{suffix}"))


def remove_stale_temporaries(output: str | Path) -> int:
    """Delete the temporaries `stale_temporaries` finds; the number removed."""
    removed = 0
    for path in stale_temporaries(output):
        path.unlink(missing_ok=True)
        removed += 1
    return removed
