"""Generate the golden fixtures of tests/models/test_copgen.py and test_vae.py from the official code.

Usage:
    PYTHONPATH=<dir with einops> python tools/make_copgen_fixtures.py /path/to/COP-GEN-Beta [--full-parity]

The official ``Triffuser`` (``libs/triffuser_multi_post_ln.py``) and ``FrozenAutoencoderKL`` (``libs/autoencoder.py``,
identical in UniDiffuser) are imported from the checkout given on the command line; nothing of them is copied here.
They run on seeded random weights (rounded to float16 values so the files stay small, then computed in float32) and
seeded random inputs; weights, inputs and official outputs are written as safetensors under tests/fixtures/copgen/,
with the full released configs' key names and shapes as JSON. ``--full-parity`` also runs both full released configs
against rsinfer and prints the relative errors (about a minute on 2 cores; nothing is saved).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "copgen"

# Tiny configs: sizes that are not multiples of any block size (10×10 latents → 25 patches, 104 tokens).
COPGEN_TINY = dict(img_size=10, patch_size=2, in_chans=4, embed_dim=32, depth=2, num_heads=2, mlp_ratio=4.0,
                   num_modalities=4)
COPGEN_RELEASED = dict(img_size=32, patch_size=2, in_chans=4, embed_dim=1024, depth=20, num_heads=16, mlp_ratio=4.0,
                       num_modalities=4)
VAE_TINY = dict(ch=32, ch_mult=[1, 1], num_res_blocks=1)
VAE_RELEASED = dict(ch=128, ch_mult=[1, 2, 4, 4], num_res_blocks=2)


def _ddconfig(ch: int, ch_mult: list[int], num_res_blocks: int) -> dict:
    return dict(double_z=True, z_channels=4, resolution=256, in_channels=3, out_ch=3, ch=ch, ch_mult=ch_mult,
                num_res_blocks=num_res_blocks, attn_resolutions=[], dropout=0.0)


def _perturb_and_round(state_dict: dict[str, torch.Tensor], generator: torch.Generator) -> None:
    """Move LayerNorm/GroupNorm affines and biases off their 1/0 init so they are exercised; round to fp16 values."""
    for key, value in state_dict.items():
        if key.endswith("bias") or "norm" in key:
            value.add_(0.1 * torch.randn(value.shape, generator=generator))
        value.copy_(value.half().float())


def _official_triffuser(config: dict, seed: int) -> torch.nn.Module:
    from libs.triffuser_multi_post_ln import Triffuser

    torch.manual_seed(seed)
    net = Triffuser(**config, qkv_bias=False, mlp_time_embed=False, use_checkpoint=False).eval()
    _perturb_and_round(net.state_dict(), torch.Generator().manual_seed(seed + 1))
    return net


def _official_vae(config: dict, seed: int) -> torch.nn.Module:
    from libs.autoencoder import Decoder, Encoder, FrozenAutoencoderKL

    torch.manual_seed(seed)
    dd = _ddconfig(**config)
    parts = {"encoder": Encoder(**dd), "decoder": Decoder(**dd), "quant_conv": torch.nn.Conv2d(8, 8, 1),
             "post_quant_conv": torch.nn.Conv2d(4, 4, 1)}
    state_dict = {f"{name}.{k}": v for name, part in parts.items() for k, v in part.state_dict().items()}
    _perturb_and_round(state_dict, torch.Generator().manual_seed(seed + 1))
    with tempfile.TemporaryDirectory() as tmp:  # the official class only builds by loading a checkpoint file
        path = os.path.join(tmp, "vae.pth")
        torch.save(state_dict, path)
        return FrozenAutoencoderKL(dd, 4, path).eval()


def _copgen_inputs(config: dict, batch: int, generator: torch.Generator) -> tuple[list, list]:
    size = config["img_size"]
    imgs = [torch.randn(batch, config["in_chans"], size, size, generator=generator) for _ in range(4)]
    # Mixed timesteps: 0 (clean conditioning), fractional, the top of the range.
    t_imgs = [torch.tensor([0.0, 980.02, 13.75])[:batch], torch.tensor([1000.0, 0.0, 500.5])[:batch],
              torch.tensor([20.98, 20.98, 0.0])[:batch], torch.tensor([417.3, 999.0, 1.0])[:batch]]
    return imgs, t_imgs


def _shapes(state_dict: dict[str, torch.Tensor]) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in state_dict.items()}


def write_fixtures() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(2025)

    net = _official_triffuser(COPGEN_TINY, seed=1)
    imgs, t_imgs = _copgen_inputs(COPGEN_TINY, batch=3, generator=generator)
    with torch.no_grad():
        eps = net(imgs, t_imgs)
    meta = {"config": json.dumps(COPGEN_TINY)}
    save_file({k: v.half() for k, v in net.state_dict().items()}, OUT / "copgen_tiny_weights.safetensors", meta)
    save_file({**{f"imgs.{i}": x for i, x in enumerate(imgs)}, **{f"t_imgs.{i}": t for i, t in enumerate(t_imgs)},
               **{f"eps.{i}": e for i, e in enumerate(eps)}}, OUT / "copgen_tiny_io.safetensors", meta)

    vae = _official_vae(VAE_TINY, seed=3)
    x = torch.rand(2, 3, 24, 40, generator=generator) * 2 - 1
    z = torch.randn(2, 4, 5, 7, generator=generator)
    with torch.no_grad():
        moments = vae.encode_moments(x)
        torch.manual_seed(77)
        sample = vae.encode(x)  # the official posterior sample: randn_like on the global RNG
        pixels = vae.decode(z)
    meta = {"config": json.dumps(VAE_TINY), "sample_seed": "77"}
    save_file({k: v.half() for k, v in vae.state_dict().items()}, OUT / "vae_tiny_weights.safetensors", meta)
    save_file({"x": x, "moments": moments, "sample": sample, "z": z, "decoded": pixels},
              OUT / "vae_tiny_io.safetensors", meta)

    full_net = _official_triffuser(COPGEN_RELEASED, seed=0)
    (OUT / "copgen_full_keys.json").write_text(json.dumps(_shapes(full_net.state_dict()), indent=0) + "\n")
    del full_net
    full_vae = _official_vae(VAE_RELEASED, seed=0)
    (OUT / "vae_full_keys.json").write_text(json.dumps(_shapes(full_vae.state_dict()), indent=0) + "\n")


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def full_parity() -> None:
    import rsinfer.models
    from rsinfer.ops import use_backend

    generator = torch.Generator().manual_seed(7)
    net = _official_triffuser(COPGEN_RELEASED, seed=0)
    ours = rsinfer.models.build("copgen-beta").eval()
    ours.load_state_dict(net.state_dict(), strict=True)
    imgs, t_imgs = _copgen_inputs(COPGEN_RELEASED, batch=1, generator=generator)
    with torch.no_grad(), use_backend("reference"):
        errors = [_relative(a, b) for a, b in zip(ours(imgs, t_imgs), net(imgs, t_imgs))]
    print("copgen-beta full config, B=1, reference backend: relative L2 per modality", errors)
    del net, ours

    vae = _official_vae(VAE_RELEASED, seed=0)
    ours = rsinfer.models.build("sd-vae").eval()
    ours.load_state_dict(vae.state_dict(), strict=True)
    x = torch.rand(1, 3, 64, 64, generator=generator) * 2 - 1
    z = torch.randn(1, 4, 8, 8, generator=generator)
    with torch.no_grad(), use_backend("reference"):
        print("sd-vae full config: moments", _relative(ours.encode_moments(x), vae.encode_moments(x)),
              "decode", _relative(ours.decode(z), vae.decode(z)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("official", type=Path, help="checkout of github.com/miquel-espinosa/COP-GEN-Beta")
    parser.add_argument("--full-parity", action="store_true", help="also compare the full released configs")
    args = parser.parse_args()
    OFFICIAL = args.official.resolve()
    sys.path.insert(0, str(OFFICIAL))
    write_fixtures()
    if args.full_parity:
        full_parity()
