"""Q2n (Q4 for 4 bands, Q8 for 8): the hypercomplex UIQI of Garzelli and Nencini (2009), as DLPan-Toolbox's q2n.m.

Each pixel's spectrum is a hypercomplex number with 2^k components. Per block of block × block pixels, with the
reference z_r and the fused z_f:

1. every band of both images is normalised with the REFERENCE block's statistics, z → (z − μ_b)/σ_b + 1 (σ with
   1/(N−1); σ = 0 becomes machine eps; where μ_b = 0 the fused band is only shifted, z − μ_b + 1, as onions_quality.m
   does), and the fused number is conjugated (components 2..n negated);
2. with N = block², f = N/(N−1), m = the block mean of each number, and V = f·(mean|z_r|² + mean|z_f̄|² − |m_r|² −
   |m_f̄|²) the summed variances,

       q = f·(mean(z_r · z_f̄) − m_r · m_f̄) · (2 |m_r| |m_f̄| / (|m_r|² + |m_f̄|²)) · (2 / V),

   a hypercomplex number whose norm is the block's quality (where V = 0, q is |q| = the middle factor);
3. Q2n is the mean of |q| over the blocks.

The product · is the toolbox's recursive Cayley–Dickson ("onion") product: with x = (a, b), y = (c, d) split into
halves and conj(v) = (v_1, −v_2, ..., −v_n),

    x · y = (a·c − conj(d)·b,  conj(a)·conj(d) + c·conj(b)),      real numbers multiply plainly.

For 2 components this is the complex product. For 4 it is the Hamilton quaternion product with the k component
negated, which leaves every |q| unchanged.

Toolbox conventions reproduced here:
- block grid: blocks of `block` at a step of `block`; if rows or cols are not a multiple, both images are
  mirror-padded at the bottom and right (symmetric: the edge pixel is repeated, ...c b a | a b c...) to
  ceil(n / block) · block. The pad must not exceed the image (MATLAB's indexing fails there; here a ValueError).
- uint16 cast AFTER padding: both images go through MATLAB's uint16(): values round to the nearest integer with
  ties away from zero (2.5 → 3, 1.49 → 1, not truncation), negatives saturate to 0, values above 65535 to 65535,
  NaN to 0. So inputs must be DN; a [0, 1]-scaled image collapses to zeros and ones.
- band count padded with zero bands to the next power of two (3 → 4, 5..7 → 8).
"""

from __future__ import annotations

import numpy as np

from rsinfer.metrics.inputs import as_bands, check_same_shape

EPS = float(np.finfo(np.float64).eps)


def q2n(fused: np.ndarray, reference: np.ndarray, block: int = 32) -> float:
    """Q2n of a fused image against its reference, both (bands, rows, cols) in DN (q2n.m with shift = block)."""
    return float(q2n_map(fused, reference, block).mean())


