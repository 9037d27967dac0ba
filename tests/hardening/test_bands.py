"""Finding 5: band identity. `translate --input s2_l1c=file.tif` with a 4-band B2, B3, B4, B8 file read bands (4, 3, 2),
the wrong ones, and exited 0. Now a file that describes its bands is read by name, and one that does not is refused
with the layouts expected and what was found."""

from __future__ import annotations

import numpy as np
import pytest
from tests.pipelines.copgen_standin import StandInCopGen, StandInVAE

from rsinfer import models, pipelines
from rsinfer.io import raster_info

from .conftest import write_raster


@pytest.fixture
def stand_ins(monkeypatch) -> None:
    """Tiny deterministic networks in place of the released COP-GEN-Beta and VAE (minutes to build on a CPU)."""
    monkeypatch.setattr(models, "build", lambda name, **_: StandInCopGen() if name == "copgen-beta" else StandInVAE())


def _four_bands(path, descriptions=()):
    values = np.stack([np.full((40, 48), 1000 * (i + 1), dtype=np.uint16) for i in range(4)])
    return write_raster(path, values, descriptions)


def test_a_described_four_band_file_is_read_by_name(tmp_path, stand_ins) -> None:
    path = _four_bands(tmp_path / "b2348.tif", ("B2", "B3", "B4", "B8"))
    pipe = pipelines.build(pipelines.PipelineSpec("translate", "random:0", {"target": "s1_rtc"}))
    plan = pipe.plan({"s2_l1c": raster_info(path)}, pipe.default_tiling)
    assert plan.bands == {"s2_l1c": (3, 2, 1)}  # B4, B3, B2: the file's 3rd, 2nd and 1st bands, never (4, 3, 2)


def test_an_undescribed_four_band_file_is_refused_with_the_layouts_expected(tmp_path, cli, stand_ins) -> None:
    path = _four_bands(tmp_path / "four.tif")
    outcome = cli("translate", "--random-weights", "--input", f"s2_l1c={path}", "--target", "s1_rtc", "--out",
                  tmp_path / "o.tif")
    assert outcome.status == 3  # input data error: the file holds other bands
    assert outcome.line == (
        f"rsinfer translate: error: input 's2_l1c' ({path}) has 4 bands and no band descriptions; expected a standard "
        "layout by band count — Sentinel-2 L1C: 13 bands ['B1', 'B2', 'B3', 'B4', 'B5', 'B6', 'B7', 'B8', 'B8A', "
        "'B9', 'B10', 'B11', 'B12']; Sentinel-2 L2A: 12 bands ['B1', 'B2', 'B3', 'B4', 'B5', 'B6', 'B7', 'B8', 'B8A', "
        "'B9', 'B11', 'B12']")
    assert not (tmp_path / "o.tif").exists()


def test_a_file_without_a_needed_band_names_the_needed_and_the_found_bands(tmp_path, cli, stand_ins) -> None:
    path = _four_bands(tmp_path / "no_b4.tif", ("B02", "B03", "B08", "B11"))
    outcome = cli("translate", "--random-weights", "--input", f"s2_l1c={path}", "--target", "s1_rtc", "--out",
                  tmp_path / "o.tif")
    assert outcome.status == 3  # input data error: the file holds other bands
    assert outcome.line == (f"rsinfer translate: error: input 's2_l1c' ({path}): bands ['B4'] are missing; needed "
                            "['B4', 'B3', 'B2'], found ['B2', 'B3', 'B8', 'B11']")
