"""PF-ODE solver accuracy against an exact solution, and seams of tiled scene translation.

1. Accuracy vs NFE. Data x₀ ~ N(μ, diag(s²)) (μ, s random per dimension) under COP-GEN-Beta's VP schedule has
   marginals N(α_t μ, α_t² s² + σ_t²), the exact noise prediction ε(x, t) = σ_t (x − α_t μ) / (α_t² s² + σ_t²), and
   its probability-flow ODE maps x_1 to x_t by the affine map that matches the two Gaussians quantile for quantile:
   x_t = α_t μ + sqrt(α_t² s² + σ_t²) · (x_1 − α_1 μ) / sqrt(α_1² s² + σ_1²). Every solver integrates from t = 1 to
   t = 1e-3; the error is ‖x − x_exact‖ / ‖x_exact‖ over many samples.
   Target: the fast solvers reach, at ≤ 20 NFE, the error dpm-solver++3s has at 50 NFE (the official setting).
2. Seams. A 64² latent canvas of overlapping 32² tiles (overlap 12, cosine blending) is denoised with per-step fusion
   (MultiDiffusion) and with per-tile sampling, tiles blended with cosine ramps or crop-stitched. Seam ratio = mean
   squared finite difference between neighbouring latents inside the overlap bands / the same outside them
   (1 = no seam). Two denoisers:
   - "global-offset": the exact denoiser of data = fixed texture + one random brightness offset per image (τ = 1) +
     small iid detail (s = 0.02) on a fixed texture (std 0.02); its optimum uses the whole tile, like attention in a
     trained network. Sampled per tile, each tile settles on its own offset and the overlaps show the step; fused per
     step, the canvas agrees;
   - "random tiny COP-GEN-Beta": seeded random weights, conditioned on the Sen1Floods11 S1 chip (512², Major TOM
     rendering, tiny random VAE). Untrained, its output is texture without large-scale structure, so both modes look
     alike; reported for completeness.

    .venv/bin/python bench/samplers.py [--quick]

Prints a table and appends JSON lines to bench/samplers.jsonl.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from rsinfer import models
from rsinfer.pipelines.copgen import CopGenBeta
from rsinfer.pipelines.copgen_scene import LatentTiling, render_input, translate_latents
from rsinfer.samplers.dpm_solver import dpm_solver_pp_3s
from rsinfer.samplers.dpm_solver_2m import dpm_solver_pp_2m
from rsinfer.samplers.unipc import unipc
from rsinfer.samplers.vp_schedule import stable_diffusion_schedule
from rsinfer.scene import read_scene
from rsinfer.tiling import plan_windows

ROOT = Path(__file__).resolve().parents[1]
S1 = ROOT.parent / "shared" / "data" / "sen1floods11" / "Spain_7370579_S1Hand.tif"
SOLVERS = {
    "dpm-solver++3s": lambda eps, x, s, n: dpm_solver_pp_3s(eps, x, s, n),
    "dpm-solver++2m": lambda eps, x, s, n: dpm_solver_pp_2m(eps, x, s, n),
    "unipc (order 3)": lambda eps, x, s, n: unipc(eps, x, s, n, order=3),
    "unipc (order 2)": lambda eps, x, s, n: unipc(eps, x, s, n, order=2),
}
NFES = (5, 8, 10, 12, 15, 20, 25, 50, 100)


def gaussian_problem(dim: int, samples: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    schedule = stable_diffusion_schedule()
    mu = torch.rand(dim, generator=g) * 2 - 1
    s = torch.rand(dim, generator=g) * 1.5 + 0.1

    def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a, sig = schedule.alpha(t), schedule.sigma(t)
        return sig * (x - a * mu) / (a * a * s * s + sig * sig)

    def exact(x1: torch.Tensor, t_end: float = 1e-3) -> torch.Tensor:
        one, end = torch.tensor(1.0), torch.tensor(t_end)
        a1, s1 = schedule.alpha(one).double(), schedule.sigma(one).double()
        a0, s0 = schedule.alpha(end).double(), schedule.sigma(end).double()
        m, v = mu.double(), s.double() ** 2
        return a0 * m + torch.sqrt(a0 ** 2 * v + s0 ** 2) * (x1.double() - a1 * m) / torch.sqrt(a1 ** 2 * v + s1 ** 2)

    x1 = torch.randn(samples, dim, generator=g)
    return schedule, eps, x1, exact(x1)


def accuracy_rows(seeds: int) -> list[dict]:
    rows = []
    for name, solve in SOLVERS.items():
        for nfe in NFES:
            errors = []
            for seed in range(seeds):
                schedule, eps, x1, exact = gaussian_problem(4096, 8, seed)
                x = solve(eps, x1, schedule, nfe)
                errors.append(float((x.double() - exact).norm() / exact.norm()))
            rows.append({"bench": "samplers.accuracy", "solver": name, "nfe": nfe,
                         "rel_error_median": statistics.median(errors), "rel_error_min": min(errors),
                         "rel_error_max": max(errors), "seeds": seeds})
    return rows


def seam_ratio(latent: torch.Tensor, windows) -> float:
    """Mean squared neighbour difference inside the overlap bands (≥ 2 windows) / outside them."""
    z = latent[0].double()  # (C, H, W)
    cover = torch.zeros(z.shape[-2:])
    for w in windows:
        cover[w.row:w.bottom, w.col:w.right] += 1
    dx, dy = (z[:, :, 1:] - z[:, :, :-1]) ** 2, (z[:, 1:] - z[:, :-1]) ** 2
    in_x, in_y = (cover[:, 1:] > 1) | (cover[:, :-1] > 1), (cover[1:] > 1) | (cover[:-1] > 1)
    inside = torch.cat([dx[:, in_x].flatten(), dy[:, in_y].flatten()]).mean()
    outside = torch.cat([dx[:, ~in_x].flatten(), dy[:, ~in_y].flatten()]).mean()
    return float(inside / outside)


class GlobalOffsetDenoiser(torch.nn.Module):
    """Exact ε for x₀ = m + c·1 + n per image (c ~ N(0, τ²) shared by all latents, n ~ N(0, s²) iid), any size:
    Σ = a I + b 11ᵀ with a = α²s² + σ², b = α²τ², so ε = σ/a · (d − b/(a + P b) · Σd · 1), d = x − α m."""

    def __init__(self, schedule, texture: torch.Tensor, tau: float = 1.0, detail: float = 0.02) -> None:
        super().__init__()
        self.schedule, self.texture, self.tau, self.detail = schedule, texture, tau, detail

    def forward(self, imgs, t_imgs):
        out = []
        for x, t in zip(imgs, t_imgs):
            tc = (t[:1] / self.schedule.num_steps).clamp_min(1e-3)
            alpha, sigma = self.schedule.alpha(tc), self.schedule.sigma(tc)
            a, b = alpha ** 2 * self.detail ** 2 + sigma ** 2, alpha ** 2 * self.tau ** 2
            d = x - alpha * self.texture[..., :x.shape[-2], :x.shape[-1]]
            pixels = d[0].numel()
            total = d.sum(dim=(1, 2, 3), keepdim=True)
            out.append(sigma / a * (d - b / (a + pixels * b) * total))
        return out


def _seam_run(label: str, pipe: CopGenBeta, condition: dict, steps: int) -> list[dict]:
    rows = []
    for blend, fusion in itertools.product(("cosine", "crop"), ("per-step", "per-tile")):
        tiling = LatentTiling(fusion=fusion, blend=blend)
        start = time.perf_counter()
        z = translate_latents(pipe, condition, "s2_l2a", steps, "unipc", tiling, torch.Generator().manual_seed(1))
        seconds = time.perf_counter() - start
        windows = plan_windows(z.shape[-2], z.shape[-1], tiling.tile, tiling.overlap)
        rows.append({"bench": "samplers.seams", "denoiser": label, "fusion": fusion, "blend": blend, "steps": steps,
                     "sampler": "unipc", "latent": list(z.shape[-2:]), "tiles": len(windows),
                     "overlap": tiling.overlap, "seam_ratio": seam_ratio(z, windows), "seconds": seconds})
    return rows


def seam_rows(steps: int) -> list[dict]:
    schedule = stable_diffusion_schedule()
    texture = 0.02 * torch.randn(1, 4, 64, 64, generator=torch.Generator().manual_seed(2))
    offset = CopGenBeta(GlobalOffsetDenoiser(schedule, texture))
    rows = _seam_run("global-offset", offset, {"s1_rtc": torch.zeros(1, 4, 64, 64)}, steps)
    torch.manual_seed(0)
    net = models.build("copgen-beta", embed_dim=64, depth=2, num_heads=2).eval()
    vae = models.build("sd-vae", ch=32, ch_mult=(1, 1, 1, 1), num_res_blocks=1).eval()
    scene = read_scene({"s1_rtc": S1})
    rendering = render_input("s1_rtc", scene.arrays["s1_rtc"], scene.masks["s1_rtc"])
    with torch.no_grad():
        condition = {"s1_rtc": vae.encode(2 * rendering[None] - 1, torch.Generator().manual_seed(0))}
    return rows + _seam_run("random tiny COP-GEN-Beta", CopGenBeta(net, vae), condition, steps)


def main() -> None:
    parser = argparse.ArgumentParser(description="PF-ODE solver accuracy and tile seams")
    parser.add_argument("--quick", action="store_true", help="one seed, fewer steps")
    args = parser.parse_args()
    stamp = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.processor(),
             "threads": torch.get_num_threads()}
    rows = accuracy_rows(1 if args.quick else 3) + seam_rows(3 if args.quick else 8)
    with open(ROOT / "bench" / "samplers.jsonl", "a") as f:
        for row in rows:
            f.write(json.dumps({**row, **stamp}) + "\n")

    accuracy = [r for r in rows if r["bench"] == "samplers.accuracy"]
    print("Relative error vs the exact PF-ODE solution (Gaussian data, median over seeds)")
    print(f"{'solver':<18}" + "".join(f"{n:>10}" for n in NFES))
    for name in SOLVERS:
        errs = {r["nfe"]: r["rel_error_median"] for r in accuracy if r["solver"] == name}
        print(f"{name:<18}" + "".join(f"{errs[n]:>10.2e}" for n in NFES))
    reference = next(r["rel_error_median"] for r in accuracy if r["solver"] == "dpm-solver++3s" and r["nfe"] == 50)
    print(f"\nTarget: error <= dpm-solver++3s @ 50 NFE = {reference:.2e} at <= 20 NFE")
    for name in list(SOLVERS)[1:]:
        reached = [r["nfe"] for r in accuracy if r["solver"] == name and r["rel_error_median"] <= reference]
        first = min(reached) if reached else None
        verdict = "met" if first is not None and first <= 20 else "NOT met"
        print(f"  {name:<18} first NFE reaching it: {first}  -> {verdict}")
    print("\nSeams (64² latent, 32² tiles, overlap 12; overlap bands vs elsewhere; 1.0 = seamless)")
    print(f"{'denoiser':<26}{'blend':<8}{'fusion':<10}{'seam ratio':>12}{'tiles':>7}{'steps':>7}{'seconds':>9}")
    for r in rows:
        if r["bench"] == "samplers.seams":
            print(f"{r['denoiser']:<26}{r['blend']:<8}{r['fusion']:<10}{r['seam_ratio']:>12.3f}{r['tiles']:>7}"
                  f"{r['steps']:>7}"
                  f"{r['seconds']:>9.1f}")


if __name__ == "__main__":
    main()
