"""Golden outputs of the official COP-GEN-Beta sampler for `tests/copgen_pipeline`, without shipping official code.

Usage: PYTHONPATH=<dir with einops> python tools/make_sampler_fixtures.py --official /path/to/COP-GEN-Beta \
           [--out tests/fixtures/copgen_sampler]

It imports the official `dpm_solver_pp.py` (NoiseScheduleVP('discrete', SD betas) + DPM_Solver(predict_x0=True,
thresholding=False), `.sample(x, steps, eps=1/N, T=1)`, as `sample_n_triffuser.py` calls it) from the given checkout
and drives it with a model function that follows `run_nnet`/`split_joint`/`combine_joint` of `sample_n_triffuser.py`:
targets at t·N, conditions clean at t = 0, ignored modalities as a fresh global-RNG `randn` labelled t = 0 per call,
latents flattened per modality and concatenated in modality order. Two networks:

- the deterministic stand-in of `tests/copgen_pipeline/copgen_standin.py` (three scenarios covering the three tails
  of the order-3 step plan, conditions, ignored modalities and seeded initial noise);
- the official `Triffuser` (`libs/triffuser_multi_post_ln.py`, needs einops) in a tiny config with seeded random
  weights spread wider than its init (so time, conditions and context all matter), one 50-NFE scenario: the test
  loads the same weights into `rsinfer.models.build("copgen-beta", ...)` and compares the whole chain.

The file stores the weights, the inputs, the official outputs and the discrete times of every network call.
fp32, no autocast (the official script wraps sampling in
`torch.autocast(device_type)`, i.e. bf16 on CPU; parity is defined in fp32).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "copgen_pipeline"))
from copgen_standin import StandInCopGen  # noqa: E402

MODALITIES = ("dem", "s1_rtc", "s2_l1c", "s2_l2a")
BATCH, CHANNELS, SIZE = 2, 4, 8
# name: (conditions, targets, nfe, seed of the global RNG before sampling, initial noise given?)
SCENARIOS = {
    "cond2_gen2_nfe50": (("dem", "s1_rtc"), ("s2_l1c", "s2_l2a"), 50, 11, True),
    "cond1_gen1_ignored2_nfe21": (("s1_rtc",), ("s2_l2a",), 21, 12, True),
    "uncond_gen2_ignored2_nfe22_seeded": ((), ("dem", "s2_l2a"), 22, 13, False),
}
TRIFFUSER_SCENARIO = "triffuser_cond1_gen1_ignored2_nfe50"
TRIFFUSER_SPEC = {"condition": ["s1_rtc"], "targets": ["s2_l2a"], "nfe": 50, "seed": 14}
TRIFFUSER_TINY = dict(img_size=8, patch_size=2, in_chans=4, embed_dim=32, depth=2, num_heads=2, mlp_ratio=4.0,
                      num_modalities=4)


def official_sample(official: Path, net: torch.nn.Module, condition_latents: torch.Tensor, conditions, targets,
                    nfe: int, seed: int, initial_noise: torch.Tensor | None,
                    size: int = SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    sys.path.insert(0, str(official))
    from dpm_solver_pp import DPM_Solver, NoiseScheduleVP

    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    n = len(betas)
    generated = [m for m in MODALITIES if m in targets]
    calls = []

    def model_fn(x, t_continuous):
        t = t_continuous * n
        imgs = []
        flat = x.split([CHANNELS * size * size] * len(generated), dim=1)
        for i, name in enumerate(MODALITIES):
            if name in generated:
                imgs.append(flat[generated.index(name)].reshape(x.shape[0], CHANNELS, size, size))
            elif name in conditions:
                imgs.append(condition_latents[i])
            else:
                imgs.append(torch.randn(x.shape[0], CHANNELS, size, size))
        t_imgs = [t if name in generated else torch.zeros_like(t) for name in MODALITIES]
        calls.append(t_imgs[MODALITIES.index(generated[0])][0].clone())
        out = net(imgs, t_imgs=t_imgs)
        return torch.cat([out[MODALITIES.index(name)].reshape(x.shape[0], -1) for name in generated], dim=-1)

    torch.manual_seed(seed)
    z_init = initial_noise if initial_noise is not None else torch.randn(len(generated), BATCH, CHANNELS, size, size)
    x_init = torch.cat([z.reshape(BATCH, -1) for z in z_init], dim=-1)
    solver = DPM_Solver(model_fn, NoiseScheduleVP(schedule="discrete", betas=betas.float()), predict_x0=True,
                        thresholding=False)
    with torch.no_grad():
        x = solver.sample(x_init, steps=nfe, eps=1.0 / n, T=1.0)
    out = torch.stack([z.reshape(BATCH, CHANNELS, size, size) for z in x.split(CHANNELS * size * size, dim=1)])
    return out, torch.stack(calls)


def official_triffuser(official: Path, seed: int) -> torch.nn.Module:
    sys.path.insert(0, str(official))
    from libs.triffuser_multi_post_ln import Triffuser

    torch.manual_seed(seed)
    net = Triffuser(**TRIFFUSER_TINY, qkv_bias=False, mlp_time_embed=False, use_checkpoint=False).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith("norm1.weight") or name.endswith("norm2.weight") or name.endswith("norm3.weight") \
                    or name == "norm.weight":
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif p.dim() >= 2 and name != "pos_embed":
                p.copy_(torch.randn(p.shape, generator=g) / p[0].numel() ** 0.5)
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True, help="checkout of miquel-espinosa/COP-GEN-Beta")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "copgen_sampler")
    args = parser.parse_args()

    net = StandInCopGen(seed=0)
    g = torch.Generator().manual_seed(1)
    condition_latents = torch.randn(len(MODALITIES), BATCH, CHANNELS, SIZE, SIZE, generator=g)
    tensors = {"net.mix": net.mix.detach(), "net.time": net.time.detach(), "condition_latents": condition_latents}
    for name, (conditions, targets, nfe, seed, give_noise) in SCENARIOS.items():
        noise = torch.randn(len(targets), BATCH, CHANNELS, SIZE, SIZE, generator=g) if give_noise else None
        out, call_times = official_sample(args.official, net, condition_latents, conditions, targets, nfe, seed, noise)
        if noise is not None:
            tensors[f"{name}.initial_noise"] = noise
        tensors[f"{name}.output"] = out
        tensors[f"{name}.call_times"] = call_times

    triffuser = official_triffuser(args.official, seed=5)
    size = TRIFFUSER_TINY["img_size"]
    latents = torch.randn(len(MODALITIES), BATCH, CHANNELS, size, size, generator=g)
    noise = torch.randn(1, BATCH, CHANNELS, size, size, generator=g)
    spec = TRIFFUSER_SPEC
    out, call_times = official_sample(args.official, triffuser, latents, spec["condition"], spec["targets"],
                                      spec["nfe"], spec["seed"], noise, size)
    tensors.update({f"triffuser.{k}": v.detach() for k, v in triffuser.state_dict().items()})
    tensors.update({f"{TRIFFUSER_SCENARIO}.condition_latents": latents, f"{TRIFFUSER_SCENARIO}.initial_noise": noise,
                    f"{TRIFFUSER_SCENARIO}.output": out, f"{TRIFFUSER_SCENARIO}.call_times": call_times})
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "official_dpm_solver_pp.safetensors"
    tmp = path.with_suffix(".tmp")
    scenarios = {name: {"condition": list(c), "targets": list(t), "nfe": n, "seed": s}
                 for name, (c, t, n, s, _) in SCENARIOS.items()}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp),
              metadata={"scenarios": json.dumps(scenarios), "modalities": json.dumps(MODALITIES),
                        "triffuser_config": json.dumps(TRIFFUSER_TINY),
                        "triffuser_scenario": json.dumps({TRIFFUSER_SCENARIO: TRIFFUSER_SPEC})})
    tmp.replace(path)
    print(f"wrote {path} ({path.stat().st_size} bytes, {len(tensors)} tensors)")


if __name__ == "__main__":
    main()
