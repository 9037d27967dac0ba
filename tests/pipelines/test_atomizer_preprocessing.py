"""BigEarthNet v2 preprocessing for the Atomizer, on the real BigEarthNet S2 example patches read band by band at their
native resolutions (10 m: 120 px, 20 m: 60 px, 60 m: 20 px)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from rsinfer.pipelines.atomizer_preprocessing import (
    BENV2_S2_BANDS,
    BENV2_S2_MEAN,
    BENV2_S2_STD,
    benv2_image,
    normalise,
    resolution_factor,
    to_grid,
)

NATIVE_SIDE = {"B01": 20, "B02": 120, "B03": 120, "B04": 120, "B05": 60, "B06": 60, "B07": 60, "B08": 120,
               "B8A": 60, "B09": 20, "B11": 60, "B12": 60}
# research note crossdiff_atomizer_tirsit.md §2.1: the decoded stats.pt, to one decimal
NOTE_MEANS = (360.1, 438.0, 620.0, 597.6, 964.4, 1821.5, 2110.7, 2258.3, 2304.4, 2311.7, 1611.5, 1020.8)
NOTE_STDS = (585.1, 618.9, 613.0, 694.1, 742.1, 1090.0, 1263.2, 1354.2, 1340.0, 1297.3, 1059.5, 809.2)


@pytest.fixture
def patches(data_dir: Path, tmp_path: Path) -> list[dict[str, np.ndarray]]:
    """The 6 patches' bands, each read from its own GeoTIFF at its native resolution."""
    with tarfile.open(data_dir / "bigearthnet" / "BigEarthNet-S2-Example.tar.bz2") as archive:
        archive.extractall(tmp_path, filter="data")
    found = []
    for folder in sorted((tmp_path / "BigEarthNet-S2-Example").iterdir()):
        bands = {}
        for name in BENV2_S2_BANDS:
            with rasterio.open(folder / f"{folder.name}_{name}.tif") as src:
                bands[name] = src.read(1)
        found.append(bands)
    assert len(found) == 6
    return found


def test_statistics_are_the_published_ones():
    assert [round(m, 1) for m in BENV2_S2_MEAN] == list(NOTE_MEANS)
    assert [round(s, 1) for s in BENV2_S2_STD] == list(NOTE_STDS)
    assert all(np.float32(v) == v for v in BENV2_S2_MEAN + BENV2_S2_STD)  # float32 values, as stats.pt stores them


def test_patches_become_normalised_10m_images(patches):
    for bands in patches:
        assert {n: b.shape for n, b in bands.items()} == {n: (s, s) for n, s in NATIVE_SIDE.items()}
        image = benv2_image({name: torch.from_numpy(band.astype(np.int32)) for name, band in bands.items()})
        assert image.shape == (12, 120, 120) and image.dtype == torch.float32
        for c, name in enumerate(BENV2_S2_BANDS):
            factor = 120 // NATIVE_SIDE[name]  # nearest neighbour = each native pixel as a factor × factor block
            dn = np.repeat(np.repeat(bands[name], factor, axis=0), factor, axis=1).astype(np.float32)
            z = (dn - np.float32(BENV2_S2_MEAN[c])) / np.float32(BENV2_S2_STD[c])
            assert np.array_equal(image[c].numpy(), z.astype(np.float16).astype(np.float32)), name
        assert torch.equal(image, image.half().float())  # rounded through float16


def test_band_subsets_and_errors():
    dn = torch.tensor([[[1000.0]], [[2000.0]]])
    z = normalise(dn, ["b4", "B8a"])  # registry spellings
    expected = [(1000 - BENV2_S2_MEAN[3]) / BENV2_S2_STD[3], (2000 - BENV2_S2_MEAN[8]) / BENV2_S2_STD[8]]
    assert z.flatten().tolist() == pytest.approx(expected, abs=1e-3)
    with pytest.raises(ValueError, match="no BigEarthNet v2 statistics for band 'B10'"):
        normalise(dn, ["B10", "B02"])
    with pytest.raises(ValueError, match="known bands"):
        normalise(dn, ["B13", "B02"])
    with pytest.raises(ValueError, match="missing bands"):
        benv2_image({"B02": torch.zeros(4, 4)})


def test_nearest_neighbour_grid_and_resolution_factor():
    band = torch.tensor([[1, 2], [3, 4]])
    assert to_grid(band, (4, 6)).tolist() == [[1, 1, 1, 2, 2, 2], [1, 1, 1, 2, 2, 2],
                                              [3, 3, 3, 4, 4, 4], [3, 3, 3, 4, 4, 4]]
    assert resolution_factor(10.0) == 1.0 and resolution_factor(30.0) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="gsd_m must be > 0"):
        resolution_factor(0.0)
