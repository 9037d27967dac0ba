"""The sensor registry against the published tables it encodes (Atomizer band table, toolbox GNyq, DN scales)."""

from __future__ import annotations

import dataclasses

import pytest

from rsinfer.sensors import SENSOR_NAMES, Band, sensor

# parity_semantics.md §Atomizer 2 (and B10 from the upstream EuroSAT defaults): name, centre nm, width nm, GSD m
SENTINEL2 = [
    ("B01", 443, 20, 60), ("B02", 490, 65, 10), ("B03", 560, 35, 10), ("B04", 665, 30, 10), ("B05", 705, 15, 20),
    ("B06", 740, 15, 20), ("B07", 783, 20, 20), ("B08", 842, 115, 10), ("B8A", 865, 20, 20), ("B09", 945, 20, 60),
    ("B10", 1375, 20, 60), ("B11", 1610, 90, 20), ("B12", 2190, 180, 20),
]

# DLPan-Toolbox Tools/genMTF.m (MS) and Tools/MTF_PAN.m (PAN); "otherwise" 0.3 and 'none' 0.15
TOOLBOX_GNYQ = {
    "qb": ([0.34, 0.32, 0.30, 0.22], 0.15),
    "ikonos": ([0.26, 0.28, 0.29, 0.28], 0.17),
    "geoeye-1": ([0.23] * 4, 0.16),
    "wv4": ([0.23] * 4, 0.16),
    "wv2": ([0.35] * 7 + [0.27], 0.11),
    "wv3": ([0.325, 0.355, 0.360, 0.350, 0.365, 0.360, 0.335, 0.315], 0.14),
    "gf2": ([0.3] * 4, 0.15),
    "pleiades": ([0.3] * 4, 0.15),
    "landsat-8": ([0.3] * 8, 0.15),
}


def test_sentinel2_bands_are_the_atomizer_table() -> None:
    s2 = sensor("sentinel-2")
    assert [(b.name, b.center_nm, b.width_nm, b.gsd_m) for b in s2.bands] == SENTINEL2
    assert s2.kind == "optical" and s2.pan is None and s2.ratio is None
    assert s2.dn_scale == 10000.0


@pytest.mark.parametrize("spelling, canonical", [
    ("B2", "B02"), ("b02", "B02"), ("B8a", "B8A"), ("b8A", "B8A"), (" B12 ", "B12"), ("B_05", "B05"), ("B1", "B01"),
])
def test_band_spellings(spelling: str, canonical: str) -> None:
    assert sensor("s2").band(spelling).name == canonical


def test_unknown_band_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="B13") as err:
        sensor("sentinel-2").band("B13")
    assert all(name in str(err.value) for name, *_ in SENTINEL2)
    with pytest.raises(ValueError, match="B1, B2, B3, B4, B5, B6, B7, B9, B8"):
        sensor("landsat-8").band("B10")


@pytest.mark.parametrize("alias, key", [
    ("WV3", "wv3"), ("worldview-3", "wv3"), ("WV-3", "wv3"), ("WorldView 3", "wv3"), ("wv_2", "wv2"),
    ("QuickBird", "qb"), ("GeoEye1", "geoeye-1"), ("GE-1", "geoeye-1"), ("Pléiades-1B", "pleiades"),
    ("PHR1A", "pleiades"), ("GF-2", "gf2"), ("Gaofen-2", "gf2"), ("S2B", "sentinel-2"), ("Sentinel-2A", "sentinel-2"),
    ("LC08", "landsat-8"), ("Landsat 9", "landsat-9"), ("ETM+", "landsat-7"), ("S1", "sentinel-1"),
])
def test_sensor_aliases(alias: str, key: str) -> None:
    assert sensor(alias).name == key


def test_unknown_sensor_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="'SPOT-6'") as err:
        sensor("SPOT-6")
    assert all(name in str(err.value) for name in SENSOR_NAMES)


def test_every_name_and_alias_resolves_to_its_own_sensor() -> None:
    for name in SENSOR_NAMES:  # a spelling shared by two sensors would resolve to one of them here
        assert {sensor(spelling).name for spelling in (name, *sensor(name).aliases)} == {name}


def test_sar_has_no_wavelength() -> None:
    s1 = sensor("sentinel-1")
    assert s1.kind == "sar"
    assert [b.name for b in s1.bands] == ["VV", "VH"]
    assert all(b.center_nm is None and b.width_nm is None for b in s1.bands)
    assert sensor("s1").band("vh").gsd_m == 10.0


@pytest.mark.parametrize("name", sorted(TOOLBOX_GNYQ))
def test_gnyq_follow_the_toolbox(name: str) -> None:
    ms_gains, pan_gain = TOOLBOX_GNYQ[name]
    s = sensor(name)
    assert [b.gnyq for b in s.bands] == ms_gains
    assert s.pan is not None and s.pan.gnyq == pan_gain


@pytest.mark.parametrize("name, bits, scale, ratio, bands", [
    ("qb", 11, 2047, 4, 4), ("ikonos", 11, 2047, 4, 4), ("geoeye-1", 11, 2047, 4, 4), ("wv2", 11, 2047, 4, 8),
    ("wv3", 11, 2047, 4, 8), ("wv4", 11, 2047, 4, 4), ("gf2", 10, 1023, 4, 4), ("pleiades", 12, 4095, 4, 4),
    ("landsat-7", 8, 255, 2, 6), ("landsat-8", 16, 65535, 2, 8), ("landsat-9", 16, 65535, 2, 8),
])
def test_pansharpening_sensors(name: str, bits: int, scale: float, ratio: int, bands: int) -> None:
    s = sensor(name)
    assert (s.bit_depth, s.dn_scale, s.ratio, len(s.bands)) == (bits, scale, ratio, bands)
    assert s.dn_scale == 2 ** s.bit_depth - 1
    assert len({b.gsd_m for b in s.bands}) == 1  # one MS GSD, so the ratio is well defined


def test_landsat_has_its_own_pan() -> None:
    l8 = sensor("landsat-8")
    assert l8.pan == l8.band("B8") == l8.band("pan")
    assert (l8.pan.center_nm, l8.pan.width_nm, l8.pan.gsd_m) == (590.0, 180.0, 15.0)  # 500–680 nm, 15 m
    assert [b.name for b in l8.bands] == ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B9"]
    assert l8.band("b04").center_nm == 655.0  # 630–680 nm


def test_select() -> None:
    s2 = sensor("sentinel-2")
    assert s2.select(None) == s2.bands
    assert [b.name for b in s2.select(["b8a", "B2", "B04"])] == ["B8A", "B02", "B04"]
    with pytest.raises(TypeError, match="sequence"):
        s2.select("B02")
    with pytest.raises(ValueError, match="B99"):
        s2.select(["B02", "B99"])


def test_optical_bands_are_physical() -> None:
    for name in SENSOR_NAMES:
        s = sensor(name)
        if s.kind == "sar":
            continue
        for band in s.bands + ((s.pan,) if s.pan else ()):
            assert 400 <= band.center_nm - band.width_nm / 2 and band.center_nm + band.width_nm / 2 <= 2400, band
            assert band.width_nm > 0 and band.gsd_m > 0
        if s.pan is not None:
            assert s.pan.gsd_m < s.bands[0].gsd_m


def test_registry_entries_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        sensor("wv3").bands[0].gnyq = 0.5  # type: ignore[misc]
    assert isinstance(sensor("wv3").bands[0], Band)
