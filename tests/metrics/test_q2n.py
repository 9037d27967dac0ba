"""Q2n (q2n.m): hypercomplex UIQI, checked against quaternion / octonion algebra written out here, and the toolbox's
edge-case conventions (mirror padding, power-of-two bands, the uint16 cast)."""

from __future__ import annotations

import numpy as np
import pytest

from rsinfer.metrics import q2n, q2n_map
from rsinfer.metrics.q2n import onion_product, to_uint16

BLOCK = 32


def _hamilton(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Quaternion product of (4, ...) arrays, p = p0 + p1 i + p2 j + p3 k."""
    a1, b1, c1, d1 = p
    a2, b2, c2, d2 = q
    return np.stack([a1 * a2 - b1 * b2 - c1 * c2 - d1 * d2,
                     a1 * b2 + b1 * a2 + c1 * d2 - d1 * c2,
                     a1 * c2 - b1 * d2 + c1 * a2 + d1 * b2,
                     a1 * d2 + b1 * c2 - c1 * b2 + d1 * a2])


def _octonion(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Octonion product of (8, ...) arrays by the textbook Cayley–Dickson doubling of the quaternions:
    (a, b)(c, d) = (ac − d* b, d a + b c*)."""
    def conj(x):
        return np.concatenate([x[:1], -x[1:]])
    a, b, c, d = p[:4], p[4:], q[:4], q[4:]
    return np.concatenate([_hamilton(a, c) - _hamilton(conj(d), b), _hamilton(d, a) + _hamilton(b, conj(c))])


def _q2n_by_covariance(fused: np.ndarray, reference: np.ndarray, product) -> float:
    """Garzelli–Nencini: per block, Q = 4 |σ_xy| |μx| |μy| / ((σx² + σy²)(|μx|² + |μy|²)) with the hypercomplex
    covariance σ_xy = E[(x − μx)(y − μy)*] (1/(N−1)), after each band of both images is standardised with the
    reference block's mean and sample std and shifted by +1."""
    bands, rows, cols = reference.shape
    qualities = []
    for r in range(0, rows, BLOCK):
        for c in range(0, cols, BLOCK):
            x = reference[:, r:r + BLOCK, c:c + BLOCK].reshape(bands, -1)
            y = fused[:, r:r + BLOCK, c:c + BLOCK].reshape(bands, -1)
            mean, std = x.mean(axis=1, keepdims=True), x.std(axis=1, ddof=1, keepdims=True)
            x, y = (x - mean) / std + 1, (y - mean) / std + 1
            mx, my = x.mean(axis=1), y.mean(axis=1)
            dx, dy = x - mx[:, None], y - my[:, None]
            dy_conj = np.concatenate([dy[:1], -dy[1:]])
            n = x.shape[1]
            cov = product(dx, dy_conj).sum(axis=1) / (n - 1)
            var_x, var_y = (dx ** 2).sum() / (n - 1), (dy ** 2).sum() / (n - 1)
            norm_mx, norm_my = np.linalg.norm(mx), np.linalg.norm(my)
            qualities.append(4 * np.linalg.norm(cov) * norm_mx * norm_my
                             / ((var_x + var_y) * (norm_mx ** 2 + norm_my ** 2)))
    return float(np.mean(qualities))


def _dn_pair(bands: int, rows: int, cols: int, seed: int, noise: float = 120.0) -> tuple[np.ndarray, np.ndarray]:
    """Integer DN images (so the uint16 cast is exact), with band-correlated content."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(200, 1500, (1, rows, cols))
    reference = np.round(base * rng.uniform(0.6, 1.2, (bands, 1, 1)) + rng.normal(0, 60, (bands, rows, cols)))
    fused = np.round(reference + rng.normal(0, noise, reference.shape) + rng.uniform(-40, 40, (bands, 1, 1)))
    return np.clip(fused, 0, 2047), np.clip(reference, 0, 2047)


def test_q2n_of_an_image_with_itself_is_one():
    for bands in (3, 4, 8):
        _, reference = _dn_pair(bands, 70, 45, seed=bands)
        assert q2n(reference, reference) == pytest.approx(1.0, abs=1e-12)


def test_q4_matches_a_quaternion_computation():
    fused, reference = _dn_pair(4, 64, 96, seed=10)
    expected = _q2n_by_covariance(fused, reference, _hamilton)
    assert 0.5 < expected < 0.99
    assert q2n(fused, reference) == pytest.approx(expected, rel=1e-10)


def test_q8_matches_an_octonion_computation():
    fused, reference = _dn_pair(8, 64, 64, seed=11)
    expected = _q2n_by_covariance(fused, reference, _octonion)
    assert q2n(fused, reference) == pytest.approx(expected, rel=1e-10)


def test_the_onion_product_is_complex_multiplication_for_two_components():
    p, q = np.array([1.5, -2.0]), np.array([0.5, 3.0])
    z = complex(*p) * complex(*q)
    np.testing.assert_allclose(onion_product(p, q), [z.real, z.imag], rtol=1e-15)


def test_the_onion_product_is_hamilton_up_to_the_sign_of_k():
    rng = np.random.default_rng(12)
    p, q = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    np.testing.assert_allclose(onion_product(p, q), _hamilton(p, q) * np.array([1, 1, 1, -1])[:, None], rtol=1e-13)


def test_three_bands_are_padded_with_a_zero_band_to_four():
    fused, reference = _dn_pair(3, 64, 64, seed=13)
    zero = np.zeros((1, 64, 64))
    padded = q2n(np.concatenate([fused, zero]), np.concatenate([reference, zero]))
    assert q2n(fused, reference) == padded
    # and the padded Q4 is not the Q4 of the same image with a copied band: the zero band is what counts
    assert padded != pytest.approx(q2n(np.concatenate([fused, fused[:1]]), np.concatenate([reference, reference[:1]])))


def test_five_bands_are_padded_with_zero_bands_to_eight():
    fused, reference = _dn_pair(5, 32, 64, seed=14)
    zeros = np.zeros((3, 32, 64))
    assert q2n(fused, reference) == q2n(np.concatenate([fused, zeros]), np.concatenate([reference, zeros]))


def test_images_off_the_block_grid_are_mirror_padded_bottom_and_right():
    rows, cols = 70, 45                       # -> 96 x 64: 26 rows and 19 cols of mirror
    fused, reference = _dn_pair(4, rows, cols, seed=15)
    row_index = np.r_[0:rows, rows - 1:rows - 1 - 26:-1]    # ... 68, 69 | 69, 68, ... (edge repeated)
    col_index = np.r_[0:cols, cols - 1:cols - 1 - 19:-1]

    def mirrored(image):
        return image[:, row_index][:, :, col_index]

    assert mirrored(reference).shape == (4, 96, 64)
    assert q2n_map(fused, reference).shape == (3, 2)
    assert q2n(fused, reference) == pytest.approx(q2n(mirrored(fused), mirrored(reference)), rel=1e-14)
    expected = _q2n_by_covariance(mirrored(fused), mirrored(reference), _hamilton)
    assert q2n(fused, reference) == pytest.approx(expected, rel=1e-10)


def test_mirror_padding_larger_than_the_image_is_an_error():
    with pytest.raises(ValueError, match="too small for block 32"):
        q2n(np.ones((4, 10, 40)), np.ones((4, 10, 40)))


def test_the_uint16_cast_rounds_half_away_from_zero_and_saturates():
    values = np.array([-3.0, -0.5, 0.49, 0.5, 1.5, 2.5, 2.4999, 65535.4, 70000.0, np.nan])
    np.testing.assert_array_equal(to_uint16(values), [0, 0, 0, 1, 2, 3, 2, 65535, 65535, 0])


def test_q2n_sees_the_image_only_through_the_uint16_cast():
    fused, reference = _dn_pair(4, 64, 64, seed=16)
    base = q2n(fused, reference)
    assert q2n(fused + 0.49, reference - 0.3) == base                 # fractions below .5 round away
    assert q2n(fused + 0.5, reference) == q2n(fused + 1, reference)   # ties round up, not down (no truncation)
    assert q2n(fused + 0.5, reference) != base
    negative = fused - 1000.0                                         # negatives saturate to 0
    assert q2n(negative, reference) == q2n(np.maximum(negative, 0), reference)
    # a [0, 1]-scaled image is cast to zeros and ones: Q2n is not scale-free, the inputs must be DN
    assert q2n(fused / 2047, reference / 2047) != pytest.approx(base, abs=0.05)


def test_a_flat_reference_block_uses_the_toolbox_special_cases():
    # identical constant blocks: the variances vanish and q is the mean-bias term, 1
    flat = np.full((4, 32, 32), 700.0)
    assert q2n(flat, flat) == 1.0
    # a constant fused block against a constant reference: reference bands standardise to 1 (σ = eps), the fused
    # ones to (c_f − c_r)/eps + 1 =: d, conjugated; Q = 2|m_r||m_f| / (|m_r|² + |m_f|²) with |m_r| = 2, |m_f| = 2|d|
    d = (701.0 - 700.0) / np.finfo(float).eps + 1
    expected = 2 * 2 * (2 * d) / (4 + 4 * d * d)
    assert q2n(np.full((4, 32, 32), 701.0), flat) == pytest.approx(expected, rel=1e-12)


def test_a_zero_mean_reference_band_only_shifts_the_fused_band():
    # onions_quality.m: where the reference band's block mean is 0, the fused band becomes z − 0 + 1 (no division
    # by σ = eps). Band 2 of the reference is 0, of the fused 5: x = z + 1i, y = z + 6i as complex numbers, with z
    # the standardised band 1, so |σ_xy| / (σx² + σy²) = 1/2 and Q = 2 |1 + i| |1 + 6i| / (2 + 37).
    rng = np.random.default_rng(17)
    band = np.round(rng.uniform(100, 2000, (1, 32, 32)))
    reference = np.concatenate([band, np.zeros((1, 32, 32))])
    fused = np.concatenate([band, np.full((1, 32, 32), 5.0)])
    assert q2n(fused, reference) == pytest.approx(2 * np.sqrt(2 * 37) / 39, rel=1e-12)
