"""The sensor registry: every band rsinfer knows by name, centre and width in nm, native GSD and MTF gain at Nyquist.

One table serves three users: the any-sensor encoder (Atomizer), which turns (centre, width) into its wavelength
tokens; the Sentinel pipelines; and pansharpening, which needs the bit depth / DN scale, the PAN band, the PAN/MS
ratio and the per-band MTF gain at Nyquist (GNyq) that shapes the Gaussian MTF filters of the Wald protocol.

Sources, per sensor (centres and widths are the midpoint and extent of the published band edges, in nm):
- Sentinel-2A/B MSI: B01..B12 and B8A exactly as the Atomizer was trained (its `bands.yaml` defaults, research note
  parity_semantics.md §Atomizer 2); B10 1375/20 from the same upstream defaults file
  (HugoRdet/Atomizer HEAD training/utils/datasets/utils_dataset_EUROSAT.py). GSD from the ESA MSI user guide.
  12-bit MSI; L1C/L2A store reflectance × 10000, so 10000 is the DN scale.
- Sentinel-1 C-SAR: VV and VH polarisations of the IW GRD product, 10 m; no wavelength (kind "sar").
- Landsat 8 OLI and Landsat 9 OLI-2: USGS Landsat 8/9 data users handbooks (band edges); B8 is the 15 m PAN.
  Level-1 products are 16-bit DN (12-bit / 14-bit quantisation rescaled to 16 bits), so the DN scale is 65535.
- Landsat 7 ETM+: USGS Landsat 7 data users handbook; B6 (thermal, 60 m) is not a reflective MS band and is left out;
  B8 is the 15 m PAN. 8-bit DN.
- QuickBird, IKONOS, GeoEye-1, WorldView-2/3/4: DigitalGlobe / GeoEye / Maxar spacecraft data sheets (band edges, nadir
  GSD). 11-bit DN, scale 2047.
- GF-2 PMS: CRESDA GF-2 specification (0.8 m PAN / 3.2 m MS nadir). 10-bit DN, scale 1023 (PanCollection).
- Pléiades 1A/1B: Airbus Pléiades imagery user guide (native 0.7 m / 2.8 m). 12-bit DN, scale 4095.
GNyq: the pansharpening toolbox's tables (DLPan-Toolbox / Vivone's toolbox, `Tools/genMTF.m` for MS bands and
`Tools/MTF_PAN.m` for PAN): QB, IKONOS, GeoEye-1, WV2, WV3, WV4 have their own values; every other sensor takes the
toolbox defaults, 0.3 for each MS band ("otherwise" branch) and 0.15 for the PAN (the `'none'` case). The toolbox gives
no value for Sentinel-2 or Sentinel-1, so theirs stay None.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

SensorKind = Literal["optical", "sar"]

DEFAULT_MS_GNYQ = 0.3  # genMTF.m, "otherwise" branch
DEFAULT_PAN_GNYQ = 0.15  # MTF_PAN.m, case 'none'


@dataclass(frozen=True)
class Band:
    """One spectral band (or SAR polarisation)."""

    name: str  # canonical name: "B02", "B8A" (Sentinel-2), "B1" (Landsat), "PAN", "blue", "VV"
    center_nm: float | None  # None for SAR polarisations
    width_nm: float | None
    gsd_m: float  # native ground sampling distance
    gnyq: float | None = None  # MTF gain at Nyquist (pansharpening sensors; None where unknown)


@dataclass(frozen=True)
class Sensor:
    """A sensor: its multispectral bands in the product's standard order, its PAN and its DN scale."""

    name: str  # registry key
    kind: SensorKind
    bands: tuple[Band, ...]  # MS bands in the product's standard order
    pan: Band | None = None
    bit_depth: int | None = None
    dn_scale: float | None = None  # DN that maps to 1.0 in the model scale
    aliases: tuple[str, ...] = ()

    def band(self, name: str) -> Band:
        """The band called `name`; accepts "B2" / "b02" / "B8a" style spellings, and "PAN" for the PAN band."""
        key = _band_key(name)
        for band in self.bands + ((self.pan,) if self.pan else ()):
            if _band_key(band.name) == key:
                return band
        if self.pan is not None and key == "PAN":
            return self.pan
        known = [b.name for b in self.bands] + ([self.pan.name] if self.pan else [])
        raise ValueError(f"{self.name} has no band {name!r}; known bands: {', '.join(known)}")

    def select(self, names: Sequence[str] | None) -> tuple[Band, ...]:
        """The bands named, in the order given; None = all MS bands in the product's order."""
        if names is None:
            return self.bands
        if isinstance(names, str):
            raise TypeError(f"band names must be a sequence of names, got the string {names!r}")
        return tuple(self.band(n) for n in names)

    @property
    def ratio(self) -> int | None:
        """PAN/MS GSD ratio (MS GSD over PAN GSD), when the sensor has a PAN."""
        if self.pan is None:
            return None
        return round(self.bands[0].gsd_m / self.pan.gsd_m)


