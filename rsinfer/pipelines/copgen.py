"""COP-GEN-Beta any-to-any generation in latent space: conditions by name, targets by name, a PF-ODE solver.

Reproduces the official sampler (`sample_n_triffuser.py` of miquel-espinosa/COP-GEN-Beta) given the same network
and initial noise, and fixes its modality-order bug by taking modalities by *name*:

- the network sees all four modalities in the fixed order dem, s1_rtc, s2_l1c, s2_l2a at every call;
- targets (generated) get the solver's time t·1000; conditions get their clean latents, unchanged, at t = 0;
- modalities that are neither (ignored) get fresh N(0, I) noise at every call, labelled per `ignored`:
  ``"marginal"`` (default) labels it t = 1000, the fully-noised state the network saw in training (every per-modality
  noise level was sampled independently), so it integrates that modality out; ``"official-noise-t0"`` labels it
  t = 0 as the official sampler does (the network is told the noise is a clean image) — use it for parity;
- random draws come from `generator` in the official order: initial noise as one (targets, B, C, H, W) draw, then one
  (B, C, H, W) draw per ignored modality (in modality order) per network call.

`CopGenBeta(network, vae)` also renders images: `translate` encodes condition images with the VAE (a seeded posterior
sample, as the official code does), samples, and decodes the targets. The network is any module with the official
call `network(imgs, t_imgs) -> eps list` (e.g. `rsinfer.models.build("copgen-beta", ...)`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from rsinfer.models.copgen import MODALITIES
from rsinfer.pipelines.vocabulary import IGNORED_MODES, IgnoredModalities
from rsinfer.samplers.pf_ode import SamplerName, solve_pf_ode
from rsinfer.samplers.vp_schedule import EpsModel, VPSchedule, stable_diffusion_schedule



def check_modalities(condition: Sequence[str], targets: Sequence[str]) -> None:
    """Raise ValueError unless targets is non-empty and both name distinct known modalities."""
    for name in [*condition, *targets]:
        if name not in MODALITIES:
            raise ValueError(f"unknown modality {name!r}; choose from {MODALITIES}")
    if not targets:
        raise ValueError(f"give at least one target modality from {MODALITIES}")
    if len(set(targets)) != len(targets):
        raise ValueError(f"targets {list(targets)} name a modality twice")
    both = sorted(set(condition) & set(targets))
    if both:
        raise ValueError(f"modalities {both} are both condition and target; a modality is one or the other")


class CopGenBeta:
    """Latent sampling (`sample_latents`) and image translation (`translate`) with a COP-GEN-Beta network."""

    def __init__(self, network: nn.Module, vae: nn.Module | None = None,
                 ignored: IgnoredModalities = "marginal") -> None:
        if ignored not in IGNORED_MODES:
            raise ValueError(f"unknown ignored-modality mode {ignored!r}; choose one of {IGNORED_MODES}")
        self.network = network
        self.vae = vae
        self.ignored = ignored
        self.schedule: VPSchedule = stable_diffusion_schedule()  # what COP-GEN-Beta was trained with

    def ignored_modalities(self, condition: Sequence[str], targets: Sequence[str]) -> list[str]:
        """The modalities neither given nor generated, in modality order (they get noise at every call)."""
        return [name for name in MODALITIES if name not in condition and name not in targets]

    def predict_eps(self, x: torch.Tensor, t: torch.Tensor, condition: Mapping[str, torch.Tensor],
                    targets: Sequence[str], ignored_noise: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """One network call: x (B, len(targets), C, H, W) in modality order of `targets`, t a one-element continuous
        time, clean `condition` latents and the noise of every ignored modality (B, C, H, W) → eps like x."""
        order = [name for name in MODALITIES if name in targets]
        n = self.schedule.num_steps
        batch = x.shape[0]
        t_target = (t.reshape(-1) * n).expand(batch)  # discrete units, as the official model_fn does
        t_clean = torch.zeros_like(t_target)
        t_ignored = t_clean if self.ignored == "official-noise-t0" else torch.full_like(t_target, float(n))
        imgs, t_imgs = [], []
        for name in MODALITIES:
            if name in order:
                imgs.append(x[:, order.index(name)])
                t_imgs.append(t_target)
            elif name in condition:
                imgs.append(condition[name])
                t_imgs.append(t_clean)
            else:
                imgs.append(ignored_noise[name])
                t_imgs.append(t_ignored)
        with torch.no_grad():
            out = self.network(imgs, t_imgs)
        return torch.stack([out[MODALITIES.index(name)].to(x.dtype) for name in order], dim=1)

    def eps_model(self, condition: Mapping[str, torch.Tensor], targets: Sequence[str],
                  generator: torch.Generator | None) -> EpsModel:
        """The solver's view of the network: eps(x, t) with x (B, len(targets), C, H, W) in target order sorted by
        modality index and t a one-element continuous time; conditions filled in, and fresh noise for the ignored
        modalities drawn from `generator` at every call (one (B, C, H, W) draw each, in modality order)."""
        ignored = self.ignored_modalities(list(condition), targets)

        def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            shape = (x.shape[0], *x.shape[2:])
            noise = {name: torch.randn(shape, generator=generator, dtype=x.dtype, device=x.device)
                     for name in ignored}
            return self.predict_eps(x, t, condition, targets, noise)

        return eps

    def initial_noise(self, targets: Sequence[str], shape: Sequence[int],
                      given: Mapping[str, torch.Tensor] | None, generator: torch.Generator | None,
                      device: torch.device | str = "cpu") -> torch.Tensor:
        """x_T (B, len(targets), C, H, W) in modality order: `given` where named, else one official-order draw."""
        order = [name for name in MODALITIES if name in targets]
        given = dict(given or {})
        unknown = sorted(set(given) - set(order))
        if unknown:
            raise ValueError(f"initial_noise names {unknown}, which are not targets {order}")
        drawn = None
        if len(given) < len(order):
            drawn = torch.randn((len(order), *shape), generator=generator, device=device)
        parts = []
        for i, name in enumerate(order):
            if name in given:
                if tuple(given[name].shape) != tuple(shape):
                    raise ValueError(f"initial_noise[{name!r}] has shape {tuple(given[name].shape)}; "
                                     f"expected {tuple(shape)}")
                parts.append(given[name].float())
            else:
                parts.append(drawn[i])
        return torch.stack(parts, dim=1)

    def sample_latents(self, condition: Mapping[str, torch.Tensor] | None, targets: Sequence[str], steps: int = 50,
                       sampler: SamplerName = "dpm-solver++3s",
                       initial_noise: Mapping[str, torch.Tensor] | None = None,
                       generator: torch.Generator | None = None,
                       shape: Sequence[int] | None = None) -> dict[str, torch.Tensor]:
        """Generate `targets` given clean `condition` latents (B, C, H, W) by name; returns {target: latent}.

        `shape` (B, C, H, W) is needed only when neither a condition nor initial noise fixes it.
        """
        condition = dict(condition or {})
        targets = list(targets)
        check_modalities(list(condition), targets)
        shape = self._latent_shape(condition, initial_noise, shape)
        order = [name for name in MODALITIES if name in targets]
        device = next(iter(condition.values())).device if condition else "cpu"
        x = self.initial_noise(order, shape, initial_noise, generator, device)
        x = solve_pf_ode(sampler, self.eps_model(condition, order, generator), x, self.schedule, steps)
        return {name: x[:, i] for i, name in enumerate(order)}

    @staticmethod
    def _latent_shape(condition: Mapping[str, torch.Tensor], initial_noise: Mapping[str, torch.Tensor] | None,
                      shape: Sequence[int] | None) -> tuple[int, ...]:
        known = {name: tuple(z.shape) for name, z in {**condition, **(initial_noise or {})}.items()}
        if shape is not None:
            known["shape"] = tuple(shape)
        if not known:
            raise ValueError("cannot infer the latent shape: give a condition, initial_noise or shape=(B, C, H, W)")
        if len(set(known.values())) != 1 or len(next(iter(known.values()))) != 4:
            raise ValueError(f"latents must all be (B, C, H, W) of one shape; got {known}")
        return next(iter(known.values()))

    def translate(self, condition_images: Mapping[str, torch.Tensor], targets: Sequence[str], steps: int = 50,
                  sampler: SamplerName = "dpm-solver++3s", generator: torch.Generator | None = None
                  ) -> dict[str, torch.Tensor]:
        """Images (B, 3, H, W) in [0, 1] by modality → generated images in [0, 1] by target (needs a VAE)."""
        if self.vae is None:
            raise ValueError("translate needs a VAE: CopGenBeta(network, vae=rsinfer.models.load('sd-vae', path))")
        check_modalities(list(condition_images), list(targets))
        with torch.no_grad():  # posterior draws in modality order, as the official encoder loop
            latents = {name: self.vae.encode(2.0 * condition_images[name] - 1.0, generator)
                       for name in MODALITIES if name in condition_images}
            generated = self.sample_latents(latents, targets, steps, sampler, generator=generator)
            return {name: ((self.vae.decode(z) + 1.0) / 2.0).clamp(0.0, 1.0) for name, z in generated.items()}
