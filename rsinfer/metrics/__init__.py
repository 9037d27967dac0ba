"""Image-quality metrics with the conventions of DLPan-Toolbox / Vivone's pansharpening toolbox (MATLAB), on
(bands, rows, cols) numpy arrays in DN, computed in float64. Argument order everywhere: the estimate first (fused,
predicted), then the reference.

Reduced resolution (a fused image against its reference; `reduced_resolution` runs indexes_evaluation.m):
- `sam`      SAM.m: mean spectral angle in degrees over pixels where neither spectrum is zero.
- `ergas`    ERGAS.m: (100/ratio)·sqrt(mean_b MSE_b / μ_b²), μ_b the reference band mean.
- `q2n`      q2n.m: hypercomplex UIQI (Q4, Q8) on block × block tiles at a block step; images mirror-padded
             (symmetric) to a block multiple, then cast as MATLAB's uint16() (round half away from zero, clip to
             [0, 65535]), bands zero-padded to a power of two (3 → 4).
- `q_avg`    Q.m / img_qi.m: per-band UIQI on a 32 × 32 window SLIDING by one pixel, averaged over windows and bands.
- `scc`      SCC.m: uncentred correlation of Sobel gradient magnitudes (not the Laplacian/Pearson variant), pooled
             over bands, on the image cropped by one pixel with zero padding.
Protocol defaults: ratio 4, L (bits) 11 (GF-2: 10), block 32, border cut dim_cut = 21 (MATLAB rows 21..end−21: 20
pixels off the top/left, 21 off the bottom/right), thvalues 0 (no clipping of the fused image).

Full resolution (no reference; `full_resolution` runs indexes_evaluation_FS.m, QNR and HQNR branches):
- `d_lambda`, `d_s`, `qnr`     D_lambda.m, D_s.m, QNR.m ("Toolbox 1.0": the MS upsampled to PAN size, block 32,
                               p = q = α = β = 1); Ds's low-pass PAN is interp23tap(imresize(PAN, 1/ratio), ratio).
- `d_lambda_khan`, `hqnr`      D_lambda_K.m, HQNR.m: 1 − Q2n(MTF(fused), MS upsampled), MTF from the sensor's GNyq.
Rows and cols must be multiples of the block here, as the toolbox requires.

General (`image_quality`): per-band `rmse`, `psnr` (explicit data range), `ssim` (Wang 2004: Gaussian 11, σ 1.5,
K1 0.01, K2 0.03, explicit data range, valid windows) and `cc` (Pearson), and their means over bands.
"""

from rsinfer.metrics.image import cc, psnr, rmse, ssim
from rsinfer.metrics.q2n import q2n, q2n_map
from rsinfer.metrics.qnr import d_lambda, d_lambda_khan, d_s, hqnr, qnr
from rsinfer.metrics.reports import full_resolution, image_quality, reduced_resolution
from rsinfer.metrics.scc import scc
from rsinfer.metrics.spectral import ergas, sam
from rsinfer.metrics.uiqi import q_avg, uiqi, uiqi_blocks, uiqi_sliding

__all__ = [
    "cc", "d_lambda", "d_lambda_khan", "d_s", "ergas", "full_resolution", "hqnr", "image_quality", "psnr", "q2n",
    "q2n_map", "q_avg", "qnr", "reduced_resolution", "rmse", "sam", "scc", "ssim", "uiqi", "uiqi_blocks",
    "uiqi_sliding",
]
