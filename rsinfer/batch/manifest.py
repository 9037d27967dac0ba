"""Reading and validating a batch manifest: every job checked, and every problem reported at once, before any work.

Three forms, told apart by the file name:
- ``*.csv``: a header row, then one row per job. Columns: the pipeline's input names (e.g. ``s2,s1``), plus an optional
  ``id`` and ``out``;
- ``*.jsonl``: one JSON object per line with the same keys;
- ``*.json`` / ``*.geojson``: a STAC ItemCollection (read with pystac, the ``stac`` extra). Each item is a job: its
  id is the item id and its inputs are assets, `assets` mapping input name → asset key (by default the key is the input
  name).

Values:
- input paths: relative paths are relative to the manifest's folder. ``http://`` and ``https://`` URLs are read through
  GDAL's ``/vsicurl/`` by windows (HTTP range requests, never the whole file). GDAL ``/vsi…`` paths pass through
  unchanged;
- ``id``: default, the file stem of the job's first input;
- ``out``: default ``<id>.tif``; relative paths are under the output directory.

Problems found (all reported together in one `ManifestError`): unknown or missing columns, rows without a required
input (or without any input, for pipelines whose inputs are all optional), duplicate ids, duplicate outputs, outputs
that are not GeoTIFF names or that are inputs, inputs that do not exist, are not files or cannot be read, invalid JSON
lines, STAC items without the asset an input needs. Whether the inputs are valid rasters is each job's own business: a
corrupt scene fails its job only.
"""

from __future__ import annotations

import csv
import json
import os
import urllib.parse
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rsinfer.batch.jobs import EXISTING_OUTPUTS, ExistingOutputs, Job

if TYPE_CHECKING:
    from rsinfer.pipelines.contract import InputContract
    from rsinfer.pipelines.spec import PipelineSpec

RESERVED_COLUMNS = ("id", "out")
OUTPUT_SUFFIXES = (".tif", ".tiff")
_URL_SCHEMES = ("http://", "https://")


