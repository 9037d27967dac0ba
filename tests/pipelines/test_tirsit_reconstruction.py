"""TIRSIT reconstruction (eq. 8-12) against the paper's formulas written out independently, with substituted
networks (zero, oracle, local), the nodata-aware box filter, tiling with the stated overlap, and input errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rsinfer import models
from rsinfer.engines import create_engine
from rsinfer.pipelines import Tirsit
from rsinfer.pipelines.tirsit import TirsitResult, box_filter, local_weights, tirsit_signature
from tests.numerics import relative_error


def zero_network(source_diff: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(guide)


def box_mean(image: torch.Tensor, window: int) -> torch.Tensor:
    """f_s * image with plain torch: numpy-reflect padding (any size), then one 2-D average pool."""
    half = window // 2
    padded = np.pad(image.numpy(), ((0, 0), (0, 0), (half, half), (half, half)), mode="reflect")
    return F.avg_pool2d(torch.from_numpy(padded), window, stride=1)


def eq11_p_j(source_i: torch.Tensor, source_j: torch.Tensor, source_k: torch.Tensor, window: int,
             k: float) -> torch.Tensor:
    """Eq. (11) as printed: p_j = 1 / (1 + exp(−k·(|f_s * S_ik| − |f_s * S_ij|))), |·| averaged over bands."""
    d_ij = box_mean(source_i - source_j, window).abs().mean(1, keepdim=True)
    d_ik = box_mean(source_i - source_k, window).abs().mean(1, keepdim=True)
    return 1 / (1 + torch.exp(-k * (d_ik - d_ij)))


def scene(height: int = 29, width: int = 34, source: int = 2, target: int = 3):
    """S_i and two neighbour pairs: noise everywhere, and a change (an offset, as when water comes or goes) in the
    right half of S_j and the top half of S_k, so the weights vary over the image."""
    source_i = torch.rand(2, source, height, width)
    rows, cols = torch.arange(height)[:, None], torch.arange(width)
    source_j = source_i + 0.05 * torch.randn(2, source, height, width) + 0.1 * (cols >= width // 2)
    source_k = source_i + 0.05 * torch.randn(2, source, height, width) + 0.15 * (rows < height // 2)
    return source_i, (source_j, torch.rand(2, target, height, width)), (source_k, torch.rand(2, target, height, width))


def test_zero_network_gives_the_eq11_weighted_sum_of_the_neighbours() -> None:
    source_i, (source_j, target_j), (source_k, target_k) = scene()
    out = Tirsit(network=zero_network, window=9, k=10.0).translate(source_i, [(source_j, target_j),
                                                                                (source_k, target_k)])
    assert isinstance(out, TirsitResult)
    p_j = eq11_p_j(source_i, source_j, source_k, 9, 10.0)
    assert relative_error(out.weights[0], p_j) <= 1e-6 and relative_error(out.weights[1], 1 - p_j) <= 1e-6
    assert relative_error(out.target, p_j * target_j + (1 - p_j) * target_k) <= 1e-6
    assert torch.equal(out.per_neighbour[0], target_j) and torch.equal(out.per_neighbour[1], target_k)
    assert out.weights[0].shape == (2, 1, 29, 34)
    assert 0.05 < float(p_j.std())  # the weights vary over the image: the check is not a constant


def test_paper_window_51_on_a_smaller_image_reflects_repeatedly() -> None:
    source_i, (source_j, target_j), (source_k, target_k) = scene(height=20, width=31)
    out = Tirsit(network=zero_network).translate(source_i, [(source_j, target_j), (source_k, target_k)])
    assert relative_error(out.weights[0], eq11_p_j(source_i, source_j, source_k, 51, 10.0)) <= 1e-6


def test_oracle_network_reconstructs_the_target_exactly() -> None:
    source_i, (source_j, target_j), (source_k, target_k) = scene()
    target_i = torch.rand(2, 3, 29, 34)

    def oracle(source_diff: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        return target_i.repeat(2, 1, 1, 1) - guide  # the true T_ij = T_i − T_j for each neighbour's guide T_j

    out = Tirsit(network=oracle, window=7, k=10.0).translate(source_i, [(source_j, target_j), (source_k, target_k)])
    for estimate in out.per_neighbour:
        assert torch.allclose(estimate, target_i, atol=1e-6, rtol=0)
    assert torch.allclose(out.target, target_i, atol=1e-6, rtol=0)


def test_identical_neighbours_get_weights_one_half() -> None:
    source_i, (source_j, target_j), _ = scene()
    out = Tirsit(network=zero_network, window=5).translate(source_i, [(source_j, target_j), (source_j, target_j)])
    assert torch.equal(out.weights[0], torch.full_like(out.weights[0], 0.5))
    assert torch.equal(out.weights[1], out.weights[0])


def test_weights_move_toward_the_neighbour_whose_source_changed_less_locally() -> None:
    source_i = torch.rand(1, 2, 24, 40)
    small, large = 0.02 * torch.randn(1, 2, 24, 40), 0.3 + 0.1 * torch.randn(1, 2, 24, 40)
    left = torch.zeros(1, 1, 24, 40, dtype=torch.bool)
    left[..., :20] = True
    source_j = source_i + torch.where(left, small, large)  # j: unchanged on the left, changed on the right
    source_k = source_i + torch.where(left, large, small)  # k: the other way round
    targets = torch.rand(1, 3, 24, 40), torch.rand(1, 3, 24, 40)
    out = Tirsit(network=zero_network, window=5, k=10.0).translate(
        source_i, [(source_j, targets[0]), (source_k, targets[1])])
    p_j = out.weights[0][0, 0]
    assert (p_j[:, :17] > 0.8).all() and (p_j[:, 23:] < 0.2).all()
    steeper = Tirsit(network=zero_network, window=5, k=40.0).translate(
        source_i, [(source_j, targets[0]), (source_k, targets[1])])
    assert (steeper.weights[0][0, 0][:, :17] > p_j[:, :17]).all()  # a larger k trusts the closer date more


def test_softmax_weights_equal_eq11_for_two_and_generalise_to_more() -> None:
    d_j, d_k, d_l = torch.rand(2, 1, 9, 7), torch.rand(2, 1, 9, 7), torch.rand(2, 1, 9, 7)
    p_j, p_k = local_weights([d_j, d_k], k=10.0)
    assert relative_error(p_j, 1 / (1 + torch.exp(-10.0 * (d_k - d_j)))) <= 1e-6
    assert relative_error(p_k, 1 - p_j) <= 1e-6
    weights = local_weights([d_j, d_k, d_l], k=3.0)
    assert torch.allclose(sum(weights), torch.ones(2, 1, 9, 7), atol=1e-6, rtol=0)
    assert relative_error(weights[0] / weights[2], torch.exp(-3.0 * (d_j - d_l))) <= 1e-5  # softmax of −k·d


def test_three_neighbours_fuse_with_the_softmax_weights() -> None:
    source_i, first, second = scene()
    third = (source_i + 0.1 * torch.randn_like(source_i), torch.rand(2, 3, 29, 34))
    out = Tirsit(network=zero_network, window=7, k=5.0).translate(source_i, [first, second, third])
    d = [box_mean(source_i - s, 7).abs().mean(1, keepdim=True) for s, _ in (first, second, third)]
    e = [torch.exp(-5.0 * x) for x in d]
    expected = [x / (e[0] + e[1] + e[2]) for x in e]
    for weight, reference in zip(out.weights, expected):
        assert relative_error(weight, reference) <= 1e-6
    assert relative_error(out.target, sum(p * t for p, (_, t) in zip(expected, (first, second, third)))) <= 1e-6


def test_one_neighbour_is_its_own_estimate() -> None:
    source_i, (source_j, target_j), _ = scene()
    net = models.build("tirsit", widths=(4, 8)).eval()
    out = Tirsit(network=net, window=5).translate(source_i, [(source_j, target_j)])
    with torch.no_grad():
        expected = net(source_i - source_j, target_j) + target_j  # eq. (8)
    assert torch.equal(out.weights[0], torch.ones(2, 1, 29, 34))
    assert torch.equal(out.per_neighbour[0], expected) and torch.equal(out.target, expected)


def test_paper_network_through_the_pipeline_matches_eq_8_to_10() -> None:
    net = models.build("tirsit", source_channels=2, target_channels=3).eval()  # the API, paper defaults
    source_i, (source_j, target_j), (source_k, target_k) = scene(height=40, width=45)
    pipe = Tirsit(network=net, window=51, k=10.0)
    out = pipe.translate(source_i, neighbours=[(source_j, target_j), (source_k, target_k)])
    with torch.no_grad():
        from_j = net(source_i - source_j, target_j) + target_j
        from_k = net(source_i - source_k, target_k) + target_k
    p_j = eq11_p_j(source_i, source_j, source_k, 51, 10.0)
    assert relative_error(out.per_neighbour[0], from_j) <= 1e-6 and relative_error(out.per_neighbour[1], from_k) <= 1e-6
    assert relative_error(out.target, p_j * from_j + (1 - p_j) * from_k) <= 1e-6
    assert pipe.required_overlap == max(25, net.receptive_margin) == 93


@pytest.mark.parametrize("kind", ["torch", "onnxruntime"])
def test_an_engine_serving_the_network_works_in_the_pipeline(kind: str) -> None:
    if kind == "onnxruntime":
        pytest.importorskip("onnxruntime")
    net = models.build("tirsit", widths=(4, 8)).eval()
    source_i, first, second = scene(height=16, width=21)
    engine = create_engine(kind, net, tirsit_signature(2, 3), (torch.rand(1, 2, 8, 8), torch.rand(1, 3, 8, 8)),
                           threads=1)  # exported at 8 × 8, served at 16 × 21 with a batch of 2 neighbours × 2
    served = Tirsit(network=engine, window=7, receptive_margin=net.receptive_margin)
    eager = Tirsit(network=net, window=7)
    assert served.required_overlap == eager.required_overlap == max(3, net.receptive_margin) == 9
    assert relative_error(served.translate(source_i, [first, second]).target,
                          eager.translate(source_i, [first, second]).target) <= 1e-5


class LocalNetwork(torch.nn.Module):
    """A k × k convolution over [S_ij, T_j]: local within k//2 pixels, with an image-edge effect (zero padding)."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(5, 3, kernel, padding=kernel // 2)
        self.receptive_margin = kernel // 2

    def forward(self, source_diff: torch.Tensor, guide: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([source_diff, guide], 1))


