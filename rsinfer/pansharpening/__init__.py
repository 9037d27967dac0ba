"""Classical pansharpening: sensor MTF filters, the 23-tap interpolator, Wald-protocol degradation and the baselines.

Everything works on numpy float64 arrays in DN, images as (bands, rows, cols), PAN as (rows, cols), following the
conventions of Vivone's pansharpening toolbox (DLPan-Toolbox, `02-Test-toolbox-for-traditional-and-DL(Matlab)`).

- `mtf`: `mtf_kernel`, `mtf_filter` (Gaussian MTF with gain GNyq at Nyquist, Kaiser-windowed, `genMTF.m`).
- `interpolation`: `interp23tap` (EXP, the 23-tap polynomial interpolator in ×2 stages).
- `wald`: `degrade` (MTF filter then decimate: the reduced-resolution pair), `synthetic_pan`, `decimate`.
- `baselines`: EXP, Brovey, GS, GSA, MTF-GLP (regression gains), MTF-GLP-HPM, one signature
  `method(ms (B, h, w), pan (h·r, w·r), ratio, gnyq=...) -> (B, h·r, w·r)`, by name in `BASELINES`.
"""

from rsinfer.pansharpening.baselines import (
    BASELINES,
    Baseline,
    brovey,
    exp_interp,
    gs,
    gsa,
    mtf_glp,
    mtf_glp_hpm,
)
from rsinfer.pansharpening.interpolation import interp23tap
from rsinfer.pansharpening.mtf import band_gains, mtf_filter, mtf_kernel
from rsinfer.pansharpening.wald import ReducedPair, decimate, degrade, synthetic_pan

__all__ = [
    "BASELINES", "Baseline", "ReducedPair", "band_gains", "brovey", "decimate", "degrade", "exp_interp", "gs", "gsa",
    "interp23tap", "mtf_filter", "mtf_glp", "mtf_glp_hpm", "mtf_kernel", "synthetic_pan",
]
