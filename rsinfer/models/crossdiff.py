"""CrossDiff stage-1 U-Nets: the P2M (PAN → MS) and M2P (MS → PAN) ε-predictors of "CrossDiff: Exploring
Self-Supervised Representation of Pansharpening via Cross-Predictive Diffusion Model" (Xing et al., IEEE TIP 33,
2024), in the official key layout of codgodtao/CrossDiff (`Multi_branch_Unet`, model/easy_unet/pan_ms_v2.py and
ms_pan_v2.py).

With S the MS band count, P2M denoises the noisy LMS (S channels) given the PAN, M2P the noisy PAN (1 channel) given
the LMS; the two differ only in the width of the output conv. t is the *integer* diffusion step (1 … 1000).

    e  = SiLU(embed.0(PE(t)))      PE(t) = [cos(t·f_k), sin(t·f_k)], f_k = 10000^(−k/16), k = 0…15: cos half first
    h1 = conv1(cat[x_t, cond])                                    (B, c0, H, W)    no norm, no activation
    h2 = res3(h1),  h3 = down1(h2),  h4 = down2(h3)               (B, c1, H/2) (B, c2, H/4) (B, c3, H/8)
         down block(h) = conv3×3 stride 2 (SiLU(GroupNorm(h + dense1(e))))
    decoder: up1(h4) ─► +dense2(e), GN, SiLU ─► up2(cat[·, h3]) ─► +dense3(e), GN, SiLU ─► up3(cat[·, h2])
             ─► +dense4(e), GN, SiLU ─► final1(cat[·, h1]) ─► +dense5(e), GN, SiLU ─► final2(cat[·, x_t, cond])
             (up* are 3×3 stride-2 transposed convs with output padding 1; final* are 3×3 convs)

`encode` returns [h1, h2, h3, h4], the features CrossDiff's fusion head consumes; pansharpening never runs the
decoder. H and W must be multiples of 8 (three stride-2 levels that the decoder undoes exactly).

GroupNorm groups follow the official rule, fixed counts rather than a function of the width: 4 groups on every
c0-wide norm (res3, groupnorm4, groupnorm5) and 32 on the c1-, c2- and c3-wide ones (down1, down2, up1, groupnorm2,
groupnorm3). A `channels` list is valid when c0 is a multiple of 4 and c1, c2, c3 are multiples of 32; anything
else raises. The official `conv1` always outputs 32 channels whatever `channels[0]` is (so the official network only
runs with c0 = 32); here it outputs c0, which is the same network at c0 = 32 and lets reduced lists such as
[8, 32, 32, 64] run.

Parameter counts (official size [32, 64, 128, 256]): P2M 1,087,320 and M2P 1,086,318 at 4 bands, 1,090,096 and
1,087,506 at 8 bands.

Named presets (`PRESETS`, `build(preset=...)`, `rsinfer.models.load("crossdiff-unet", path, preset=...)`) are reduced
widths that leave the band count and direction to the caller: ``crossdiff-demo`` is the U-Net size of the demo
weights trained in this repository (train/pansharpen.py, weights/README.md), channels [16, 32, 32, 64] and a 64-wide
time embedding.

Checkpoints: an official `I{iter}_E{epoch}_gen.pth` holds the `GaussianDiffusion` wrapper's state_dict, the network
under ``denoise_fn.`` plus twelve float32 (1000,) schedule buffers (`SCHEDULE_BUFFERS`). `checkpoint_state_dict`
accepts that form and the bare network dict; the buffers are recomputed from the cosine schedule and compared, never
used (the tolerance is `SCHEDULE_RTOL`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from rsinfer.models.checkpoint import strict_load
from rsinfer.models.config import config_with_overrides
from rsinfer.samplers.cosine_schedule import cosine_schedule

Direction = Literal["p2m", "m2p"]
DIRECTIONS: tuple[str, ...] = get_args(Direction)

NUM_STEPS = 1000  # T of the official cosine schedule
SIZE_MULTIPLE = 8  # H and W: three stride-2 levels
SMALL_GROUPS, LARGE_GROUPS = 4, 32  # the official GroupNorm group counts: c0-wide norms, c1/c2/c3-wide norms

WRAPPER_PREFIX = "denoise_fn."
# The official wrapper's buffer name → the standard DDPM table it holds (two carry a "_1" suffix upstream).
SCHEDULE_BUFFERS: dict[str, str] = {
    "betas": "betas",
    "alphas_cumprod": "alphas_cumprod",
    "alphas_cumprod_prev": "alphas_cumprod_prev",
    "sqrt_alphas_cumprod": "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod": "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod": "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod_1": "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod_1": "sqrt_recipm1_alphas_cumprod",
    "posterior_variance": "posterior_variance",
    "posterior_log_variance_clipped": "posterior_log_variance_clipped",
    "posterior_mean_coef1": "posterior_mean_coef1",
    "posterior_mean_coef2": "posterior_mean_coef2",
}
# Largest accepted |buffer − recomputed| / |recomputed| (a float32 cast of the float64 table is off by ≤ 6e-8).
SCHEDULE_RTOL = 1e-6


@dataclass(frozen=True)
class CrossDiffUNetConfig:
    """direction: "p2m" (noisy LMS + PAN → ε of S channels) or "m2p" (noisy PAN + LMS → ε of 1 channel).
    channels: widths [c0, c1, c2, c3] of h1 … h4 (official [32, 64, 128, 256]).
    spectrun_num: S, the MS band count (official spelling).
    embed_dim, inter_dim: width of the time embedding and of its sinusoidal encoding (official 256 and 32)."""

    direction: Direction = "p2m"
    channels: tuple[int, ...] = (32, 64, 128, 256)
    spectrun_num: int = 4
    embed_dim: int = 256
    inter_dim: int = 32

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction {self.direction!r} is not one of {DIRECTIONS}")
        if len(self.channels) != 4 or not all(isinstance(c, int) and c > 0 for c in self.channels):
            raise ValueError(f"channels {list(self.channels)} must be four positive integers [c0, c1, c2, c3]")
        for index, width in enumerate(self.channels):
            groups = SMALL_GROUPS if index == 0 else LARGE_GROUPS
            if width % groups:
                raise ValueError(
                    f"channels {list(self.channels)}: channels[{index}] = {width} is not a multiple of {groups}, the "
                    f"GroupNorm group count the official network fixes for it ({SMALL_GROUPS} groups at channels[0], "
                    f"{LARGE_GROUPS} at channels[1], [2] and [3]); valid lists have channels[0] a multiple of "
                    f"{SMALL_GROUPS} and the others multiples of {LARGE_GROUPS}, e.g. [8, 32, 32, 64] or the "
                    f"official [32, 64, 128, 256]")
        if not isinstance(self.spectrun_num, int) or self.spectrun_num < 1:
            raise ValueError(f"spectrun_num must be a positive integer (MS bands), got {self.spectrun_num!r}")
        if self.inter_dim < 2 or self.inter_dim % 2:
            raise ValueError(f"inter_dim must be an even integer >= 2, got {self.inter_dim!r}")

    @property
    def out_channels(self) -> int:
        """Channels of x_t and of the predicted ε (the noisy modality); the condition has the other one's."""
        return self.spectrun_num if self.direction == "p2m" else 1

    @property
    def cond_channels(self) -> int:
        return 1 if self.direction == "p2m" else self.spectrun_num