def q2n_map(fused: np.ndarray, reference: np.ndarray, block: int = 32) -> np.ndarray:
    """The per-block quality |q|, (ceil(rows/block), ceil(cols/block)); its mean is Q2n."""
    fused, reference = as_bands(fused, "fused"), as_bands(reference, "reference")
    check_same_shape(fused, reference, ("fused", "reference"))
    if not isinstance(block, (int, np.integer)) or block < 2:
        raise ValueError(f"block must be an integer >= 2, got {block!r}")
    reference = pad_bands_to_power_of_two(to_uint16(mirror_pad_to_block(reference, block)))
    fused = pad_bands_to_power_of_two(to_uint16(mirror_pad_to_block(fused, block)))
    bands, rows, cols = reference.shape
    grid = (rows // block, cols // block)
    quality = np.empty(grid)
    for i in range(grid[0]):                       # one row of blocks at a time bounds the memory
        strip = slice(i * block, (i + 1) * block)
        quality[i] = np.linalg.norm(_block_q(_blocks(reference[:, strip], block), _blocks(fused[:, strip], block)),
                                    axis=0)
    return quality


def onion_product(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The toolbox's Cayley–Dickson product of hypercomplex numbers stored along axis 0 (2^k components)."""
    n = x.shape[0]
    if n == 1:
        return x * y
    if n % 2:
        raise ValueError(f"hypercomplex numbers need a power-of-two component count, got {n}")
    a, b, c, d = x[: n // 2], x[n // 2:], y[: n // 2], y[n // 2:]
    return np.concatenate([onion_product(a, c) - onion_product(conjugate(d), b),
                           onion_product(conjugate(a), conjugate(d)) + onion_product(c, conjugate(b))])


def conjugate(x: np.ndarray) -> np.ndarray:
    """Negate components 2..n (axis 0)."""
    return np.concatenate([x[:1], -x[1:]])


def to_uint16(image: np.ndarray) -> np.ndarray:
    """MATLAB's uint16() cast, returned as float64: round half away from zero, saturate to [0, 65535], NaN → 0."""
    rounded = np.floor(np.nan_to_num(image, nan=0.0) + 0.5)   # after the clip below every value is >= 0, where
    return np.clip(rounded, 0.0, 65535.0)                     # floor(x + 0.5) rounds ties away from zero


def pad_bands_to_power_of_two(image: np.ndarray) -> np.ndarray:
    """Append zero bands up to the next power of two: (B, H, W) -> (2^ceil(log2 B), H, W)."""
    bands = image.shape[0]
    target = 1 << (bands - 1).bit_length()
    return np.concatenate([image, np.zeros((target - bands, *image.shape[1:]))]) if target > bands else image


def mirror_pad_to_block(image: np.ndarray, block: int) -> np.ndarray:
    """Pad rows and cols at the bottom/right by symmetric mirroring up to a multiple of `block` (q2n.m)."""
    rows, cols = image.shape[-2:]
    pad_rows, pad_cols = -rows % block, -cols % block
    if pad_rows > rows or pad_cols > cols:
        raise ValueError(f"image {rows} x {cols} is too small for block {block}: the mirror pad to a block multiple "
                         f"({pad_rows} rows, {pad_cols} cols) would exceed the image itself")
    return np.pad(image, ((0, 0), (0, pad_rows), (0, pad_cols)), mode="symmetric")


def _blocks(strip: np.ndarray, block: int) -> np.ndarray:
    """(n, block, cols) -> (n, cols/block, block²): the blocks of one strip, pixels flattened."""
    n, _, cols = strip.shape
    return strip.reshape(n, block, cols // block, block).transpose(0, 2, 1, 3).reshape(n, cols // block, -1)


def _block_q(reference: np.ndarray, fused: np.ndarray) -> np.ndarray:
    """The hypercomplex quality q of each block: (n, blocks, N) pixels -> (n, blocks)."""
    n_pixels = reference.shape[-1]
    f = n_pixels / (n_pixels - 1)
    mean = reference.mean(axis=-1, keepdims=True)                   # (n, blocks, 1)
    std = reference.std(axis=-1, ddof=1, keepdims=True)
    std = np.where(std == 0, EPS, std)
    z_ref = (reference - mean) / std + 1
    z_fus = conjugate(np.where(mean == 0, fused - mean + 1, (fused - mean) / std + 1))
    m_ref, m_fus = z_ref.mean(axis=-1), z_fus.mean(axis=-1)         # (n, blocks)
    norm2_m_ref, norm2_m_fus = (m_ref ** 2).sum(axis=0), (m_fus ** 2).sum(axis=0)   # (blocks,)
    variances = f * ((z_ref ** 2).sum(axis=0).mean(axis=-1) + (z_fus ** 2).sum(axis=0).mean(axis=-1)
                     - norm2_m_ref - norm2_m_fus)
    mean_bias = 2 * np.sqrt(norm2_m_ref * norm2_m_fus) / (norm2_m_ref + norm2_m_fus)
    flat = variances == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        q = (f * onion_product(z_ref, z_fus).mean(axis=-1) - f * onion_product(m_ref, m_fus)) \
            * mean_bias * 2 / variances                                # (n, blocks)
    q[:, flat] = 0.0
    q[-1, flat] = mean_bias[flat]            # the toolbox puts the flat block's quality in the last component
    return q