@pytest.mark.parametrize("window, kernel, overlap", [(11, 5, 5), (5, 15, 7), (9, 9, 4)])
def test_a_tile_cut_with_the_stated_overlap_reproduces_the_whole_image_in_its_interior(window: int, kernel: int,
                                                                                       overlap: int) -> None:
    pipe = Tirsit(network=LocalNetwork(kernel).eval(), window=window, k=10.0)
    assert pipe.required_overlap == overlap  # max(s//2, margin): the weights read S, not the network's output
    source_i, (source_j, target_j), (source_k, target_k) = scene(height=60, width=70)
    whole = pipe.translate(source_i, [(source_j, target_j), (source_k, target_k)])
    top, left, height, width = 21, 17, 14, 25  # the kept part of the tile, well inside the image
    inside = (..., slice(top, top + height), slice(left, left + width))

    def tile(margin: int) -> TirsitResult:
        rows, cols = slice(top - margin, top + height + margin), slice(left - margin, left + width + margin)
        cut = [x[..., rows, cols] for x in (source_i, source_j, target_j, source_k, target_k)]
        result = pipe.translate(cut[0], [(cut[1], cut[2]), (cut[3], cut[4])])
        keep = (..., slice(margin, margin + height), slice(margin, margin + width))
        return TirsitResult(result.target[keep], [e[keep] for e in result.per_neighbour],
                            [p[keep] for p in result.weights])

    exact = tile(overlap)
    assert torch.equal(exact.weights[0], whole.weights[0][inside])  # the box filter is exact, bit for bit
    for estimate, reference in zip(exact.per_neighbour, whole.per_neighbour):
        assert relative_error(estimate, reference[inside]) <= 1e-6
    assert relative_error(exact.target, whole.target[inside]) <= 1e-6
    short = tile(overlap - 1)  # one pixel less: an edge (reflection or zero padding) reaches the kept pixels
    assert relative_error(short.target, whole.target[inside]) > 1e-5
    weights_short = relative_error(short.weights[0], whole.weights[0][inside])
    estimate_short = relative_error(short.per_neighbour[0], whole.per_neighbour[0][inside])
    assert (weights_short > 1e-5) == (window // 2 >= kernel // 2)
    assert (estimate_short > 1e-5) == (kernel // 2 >= window // 2)


def test_box_filter_averages_valid_pixels_only_and_is_nan_where_a_window_has_none() -> None:
    image = torch.randn(1, 2, 6, 9)
    valid = torch.rand(1, 1, 6, 9) > 0.4
    valid[..., :, 6:] = False  # columns 6-8 are nodata: pixel (r, 8)'s 3 × 3 window (cols 7, 8, 7) holds nothing valid
    filtered = box_filter(image, 3, valid)
    padded = np.pad(image.numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
    mask = np.pad(valid.numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect")
    expected = np.full((1, 2, 6, 9), np.nan)
    for r in range(6):
        for c in range(9):
            window_mask = mask[0, 0, r:r + 3, c:c + 3]
            if window_mask.any():
                expected[0, :, r, c] = padded[0, :, r:r + 3, c:c + 3][:, window_mask].mean(-1)
    assert torch.isnan(filtered[..., 8]).all()
    assert np.array_equal(np.isnan(expected), torch.isnan(filtered).numpy())
    finite = ~np.isnan(expected)
    assert np.allclose(filtered.numpy()[finite], expected[finite], atol=1e-6, rtol=0)
    assert relative_error(box_filter(image, 3), box_mean(image, 3)) <= 1e-6  # no mask: the plain box mean


def test_nodata_neighbour_gets_no_weight_and_no_usable_neighbour_gives_nan() -> None:
    source_i, (source_j, target_j), (source_k, target_k) = scene(height=12, width=16)
    valid_j = torch.ones(2, 1, 12, 16, dtype=torch.bool)
    valid_j[..., 4:7, 5:9] = False  # j is nodata in a block
    valid_k = torch.ones_like(valid_j)
    valid_k[..., 5, 6] = False  # k is nodata at one pixel of that block
    out = Tirsit(network=zero_network, window=5).translate(
        source_i, [(source_j, target_j), (source_k, target_k)], valid=[valid_j, valid_k])
    p_j, p_k = out.weights
    assert torch.equal(p_j[~valid_j & valid_k], torch.zeros_like(p_j[~valid_j & valid_k]))
    assert torch.equal(out.target[..., 4, 5], target_k[..., 4, 5])  # only k is usable there
    assert torch.isnan(out.target[..., 5, 6]).all() and torch.isnan(p_j[..., 5, 6]).all()
    assert torch.allclose((p_j + p_k)[valid_j | valid_k], torch.ones(()), atol=1e-6)
    # At a valid pixel next to the block, each window average drops its invalid pixels: recompute eq. (11) by hand.
    def dissimilarity(source: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        window, keep = (source_i - source)[0, :, 2:7, 2:7], valid[0, 0, 2:7, 2:7]  # the 5 × 5 window of (4, 4)
        return window[:, keep].mean(-1).abs().mean()

    expected = 1 / (1 + torch.exp(-10.0 * (dissimilarity(source_k, valid_k) - dissimilarity(source_j, valid_j))))
    assert abs(float(p_j[0, 0, 4, 4]) - float(expected)) <= 1e-6


def test_input_errors_name_the_problem() -> None:
    net = models.build("tirsit", widths=(4, 8)).eval()
    pipe = Tirsit(network=net, window=5)
    source_i, (source_j, target_j), (source_k, target_k) = scene(height=16, width=16)
    with pytest.raises(ValueError, match="at least one neighbour"):
        pipe.translate(source_i, [])
    with pytest.raises(ValueError, match=r"different band counts \[3, 2\]"):
        Tirsit(network=zero_network, window=5).translate(source_i, [(source_j, target_j),
                                                                     (source_k, target_k[:, :2])])
    with pytest.raises(ValueError, match="source of neighbour 1 has shape"):
        pipe.translate(source_i, [(source_j, target_j), (source_k[..., :15], target_k)])
    with pytest.raises(ValueError, match="target of neighbour 0 has shape"):
        pipe.translate(source_i, [(source_j, target_j[..., :12, :])])
    with pytest.raises(ValueError, match=r"source has 3 band\(s\); the network takes 2"):
        pipe.translate(torch.rand(2, 3, 16, 16), [(torch.rand(2, 3, 16, 16), target_j)])
    with pytest.raises(ValueError, match=r"targets have 2 band\(s\); the network takes 3"):
        pipe.translate(source_i, [(source_j, target_j[:, :2])])
    with pytest.raises(ValueError, match="one mask per neighbour"):
        pipe.translate(source_i, [(source_j, target_j)], valid=[])
    with pytest.raises(ValueError, match="window"):
        Tirsit(network=net, window=50)
    with pytest.raises(ValueError, match="k "):
        Tirsit(network=net, k=0.0)
    with pytest.raises(ValueError, match="valid must be a bool mask"):
        box_filter(source_i, 3, torch.ones(2, 1, 16, 16))
