"""CrossDiff pansharpening: a PAN band and a 4× coarser MS image (DN) in, sharpened MS on the PAN grid out.

One deterministic forward once the feature noise is fixed (the official `fusion.py` recipe; no sampling loop):

    PAN_0 = pan_dn / dn_scale                                   (B, 1, H, W)
    MS_0  = bicubic×4(ms_dn) / dn_scale                         (B, S, H, W)  align_corners=False, a = −0.75, no
                                                                              antialias, on the DN; not clipped
    P2M features: encode(x_t = a·(2·MS_0 − 1) + s·n_p2m,  cond = 2·PAN_0 − 1,  t)
    M2P features: encode(x_t = a·(2·PAN_0 − 1) + s·n_m2p, cond = 2·MS_0 − 1,  t)
    sr_raw = fusion(MS_0, P2M features, M2P features)          = MS_0 + residual
    sr     = clamp(sr_raw, 0, 1)                                the deliverable, on the DN / dn_scale scale

t is the fusion head's feature step (officially the integer 50, given to both U-Nets as is), a = float32(√ᾱ) with
ᾱ = ∏_{i<t} (1 − β_i) of the cosine schedule (upstream `sqrt_alphas_cumprod_prev[t]`), and s = √(1 − a²) evaluated
in float32 from the float32 a. The official `dn_scale` is 2047 for every sensor (11-bit); pass the sensor's own.

Noise: `noise={"p2m": n_p2m, "m2p": n_m2p}` is used as given. Without it the draws are window-seeded
(`rsinfer.tiling.noise`, streams "crossdiff-p2m" and "crossdiff-m2p", step 0): each sample's noise is the crop under
its window of one field laid on the output (PAN) grid, so tiles cut from a scene see the same noise as the whole
scene at the same place. Upstream draws `randn_like` from the global generator instead (P2M first, then M2P).

Sizes: H and W must be multiples of 4 (the MS is exactly H/4 × W/4) and at least 8. The U-Nets need multiples of 8:
other sizes are padded at the bottom and right by reflection (of MS_0 after the bicubic upsampling, and of PAN_0)
to the next multiple of 8, run, and cropped back; features are cropped to ⌈H/2^k⌉ × ⌈W/2^k⌉. Padding only at the
bottom and right keeps the grid origin, so window-seeded noise on the padded tile continues the scene's noise field.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rsinfer.models.crossdiff import SIZE_MULTIPLE, CrossDiffUNet
from rsinfer.models.crossdiff_fusion import CrossDiffFusion
from rsinfer.samplers.cosine_schedule import cosine_schedule
from rsinfer.tiling.noise import batch_noise
from rsinfer.tiling.windows import Window

RATIO = 4  # PAN / MS resolution ratio
NOISE_STREAMS = {"p2m": "crossdiff-p2m", "m2p": "crossdiff-m2p"}
DEFAULT_DN_SCALE = 2047.0  # the official hard-coded scale (11-bit sensors)


@dataclass(frozen=True)
class SharpenResult:
    """sr: (B, S, H, W) clamped to [0, 1] (DN / dn_scale); sr_raw: the head output before the clamp; ms_up: MS_0,
    the bicubic ×4 MS / dn_scale; features: {"p2m": [h1, h2, h3, h4], "m2p": [h1, h2, h3, h4]}."""

    sr: torch.Tensor
    sr_raw: torch.Tensor
    ms_up: torch.Tensor
    features: dict[str, list[torch.Tensor]]


class CrossDiff:
    """CrossDiff pansharpening over a P2M U-Net, an M2P U-Net and the fusion head."""

    def __init__(self, p2m: CrossDiffUNet, m2p: CrossDiffUNet, fusion: CrossDiffFusion,
                 dn_scale: float = DEFAULT_DN_SCALE, seed: int = 0) -> None:
        for name, net, direction in (("p2m", p2m, "p2m"), ("m2p", m2p, "m2p")):
            if not isinstance(net, CrossDiffUNet) or net.config.direction != direction:
                got = net.config.direction if isinstance(net, CrossDiffUNet) else type(net).__name__
                raise ValueError(f"{name} must be a CrossDiff U-Net with direction={direction!r}, got {got!r}")
        if not isinstance(fusion, CrossDiffFusion):
            raise ValueError(f"fusion must be a CrossDiff fusion head, got {type(fusion).__name__}")
        bands = {"p2m": p2m.config.spectrun_num, "m2p": m2p.config.spectrun_num,
                 "fusion": fusion.config.spectral_num}
        if len(set(bands.values())) != 1:
            raise ValueError(f"the three networks must agree on the MS band count, got {bands}")
        head_widths = tuple(reversed(fusion.config.widths))  # per-network widths the head expects for h1 … h4
        for name, net in (("p2m", p2m), ("m2p", m2p)):
            if net.config.channels != head_widths:
                raise ValueError(f"{name} feature widths {list(net.config.channels)} do not match the fusion head, "
                                 f"which expects {list(head_widths)} for h1 … h4")
        if isinstance(dn_scale, bool) or not isinstance(dn_scale, numbers.Real) or not (
                math.isfinite(dn_scale) and dn_scale > 0):
            raise ValueError(f"dn_scale must be a positive finite number, got {dn_scale!r}")
        self.p2m, self.m2p, self.fusion = p2m.eval(), m2p.eval(), fusion.eval()
        self.bands = bands["fusion"]
        self.dn_scale = float(dn_scale)
        self.seed = int(seed)
        self.feature_step = fusion.config.feature_step
        level = cosine_schedule().signal_level(self.feature_step)
        self.signal_scale = torch.tensor(level, dtype=torch.float32)  # a
        self.noise_scale = (1 - self.signal_scale ** 2).sqrt()  # s, in float32 from the float32 a

    # ---- per-tile math --------------------------------------------------------------------------------------------

    @torch.no_grad()
    def sharpen(self, pan_dn: torch.Tensor, ms_dn: torch.Tensor, noise: Mapping[str, torch.Tensor] | None = None,
                *, windows: Sequence[Window] | None = None) -> SharpenResult:
        """pan_dn (B, 1, H, W) and ms_dn (B, S, H/4, W/4) in DN → `SharpenResult`.

        `noise` = {"p2m": (B, S, H8, W8), "m2p": (B, 1, H8, W8)} with H8, W8 = H, W rounded up to a multiple of 8;
        without it, window-seeded draws under `windows` (one per sample, each H × W, on the output grid; None: the
        tensor is the whole grid, Window(0, 0, H, W) per sample).
        """
        pan_dn, ms_dn = self._check_inputs(pan_dn, ms_dn)
        batch, _, height, width = pan_dn.shape
        padded = (_round_up(height), _round_up(width))
        if noise is None:
            noise = self.feature_noise(batch, height, width, windows)
        elif windows is not None:
            raise ValueError("give either noise or windows (window-seeded noise), not both")
        noise = self._check_noise(noise, batch, padded, pan_dn.device)

        pan0 = pan_dn / self.dn_scale  # (B, 1, H, W)
        ms0 = F.interpolate(ms_dn, scale_factor=RATIO, mode="bicubic", align_corners=False) / self.dn_scale
        pad = (0, padded[1] - width, 0, padded[0] - height)  # bottom and right only: the grid origin stays
        ms0_padded = F.pad(ms0, pad, mode="reflect")  # (B, S, H8, W8)
        pan_signal = F.pad(pan0, pad, mode="reflect") * 2 - 1  # (B, 1, H8, W8) in [−1, 1]
        features = self.encode(pan_signal, ms0_padded * 2 - 1, noise)
        sr_raw = self.fusion(ms0_padded, features["p2m"], features["m2p"])[..., :height, :width]  # (B, S, H, W)
        features = {name: [f[..., :-(-height // 2 ** k), :-(-width // 2 ** k)] for k, f in enumerate(levels)]
                    for name, levels in features.items()}
        return SharpenResult(sr=sr_raw.clamp(0, 1), sr_raw=sr_raw, ms_up=ms0, features=features)

    def encode(self, pan_signal: torch.Tensor, ms_signal: torch.Tensor,
               noise: Mapping[str, torch.Tensor]) -> dict[str, list[torch.Tensor]]:
        """Both U-Nets' encoder features from [−1, 1] PAN (B, 1, H8, W8) and MS (B, S, H8, W8), noised at the
        feature step with the given standard-normal noise."""
        a, s = self.signal_scale, self.noise_scale
        t = torch.full((pan_signal.shape[0],), self.feature_step, dtype=torch.int64, device=pan_signal.device)
        return {"p2m": self.p2m.encode(a * ms_signal + s * noise["p2m"], pan_signal, t),
                "m2p": self.m2p.encode(a * pan_signal + s * noise["m2p"], ms_signal, t)}

    def feature_noise(self, batch: int, height: int, width: int,
                      windows: Sequence[Window] | None = None) -> dict[str, torch.Tensor]:
        """Window-seeded standard-normal noise for an H × W tile batch: {"p2m": (B, S, H8, W8), "m2p": (B, 1, H8,
        W8)}; beyond the window (the padding to multiples of 8) the field continues down and to the right."""
        if windows is None:
            windows = [Window(0, 0, height, width)] * batch
        if len(windows) != batch:
            raise ValueError(f"windows must hold one Window per sample ({batch}), got {len(windows)}")
        for window in windows:
            if (window.height, window.width) != (height, width):
                raise ValueError(f"window {window} does not match the {height}x{width} tile it should locate")
        size = (_round_up(height), _round_up(width))
        return {name: batch_noise(self.seed, NOISE_STREAMS[name], 0, windows, channels, size=size)
                for name, channels in (("p2m", self.bands), ("m2p", 1))}

    # ---- checks ---------------------------------------------------------------------------------------------------

    def _check_inputs(self, pan_dn: torch.Tensor, ms_dn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if pan_dn.ndim != 4 or ms_dn.ndim != 4:
            raise ValueError(f"pan_dn {tuple(pan_dn.shape)} and ms_dn {tuple(ms_dn.shape)} must be (B, C, H, W)")
        if pan_dn.shape[1] != 1:
            raise ValueError(f"the PAN must have exactly one band, got {pan_dn.shape[1]}")
        if ms_dn.shape[1] != self.bands:
            raise ValueError(f"the MS has {ms_dn.shape[1]} bands but the networks take {self.bands}")
        batch, _, height, width = pan_dn.shape
        if ms_dn.shape[0] != batch:
            raise ValueError(f"PAN and MS batch sizes differ: {batch} vs {ms_dn.shape[0]}")
        if height % RATIO or width % RATIO or (height, width) != tuple(RATIO * n for n in ms_dn.shape[-2:]):
            raise ValueError(f"the MS must be exactly 1/{RATIO} of the PAN (H and W multiples of {RATIO}): PAN "
                             f"{height}x{width}, MS {ms_dn.shape[-2]}x{ms_dn.shape[-1]}")
        if height < SIZE_MULTIPLE or width < SIZE_MULTIPLE:
            raise ValueError(f"the PAN must be at least {SIZE_MULTIPLE}x{SIZE_MULTIPLE}, got {height}x{width}")
        for name, image in (("pan_dn", pan_dn), ("ms_dn", ms_dn)):
            if not torch.isfinite(image).all():
                raise ValueError(f"{name} holds {int((~torch.isfinite(image)).sum())} non-finite value(s); fill "
                                 f"nodata before sharpening")
        return pan_dn.float(), ms_dn.float()

    def _check_noise(self, noise: Mapping[str, torch.Tensor], batch: int, padded: tuple[int, int],
                     device: torch.device) -> dict[str, torch.Tensor]:
        if set(noise) != set(NOISE_STREAMS):
            raise ValueError(f"noise must have the keys {sorted(NOISE_STREAMS)}, got {sorted(noise)}")
        checked = {}
        for name, channels in (("p2m", self.bands), ("m2p", 1)):
            expected = (batch, channels, *padded)
            if tuple(noise[name].shape) != expected:
                raise ValueError(f"noise[{name!r}] has shape {tuple(noise[name].shape)}, expected {expected} "
                                 f"(H and W rounded up to multiples of {SIZE_MULTIPLE})")
            checked[name] = noise[name].to(device=device, dtype=torch.float32)
        return checked


def _round_up(size: int) -> int:
    return -(-size // SIZE_MULTIPLE) * SIZE_MULTIPLE