def timestep_encoding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """t (B,) → (B, dim) float32: [cos(t·f_k) | sin(t·f_k)], f_k = max_period^(−k/(dim/2)), k = 0 … dim/2 − 1."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]  # (B, half)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


class TimeProjection(nn.Module):
    """e (B, E) → (B, C, 1, 1): the per-block Linear that adds the time embedding to a feature map."""

    def __init__(self, embed_dim: int, channels: int) -> None:
        super().__init__()
        self.dense = nn.Linear(embed_dim, channels)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.dense(embedding)[..., None, None]


class TimeConditionedResample(nn.Module):
    """h ↦ conv20(SiLU(GroupNorm(h + dense1(e)))): a 3×3 stride-2 conv (down) or transposed conv (up)."""

    def __init__(self, channels_in: int, channels_out: int, embed_dim: int, groups: int, up: bool) -> None:
        super().__init__()
        if up:
            self.conv20 = nn.ConvTranspose2d(channels_in, channels_out, 3, stride=2, padding=1, output_padding=1)
        else:
            self.conv20 = nn.Conv2d(channels_in, channels_out, 3, stride=2, padding=1)
        self.dense1 = TimeProjection(embed_dim, channels_in)
        self.groupnorm1 = nn.GroupNorm(groups, channels_in)

    def forward(self, h: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        return self.conv20(F.silu(self.groupnorm1(h + self.dense1(embedding))))


class CrossDiffUNet(nn.Module):
    """ε(x_t, cond, t) of one CrossDiff direction; `encode` gives the encoder features [h1, h2, h3, h4]."""

    def __init__(self, config: CrossDiffUNetConfig) -> None:
        super().__init__()
        self.config = config
        c0, c1, c2, c3 = config.channels
        embed_dim = config.embed_dim
        self.embed = nn.Sequential(nn.Linear(config.inter_dim, embed_dim))
        self.conv1 = nn.Conv2d(config.spectrun_num + 1, c0, 3, padding=1)
        self.res3 = TimeConditionedResample(c0, c1, embed_dim, SMALL_GROUPS, up=False)
        self.down1 = TimeConditionedResample(c1, c2, embed_dim, LARGE_GROUPS, up=False)
        self.down2 = TimeConditionedResample(c2, c3, embed_dim, LARGE_GROUPS, up=False)
        self.up1 = TimeConditionedResample(c3, c2, embed_dim, LARGE_GROUPS, up=True)
        self.dense2, self.groupnorm2 = TimeProjection(embed_dim, c2), nn.GroupNorm(LARGE_GROUPS, c2)
        self.up2 = nn.ConvTranspose2d(2 * c2, c1, 3, stride=2, padding=1, output_padding=1)
        self.dense3, self.groupnorm3 = TimeProjection(embed_dim, c1), nn.GroupNorm(LARGE_GROUPS, c1)
        self.up3 = nn.ConvTranspose2d(2 * c1, c0, 3, stride=2, padding=1, output_padding=1)
        self.dense4, self.groupnorm4 = TimeProjection(embed_dim, c0), nn.GroupNorm(SMALL_GROUPS, c0)
        self.final1 = nn.Conv2d(2 * c0, c0, 3, padding=1)
        self.dense5, self.groupnorm5 = TimeProjection(embed_dim, c0), nn.GroupNorm(SMALL_GROUPS, c0)
        self.final2 = nn.Conv2d(c0 + config.spectrun_num + 1, config.out_channels, 3, padding=1)

    def _check(self, x_t: torch.Tensor, cond: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        if x_t.ndim != 4 or cond.ndim != 4:
            raise ValueError(f"x_t {tuple(x_t.shape)} and cond {tuple(cond.shape)} must be (B, C, H, W)")
        if x_t.shape[1] != cfg.out_channels or cond.shape[1] != cfg.cond_channels:
            raise ValueError(f"{cfg.direction} with {cfg.spectrun_num} bands takes x_t with {cfg.out_channels} and "
                             f"cond with {cfg.cond_channels} channels, got {x_t.shape[1]} and {cond.shape[1]}")
        if cond.shape[0] != x_t.shape[0] or cond.shape[-2:] != x_t.shape[-2:]:
            raise ValueError(f"cond {tuple(cond.shape)} must match x_t {tuple(x_t.shape)} in batch, height, width")
        height, width = x_t.shape[-2:]
        if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
            raise ValueError(f"H and W must be multiples of {SIZE_MULTIPLE}, got {height}x{width}")
        t = torch.as_tensor(t, device=x_t.device).reshape(-1)
        if t.numel() == 1:
            t = t.expand(x_t.shape[0])
        if t.numel() != x_t.shape[0]:
            raise ValueError(f"t must hold one step per sample ({x_t.shape[0]}), got {t.numel()}")
        return t

    def _embedding(self, t: torch.Tensor) -> torch.Tensor:
        encoding = timestep_encoding(t, self.config.inter_dim).to(self.embed[0].weight.dtype)  # float32 angles
        return F.silu(self.embed(encoding))  # (B, embed_dim)

    def _encode(self, x_t: torch.Tensor, cond: torch.Tensor, embedding: torch.Tensor) -> list[torch.Tensor]:
        h1 = self.conv1(torch.cat([x_t, cond], dim=1))  # (B, c0, H, W)
        h2 = self.res3(h1, embedding)  # (B, c1, H/2, W/2)
        h3 = self.down1(h2, embedding)  # (B, c2, H/4, W/4)
        h4 = self.down2(h3, embedding)  # (B, c3, H/8, W/8)
        return [h1, h2, h3, h4]

    def encode(self, x_t: torch.Tensor, cond: torch.Tensor, t: torch.Tensor) -> list[torch.Tensor]:
        """The encoder features [h1, h2, h3, h4] (widths c0 … c3 at H, H/2, H/4, H/8); the decoder is not run."""
        t = self._check(x_t, cond, t)
        return self._encode(x_t, cond, self._embedding(t))

    def forward(self, x_t: torch.Tensor, cond: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t (B, noisy, H, W), cond (B, cond, H, W), t (B,) integer steps → ε (B, noisy, H, W)."""
        t = self._check(x_t, cond, t)
        e = self._embedding(t)
        h1, h2, h3, h4 = self._encode(x_t, cond, e)

        def norm_act(h: torch.Tensor, dense: TimeProjection, norm: nn.GroupNorm) -> torch.Tensor:
            return F.silu(norm(h + dense(e)))

        h = self.up1(h4, e)  # (B, c2, H/4, W/4)
        h = self.up2(torch.cat([norm_act(h, self.dense2, self.groupnorm2), h3], dim=1))  # (B, c1, H/2, W/2)
        h = self.up3(torch.cat([norm_act(h, self.dense3, self.groupnorm3), h2], dim=1))  # (B, c0, H, W)
        h = self.final1(torch.cat([norm_act(h, self.dense4, self.groupnorm4), h1], dim=1))  # (B, c0, H, W)
        return self.final2(torch.cat([norm_act(h, self.dense5, self.groupnorm5), x_t, cond], dim=1))

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Load an official `I*_gen.pth` dict (``denoise_fn.*`` + the 12 schedule buffers, which are checked and
        dropped) or the bare network dict; with `strict`, anything else raises one error listing missing,
        unexpected and mis-shaped keys."""
        state_dict = checkpoint_state_dict(state_dict, self)
        expected = self.state_dict()
        if strict and (set(state_dict) != set(expected)
                       or any(state_dict[k].shape != expected[k].shape for k in expected)):
            strict_load(self, state_dict, source=f"CrossDiff {self.config.direction} state_dict")  # raises
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


def check_schedule_buffers(buffers: dict[str, torch.Tensor]) -> None:
    """Raise unless `buffers` are the official wrapper's 12 tables of the cosine schedule (T = 1000), each within
    `SCHEDULE_RTOL` relative of the recomputed float64 value."""
    missing = [name for name in SCHEDULE_BUFFERS if name not in buffers]
    if missing:
        raise ValueError(f"checkpoint holds denoise_fn.* weights but lacks the schedule buffer(s) {missing}; the "
                         f"official GaussianDiffusion state_dict has all of {list(SCHEDULE_BUFFERS)}")
    reference = cosine_schedule(NUM_STEPS).ddpm_quantities()
    for name, table in SCHEDULE_BUFFERS.items():
        value, expected = buffers[name], reference[table]
        if tuple(value.shape) != (NUM_STEPS,):
            raise ValueError(f"schedule buffer {name!r} has shape {tuple(value.shape)}, expected ({NUM_STEPS},)")
        value = value.detach().to(torch.float64)
        if not torch.isfinite(value).all():
            raise ValueError(f"schedule buffer {name!r} holds non-finite values")
        relative = (value - expected).abs() / expected.abs().clamp_min(1e-30)
        deviation, step = relative.max().item(), int(relative.argmax())
        if deviation > SCHEDULE_RTOL:
            raise ValueError(
                f"schedule buffer {name!r} does not match the cosine schedule (s=0.008, beta <= 0.999, "
                f"T={NUM_STEPS}) that CrossDiff uses: max relative deviation {deviation:.3e} at step {step} "
                f"(checkpoint {float(value[step]):.9g}, expected {float(expected[step]):.9g}); tolerance "
                f"{SCHEDULE_RTOL:.0e}. The buffers are never used, but a mismatch means the checkpoint was trained "
                f"on another schedule")


def checkpoint_state_dict(state_dict: dict[str, torch.Tensor], net: CrossDiffUNet) -> dict[str, torch.Tensor]:
    """Map an official checkpoint onto `net`'s keys: the wrapper form (``denoise_fn.*`` + 12 schedule buffers,
    checked then dropped) or the bare form (returned as is). Also names a checkpoint of the wrong direction or band
    count. Other keys are left in place for the strict load to report."""
    if any(key.startswith(WRAPPER_PREFIX) for key in state_dict):
        check_schedule_buffers(state_dict)
        state_dict = {(k[len(WRAPPER_PREFIX):] if k.startswith(WRAPPER_PREFIX) else k): v
                      for k, v in state_dict.items() if k not in SCHEDULE_BUFFERS}
    cfg = net.config
    final2, conv1 = state_dict.get("final2.weight"), state_dict.get("conv1.weight")
    if conv1 is not None and conv1.ndim == 4 and conv1.shape[1] != cfg.spectrun_num + 1:
        raise ValueError(f"checkpoint is a {conv1.shape[1] - 1}-band U-Net (conv1 takes {conv1.shape[1]} channels); "
                         f"the network was built with spectrun_num={cfg.spectrun_num}")
    if final2 is not None and final2.ndim == 4 and final2.shape[0] != cfg.out_channels:
        other = "m2p" if cfg.direction == "p2m" else "p2m"
        if final2.shape[0] == (cfg.spectrun_num if other == "p2m" else 1):
            raise ValueError(f"checkpoint is a {other} U-Net (final2 outputs {final2.shape[0]} channel(s)), but "
                             f"direction={cfg.direction!r}: load it into a {other!r} network")
    return state_dict


PRESETS: dict[str, dict[str, Any]] = {
    # The demo weights (weights/README.md): U-Nets that pre-train in minutes on 2 CPU cores.
    "crossdiff-demo": dict(channels=(16, 32, 32, 64), embed_dim=64),
}


def build(preset: str | None = None, **overrides) -> CrossDiffUNet:
    """A freshly initialised CrossDiff U-Net: the official size, or the named `preset` of `PRESETS`; `overrides`
    replace `CrossDiffUNetConfig` fields of either (official names; direction and spectrun_num are always yours)."""
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown crossdiff-unet preset {preset!r}; choose one of {tuple(PRESETS)}")
    return CrossDiffUNet(config_with_overrides(CrossDiffUNetConfig, "crossdiff-unet",
                                               {**PRESETS.get(preset, {}), **overrides}))
