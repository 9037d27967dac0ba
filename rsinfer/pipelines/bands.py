"""Band identity: which bands of an input file a pipeline reads, decided once for every pipeline.

The rule (`resolve_bands`):
- a file whose band descriptions name its bands (e.g. "B02", "B8A", "VV") is read **by name**: every band the
  pipeline needs must be described, in any order; a missing one is an error listing the bands needed and the bands
  found;
- a file without band descriptions is read by position in one of the pipeline's standard layouts, chosen **by band
  count** (13 bands = Sentinel-2 L1C, 12 = L2A, 2 = Sentinel-1 VV, VH); any other count is an error naming the
  layouts and counts allowed;
- a file described only in part (some bands named, others not) is refused: positions and names would disagree.

Mismatches are `InputDataError`s (the command line's exit status 3), naming the bands needed and found.

A rule without layouts (`count_only`) asks for a number of bands and reads all of them (a panchromatic band, the bands
of a sensor the pipeline does not name).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rsinfer.errors import InputDataError
from rsinfer.io import RasterInfo

Canonical = Callable[[str], "str | None"]


@dataclass(frozen=True)
class BandLayout:
    """A standard band order of a product (used for files without band descriptions)."""

    name: str
    bands: tuple[str, ...]


@dataclass(frozen=True)
class BandRule:
    """What a pipeline reads from one input: `wanted` bands, in that order, out of one of `layouts` (None: every band of
    the matching layout, in the file's order), names compared after `canonical`; or, without layouts, `count` bands by
    position (None: any number)."""

    layouts: tuple[BandLayout, ...] = ()
    wanted: tuple[str, ...] | None = None
    canonical: Canonical = str
    count: int | None = None

    @classmethod
    def count_only(cls, count: int | None = None) -> BandRule:
        return cls(count=count)


@dataclass(frozen=True)
class ResolvedBands:
    """The 1-based band indexes to read, in the order the pipeline wants them, with their names and layout."""

    indexes: tuple[int, ...]
    names: tuple[str, ...]
    layout: BandLayout | None


def _layout_listing(layouts: tuple[BandLayout, ...]) -> str:
    return "; ".join(f"{layout.name}: {len(layout.bands)} bands {list(layout.bands)}" for layout in layouts)


def resolve_bands(rule: BandRule, info: RasterInfo, input_name: str) -> ResolvedBands:
    """Apply `rule` to the file described by `info` (see the module docstring); errors name the input and the file."""
    where = f"input {input_name!r} ({info.path})"
    if not rule.layouts:
        if rule.count is not None and info.count != rule.count:
            raise InputDataError(f"{where} has {info.count} bands; this pipeline needs exactly {rule.count}")
        return ResolvedBands(tuple(range(1, info.count + 1)),
                             tuple(d or f"band {i}" for i, d in enumerate(info.descriptions, 1)), None)
    names = [rule.canonical(d) if d else None for d in info.descriptions]
    if all(n is None for n in names):
        by_count = [layout for layout in rule.layouts if len(layout.bands) == info.count]
        if not by_count:
            raise InputDataError(f"{where} has {info.count} bands and no band descriptions; expected a standard layout "
                             f"by band count — {_layout_listing(rule.layouts)}")
        layout = by_count[0]
        names = list(layout.bands)
    else:
        unnamed = [i for i, n in enumerate(names, 1) if n is None]
        if unnamed:
            raise InputDataError(f"{where}: bands {unnamed} have no recognisable band name (descriptions "
                             f"{list(info.descriptions)}); describe every band or none")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise InputDataError(f"{where}: bands {repeated} are described more than once ({list(info.descriptions)})")
        layout = next((lay for lay in rule.layouts if set(lay.bands) == set(names)), None)
        if rule.wanted is None and layout is None:
            raise InputDataError(f"{where}: its bands {names} are not the bands of a layout this pipeline takes — "
                             f"{_layout_listing(rule.layouts)}")
    if rule.wanted is None:  # the whole layout, in the file's own order
        return ResolvedBands(tuple(range(1, info.count + 1)), tuple(names), layout)
    wanted = list(rule.wanted)
    missing = [band for band in wanted if band not in names]
    if missing:
        raise InputDataError(f"{where}: bands {missing} are missing; needed {wanted}, found {names}")
    indexes = tuple(names.index(band) + 1 for band in wanted)
    return ResolvedBands(indexes, tuple(wanted), layout)
