"""Sentinel-2 and Sentinel-1 normalisation and band identity (`rsinfer.pipelines.sentinel`)."""

from __future__ import annotations

import pytest
import rasterio
import torch

from rsinfer.pipelines.sentinel import (L1C_BANDS, L2A_B10_FILL, canonical_band, canonical_polarisation,
                                        denormalise_s2, detect_s1_scale, normalise_s1, normalise_s2, s2_layout)

S1_NAME = "Spain_7370579_S1Hand.tif"


# --- preprocessing -------------------------------------------------------------------------------------------------

def test_band_names_are_canonicalised() -> None:
    assert [canonical_band(n) for n in ("B02", "b2", "B8a", "B8A", "B10", "B02 (490 nm)", "VV", None, "")] == \
        ["B2", "B2", "B8A", "B8A", "B10", "B2", None, None, None]


def test_l1c_and_l2a_layouts() -> None:
    assert s2_layout(13).slots == tuple(range(13))
    shuffled = ["B12", "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11"]
    layout = s2_layout(12, shuffled)
    assert layout.level == "L2A" and layout.input_bands == tuple(canonical_band(b) for b in shuffled)
    assert 10 not in layout.slots  # B10 has no input band
    assert s2_layout(12).input_bands == tuple(b for b in L1C_BANDS if b != "B10")
    with pytest.raises(ValueError, match="13 .L1C. or 12"):
        s2_layout(11)
    with pytest.raises(ValueError, match="exactly once"):
        s2_layout(12, shuffled[:-1] + ["B10"])


def test_s2_normalisation_round_trip_and_b10_fill() -> None:
    layout = s2_layout(12, ["B12", "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11"])
    dn = torch.randint(-500, 12000, (2, 12, 5, 6)).float()
    x = normalise_s2(dn, layout)
    assert x.shape == (2, 13, 5, 6)
    assert torch.equal(x[:, 10], torch.full((2, 5, 6), L2A_B10_FILL))
    assert torch.equal(x[:, 12], dn[:, 0].clamp(0, 10000) / 10000)  # B12 came first in the file
    torch.testing.assert_close(denormalise_s2(x, layout), dn.clamp(0, 10000), rtol=0, atol=1e-3)


def test_s1_normalisation_known_values_and_linear_input() -> None:
    db = torch.tensor([[-25.0, -12.5, 0.0, 3.0], [-32.5, -16.25, 0.0, -40.0]])[None, :, None, :]  # (1, 2, 1, 4)
    expected = torch.tensor([[0.0, 0.5, 1.0, 1.0], [0.0, 0.5, 1.0, 0.0]])[None, :, None, :]
    torch.testing.assert_close(normalise_s1(db, "dB"), expected)
    torch.testing.assert_close(normalise_s1(10 ** (db / 10), "linear"), expected, rtol=0, atol=1e-6)


def test_s1_scale_is_detected_on_real_data(data_dir) -> None:
    with rasterio.open(data_dir / "sen1floods11" / S1_NAME) as src:
        vv = torch.from_numpy(src.read(1))
    assert detect_s1_scale(vv) == "dB"
    assert detect_s1_scale(10 ** (vv / 10)) == "linear"
    with pytest.raises(ValueError, match="no valid pixel in VV"):
        detect_s1_scale(torch.full((4, 4), float("nan")))


def test_polarisations_are_canonicalised() -> None:
    assert [canonical_polarisation(n) for n in ("VV", "vh", "Sigma0_VV", "VV (dB)", "HV", "B2", "AVVA", None)] == \
        ["VV", "VH", "VV", "VV", "HV", None, None, None]


def test_s1_normalisation_refuses_an_unresolved_scale() -> None:
    with pytest.raises(ValueError, match="resolve 'auto'"):
        normalise_s1(torch.zeros(1, 2, 3, 3), "auto")