def _band_key(name: str) -> str:
    """Spelling-insensitive band key: "b02" / "B2" → "B2", "B8a" → "B8A", "Red-Edge" → "REDEDGE"."""
    flat = re.sub(r"[\s_\-]", "", name).upper()
    match = re.fullmatch(r"B0*(\d+)(A?)", flat)
    return f"B{match.group(1)}{match.group(2)}" if match else flat


def _sensor_key(name: str) -> str:
    """Spelling-insensitive sensor key: "WorldView-3" / "worldview 3" → "WORLDVIEW3", "Pléiades" → "PLEIADES"."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^0-9A-Z+]", "", ascii_name.upper())


def _bands(gsd_m: float, spec: Sequence[tuple[str, float, float]], gnyq: Sequence[float | None] | float | None) -> (
        tuple[Band, ...]):
    """Bands at one GSD from (name, low edge nm, high edge nm); GNyq per band or one value for all."""
    gains = gnyq if isinstance(gnyq, Sequence) else [gnyq] * len(spec)
    return tuple(Band(name, (lo + hi) / 2.0, float(hi - lo), gsd_m, g)
                 for (name, lo, hi), g in zip(spec, gains, strict=True))


# Sentinel-2 MSI: (name, centre nm, width nm, GSD m). Centres/widths as the Atomizer was trained (see module docstring).
_S2_BANDS = (
    ("B01", 443, 20, 60), ("B02", 490, 65, 10), ("B03", 560, 35, 10), ("B04", 665, 30, 10),
    ("B05", 705, 15, 20), ("B06", 740, 15, 20), ("B07", 783, 20, 20), ("B08", 842, 115, 10),
    ("B8A", 865, 20, 20), ("B09", 945, 20, 60), ("B10", 1375, 20, 60), ("B11", 1610, 90, 20),
    ("B12", 2190, 180, 20),
)

# Landsat 8 OLI / Landsat 9 OLI-2 band edges (nm), USGS handbooks.
_OLI_MS = (
    ("B1", 433, 453), ("B2", 450, 515), ("B3", 525, 600), ("B4", 630, 680),
    ("B5", 845, 885), ("B6", 1560, 1660), ("B7", 2100, 2300), ("B9", 1360, 1390),
)
_OLI_PAN = Band("B8", 590.0, 180.0, 15.0, DEFAULT_PAN_GNYQ)  # 500-680 nm

# 4-band VHR layout (blue, green, red, NIR) and the 8-band WorldView layout.
_WV8_NAMES = ("coastal", "blue", "green", "yellow", "red", "red-edge", "nir1", "nir2")


def _four_band(edges: Sequence[tuple[float, float]]) -> tuple[tuple[str, float, float], ...]:
    return tuple((n, lo, hi) for n, (lo, hi) in zip(("blue", "green", "red", "nir"), edges, strict=True))


def _pan(lo: float, hi: float, gsd_m: float, gnyq: float) -> Band:
    return Band("PAN", (lo + hi) / 2.0, float(hi - lo), gsd_m, gnyq)


_SENSORS: tuple[Sensor, ...] = (
    Sensor(
        "sentinel-2", "optical",
        tuple(Band(n, float(c), float(w), float(g)) for n, c, w, g in _S2_BANDS),
        bit_depth=12, dn_scale=10000.0,
        aliases=("s2", "sentinel2", "sentinel-2a", "sentinel-2b", "s2a", "s2b", "msi", "sentinel-2 msi"),
    ),
    Sensor(
        "sentinel-1", "sar",
        (Band("VV", None, None, 10.0), Band("VH", None, None, 10.0)),
        aliases=("s1", "sentinel1", "sentinel-1a", "sentinel-1b", "s1a", "s1b", "c-sar"),
    ),
    Sensor(
        "landsat-8", "optical", _bands(30.0, _OLI_MS, DEFAULT_MS_GNYQ),
        pan=_OLI_PAN,
        bit_depth=16, dn_scale=65535.0,
        aliases=("l8", "landsat8", "lc08", "lc8", "oli", "landsat-8 oli"),
    ),
    Sensor(
        "landsat-9", "optical", _bands(30.0, _OLI_MS, DEFAULT_MS_GNYQ),
        pan=_OLI_PAN,
        bit_depth=16, dn_scale=65535.0,
        aliases=("l9", "landsat9", "lc09", "lc9", "oli-2", "oli2", "landsat-9 oli-2"),
    ),
    Sensor(
        "landsat-7", "optical",
        _bands(30.0, (("B1", 450, 515), ("B2", 525, 605), ("B3", 630, 690), ("B4", 775, 900), ("B5", 1550, 1750),
                      ("B7", 2080, 2350)), DEFAULT_MS_GNYQ),
        pan=Band("B8", 710.0, 380.0, 15.0, DEFAULT_PAN_GNYQ),  # 520-900 nm
        bit_depth=8, dn_scale=255.0,
        aliases=("l7", "landsat7", "le07", "le7", "etm+", "etm"),
    ),
    Sensor(
        "qb", "optical",
        _bands(2.44, _four_band(((450, 520), (520, 600), (630, 690), (760, 900))), (0.34, 0.32, 0.30, 0.22)),
        pan=_pan(450, 900, 0.61, 0.15),
        bit_depth=11, dn_scale=2047.0,
        aliases=("quickbird", "quick-bird", "quickbird-2"),
    ),
    Sensor(
        "ikonos", "optical",
        # nadir 0.82 / 3.28 m; products are resampled to 1 / 4 m
        _bands(3.28, _four_band(((445, 516), (506, 595), (632, 698), (757, 853))), (0.26, 0.28, 0.29, 0.28)),
        pan=_pan(526, 929, 0.82, 0.17),
        bit_depth=11, dn_scale=2047.0,
        aliases=("ikonos-2",),
    ),
    Sensor(
        "geoeye-1", "optical",
        _bands(1.64, _four_band(((450, 510), (510, 580), (655, 690), (780, 920))), 0.23),
        pan=_pan(450, 800, 0.41, 0.16),
        bit_depth=11, dn_scale=2047.0,
        aliases=("geoeye1", "ge1", "ge-1", "geoeye"),
    ),
    Sensor(
        "wv2", "optical",
        _bands(1.84, tuple(zip(_WV8_NAMES, (400, 450, 510, 585, 630, 705, 770, 860),
                               (450, 510, 580, 625, 690, 745, 895, 1040), strict=True)), (0.35,) * 7 + (0.27,)),
        pan=_pan(450, 800, 0.46, 0.11),
        bit_depth=11, dn_scale=2047.0,
        aliases=("worldview-2", "worldview2", "wv-2", "wv02"),
    ),
    Sensor(
        "wv3", "optical",
        _bands(1.24, tuple(zip(_WV8_NAMES, (400, 448, 518, 590, 632, 706, 772, 866),
                               (452, 510, 586, 630, 692, 746, 890, 954), strict=True)),
               (0.325, 0.355, 0.360, 0.350, 0.365, 0.360, 0.335, 0.315)),
        pan=_pan(450, 800, 0.31, 0.14),
        bit_depth=11, dn_scale=2047.0,
        aliases=("worldview-3", "worldview3", "wv-3", "wv03"),
    ),
    Sensor(
        "wv4", "optical",
        _bands(1.24, _four_band(((450, 510), (510, 580), (655, 690), (780, 920))), 0.23),
        pan=_pan(450, 800, 0.31, 0.16),
        bit_depth=11, dn_scale=2047.0,
        aliases=("worldview-4", "worldview4", "wv-4", "wv04"),
    ),
    Sensor(
        "gf2", "optical",
        _bands(3.2, _four_band(((450, 520), (520, 590), (630, 690), (770, 890))), DEFAULT_MS_GNYQ),
        pan=_pan(450, 900, 0.8, DEFAULT_PAN_GNYQ),
        bit_depth=10, dn_scale=1023.0,
        aliases=("gf-2", "gaofen-2", "gaofen2"),
    ),
    Sensor(
        "pleiades", "optical",
        _bands(2.8, _four_band(((430, 550), (490, 610), (600, 720), (750, 950))), DEFAULT_MS_GNYQ),
        pan=_pan(480, 830, 0.7, DEFAULT_PAN_GNYQ),
        bit_depth=12, dn_scale=4095.0,
        aliases=("pleiades-1a", "pleiades-1b", "pleiades-1", "phr1a", "phr1b", "phr"),
    ),
)

SENSOR_NAMES: tuple[str, ...] = tuple(s.name for s in _SENSORS)
_BY_KEY: dict[str, Sensor] = {_sensor_key(n): s for s in _SENSORS for n in (s.name, *s.aliases)}


def sensor(name: str) -> Sensor:
    """The registered sensor called `name` (case-, space- and hyphen-insensitive; aliases such as "WorldView-3")."""
    found = _BY_KEY.get(_sensor_key(name))
    if found is None:
        raise ValueError(f"unknown sensor {name!r}; known sensors: {', '.join(SENSOR_NAMES)}")
    return found