class ManifestError(ValueError):
    """A manifest that cannot run; the message lists every problem found, one per line."""

    def __init__(self, manifest: str | os.PathLike, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        super().__init__(f"manifest {manifest}: {count} problem{'s' * (count != 1)}:\n  " + "\n  ".join(self.problems))


def pipeline_inputs(spec: PipelineSpec) -> tuple[InputContract, ...]:
    """The named inputs of the pipeline `spec` describes, its options and weights checked, its networks not built.

    A pipeline's inputs follow from its options alone (translate's from its target), so the contract's own
    constructor — options and weights parsed, nothing loaded — is all `inputs()` needs; the driver never holds a
    copy of the networks its workers load.
    """
    from rsinfer import pipelines
    from rsinfer.pipelines.contract import ScenePipeline

    cls = pipelines.get(spec.name)
    shell = cls.__new__(cls)
    ScenePipeline.__init__(shell, spec)
    return shell.inputs()


def gdal_path(value: str, base: Path) -> str:
    """A manifest value as the path GDAL opens: URLs through /vsicurl/, /vsi paths as given, files made absolute."""
    if value.startswith(_URL_SCHEMES):
        return "/vsicurl/" + value
    if value.startswith("/vsi"):
        return value
    path = Path(value).expanduser()
    return os.fspath(path if path.is_absolute() else (base / path).resolve())


def _file_problem(path: str) -> str | None:
    if path.startswith("/vsi"):
        return None  # remote: its job finds out
    if not os.path.exists(path):
        return f"{path}: no such file"
    if not os.path.isfile(path):
        return f"{path}: not a file"
    if not os.access(path, os.R_OK):
        return f"{path}: unreadable (permission denied)"
    return None


def _stem(path: str) -> str:
    name = urllib.parse.urlsplit(path.removeprefix("/vsicurl/")).path if path.startswith("/vsicurl/") else path
    return Path(name).stem


def _rows(path: Path, problems: list[str]) -> Iterator[tuple[str, dict[str, str]]]:
    """(where, {column: value}) of every row of a CSV or JSONL manifest; unknown formats and bad lines → problems."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            for row in reader:
                extra = row.pop(None, None)
                where = f"line {reader.line_num}"
                if extra:
                    problems.append(f"{where}: {len(extra)} more value(s) than columns")
                yield where, {k: (v or "").strip() for k, v in row.items()}
        return
    if suffix == ".jsonl":
        with open(path) as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                where = f"line {number}"
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    problems.append(f"{where}: not JSON ({err.msg})")
                    continue
                if not isinstance(row, dict) or not all(isinstance(v, str) for v in row.values()):
                    problems.append(f"{where}: expected an object of strings, got {line.strip()[:80]}")
                    continue
                yield where, {str(k): v.strip() for k, v in row.items()}
        return
    raise ValueError(f"manifest {path}: unknown format {suffix!r}; use .csv, .jsonl, or .json (STAC ItemCollection)")


def _stac_rows(path: Path, names: Sequence[str], required: Sequence[str], assets: Mapping[str, str],
               problems: list[str]) -> Iterator[tuple[str, dict[str, str]]]:
    try:
        import pystac
    except ImportError:
        raise RuntimeError("STAC manifests need pystac: pip install 'rsinfer[stac]'") from None
    unknown = sorted(set(assets) - set(names))
    if unknown:
        problems.append(f"--asset names {unknown}, which are not inputs of this pipeline ({list(names)})")
    try:
        collection = pystac.ItemCollection.from_file(os.fspath(path))
    except Exception as err:  # pystac raises many types for a malformed file; all mean "not an ItemCollection"
        raise ValueError(f"manifest {path}: not a STAC ItemCollection ({type(err).__name__}: {err})") from err
    for number, item in enumerate(collection, 1):
        where = f"item {number} ({item.id})"
        row = {"id": item.id}
        for name in names:
            key = assets.get(name, name)
            if key in item.assets:
                row[name] = item.assets[key].get_absolute_href() or item.assets[key].href
            elif name in required:
                problems.append(f"{where}: no asset {key!r} for input {name!r} (assets: {sorted(item.assets)}; "
                                "map inputs to asset keys with --asset NAME=KEY)")
        yield where, row


def read_manifest(manifest: str | os.PathLike, inputs: Sequence[InputContract], out_dir: str | os.PathLike, *,
                  assets: Mapping[str, str] | None = None, existing: ExistingOutputs = "refuse") -> list[Job]:
    """The jobs of `manifest` for a pipeline whose inputs are `inputs`, writing under `out_dir`.

    assets: input name → STAC asset key (STAC manifests only). existing: what happens to outputs already there —
    "refuse" lists them as problems; "resume" and "overwrite" accept them (the batch verifies or redoes them).
    Raises `ManifestError` with every problem found.
    """
    if existing not in EXISTING_OUTPUTS:
        raise ValueError(f"existing={existing!r}; choose one of {EXISTING_OUTPUTS}")
    manifest, out_dir = Path(manifest), Path(out_dir).resolve()
    if not manifest.is_file():
        raise FileNotFoundError(f"manifest {manifest}: no such file")
    names = [c.name for c in inputs]
    required = [c.name for c in inputs if c.required]
    base = manifest.resolve().parent
    problems: list[str] = []
    is_stac = manifest.suffix.lower() in (".json", ".geojson")
    if assets and not is_stac:
        problems.append("--asset maps STAC asset keys, but the manifest is not a STAC ItemCollection")
    rows = list(_stac_rows(manifest, names, required, assets or {}, problems) if is_stac
                else _rows(manifest, problems))
    if not rows:
        problems.append("no jobs")
    columns = {column for _, row in rows for column in row}
    unknown = sorted(columns - set(names) - set(RESERVED_COLUMNS))
    if unknown and not is_stac:
        problems.append(f"unknown column(s) {unknown}; columns are the pipeline's inputs {names} and optional "
                        f"{list(RESERVED_COLUMNS)}")
    missing = [name for name in required if name not in columns]
    if missing and not is_stac:
        problems.append(f"missing column(s) {missing}: the pipeline needs input(s) {required}")
    jobs, wheres = [], []
    for where, row in rows:
        given = {name: row[name] for name in names if row.get(name)}
        absent = [name for name in required if not row.get(name)]
        if absent and not missing and not is_stac:  # (reported per column, or per STAC asset)
            problems.append(f"{where}: no value for required input(s) {absent}")
        if not given:
            if not required:
                problems.append(f"{where}: no input given; give at least one of {names}")
            continue
        paths = {name: gdal_path(value, base) for name, value in given.items()}
        problems += [f"{where}: input {name!r}: {problem}" for name, path in paths.items()
                     if (problem := _file_problem(path))]
        job_id = row.get("id") or _stem(next(iter(paths.values())))
        out = row.get("out") or f"{job_id}.tif"
        if not row.get("out") and ("/" in job_id or job_id.startswith(".") or "\0" in job_id):
            problems.append(f"{where}: id {job_id!r} cannot name an output file; give an 'out' column")
            continue
        output = Path(out).expanduser()
        output = output if output.is_absolute() else out_dir / output
        output = Path(os.path.normpath(output))
        if output.suffix.lower() not in OUTPUT_SUFFIXES:
            problems.append(f"{where}: output {output} is not a GeoTIFF name (*.tif, *.tiff)")
        if os.fspath(output) in paths.values():
            problems.append(f"{where}: output {output} is also an input of the job")
        if existing == "refuse" and output.exists():
            problems.append(f"{where}: output {output} already exists (pass --resume to skip verified outputs, "
                            "--overwrite to redo them)")
        jobs.append(Job(job_id, paths, os.fspath(output)))
        wheres.append(where)
    for label, values in (("id", [job.id for job in jobs]), ("output", [job.output for job in jobs])):
        for value, count in Counter(values).items():
            if count > 1:
                rows_of = [where for where, v in zip(wheres, values) if v == value]
                problems.append(f"duplicate {label} {value!r} in {', '.join(rows_of)}")
    if problems:
        raise ManifestError(manifest, problems)
    return jobs
