"""COP-GEN-Beta network: parity with the official Triffuser (golden fixtures), key layout, strict loading, backends.

The fixtures come from tests/fixtures/make_copgen_fixtures.py, which runs the official code on seeded random weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import rsinfer.models
from rsinfer.engines import prepare
from rsinfer.models.copgen import MODALITIES, CopGenConfig
from rsinfer.ops import use_backend
from tests.conftest import require_backend
from tests.numerics import assert_matches_reference, relative_error

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "copgen"
WEIGHTS = FIXTURES / "copgen_tiny_weights.safetensors"
RELEASED_PARAMS = 286_648_384


def _tiny_config() -> dict:
    with open(WEIGHTS, "rb") as f:  # the config travels in the safetensors header
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    return json.loads(header["__metadata__"]["config"])


def _golden() -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    io = load_file(FIXTURES / "copgen_tiny_io.safetensors")
    return ([io[f"imgs.{i}"] for i in range(4)], [io[f"t_imgs.{i}"] for i in range(4)],
            [io[f"eps.{i}"] for i in range(4)])


@pytest.fixture(scope="module")
def tiny_net() -> torch.nn.Module:
    return rsinfer.models.load("copgen-beta", WEIGHTS, **_tiny_config())


@pytest.mark.parametrize("backend", ["reference", "auto"])
def test_tiny_matches_official(tiny_net, backend):
    imgs, t_imgs, official = _golden()
    with torch.no_grad(), use_backend(backend):
        eps = tiny_net(imgs, t_imgs)
    assert len(eps) == 4
    for ours, ref in zip(eps, official):
        assert_matches_reference(ours, ref)


def test_forward_under_triton_interpreter_equals_reference():
    """The tiny forward with every op on the Triton kernels (interpreted on CPU) equals the reference backend."""
    require_backend("triton")
    net = rsinfer.models.load("copgen-beta", WEIGHTS, **_tiny_config())
    imgs, t_imgs, _ = _golden()
    imgs, t_imgs = [x[:1] for x in imgs], [t[:1] for t in t_imgs]
    with torch.no_grad():
        with use_backend("reference"):
            ref = net(imgs, t_imgs)
        with use_backend("triton"):
            out = net(imgs, t_imgs)
    assert max(relative_error(o, r) for o, r in zip(out, ref)) <= 1e-5


def test_modalities_are_independent_outputs(tiny_net):
    """Each output is the ε of its own modality: swapping two inputs (and their times) does not just swap outputs."""
    imgs, t_imgs, official = _golden()
    assert MODALITIES == ("dem", "s1_rtc", "s2_l1c", "s2_l2a")
    order = [1, 0, 2, 3]
    with torch.no_grad(), use_backend("reference"):
        swapped = tiny_net([imgs[i] for i in order], [t_imgs[i] for i in order])
    assert relative_error(swapped[0], official[1]) > 1e-2


def test_released_config_keys_shapes_and_parameter_count():
    expected = json.loads((FIXTURES / "copgen_full_keys.json").read_text())
    with torch.device("meta"):
        net = rsinfer.models.build("copgen-beta")
    shapes = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert len(expected) == 290
    assert shapes == expected
    assert sum(p.numel() for p in net.parameters()) == RELEASED_PARAMS
    assert net.config == CopGenConfig()


def test_build_rejects_unknown_option():
    with pytest.raises(ValueError, match="qkv_bias.*allowed.*embed_dim"):
        rsinfer.models.build("copgen-beta", qkv_bias=True)


def test_forward_rejects_wrong_inputs(tiny_net):
    imgs, t_imgs, _ = _golden()
    with pytest.raises(ValueError, match="expected 4 images"):
        tiny_net(imgs[:3], t_imgs[:3])
    with pytest.raises(ValueError, match=r"imgs\[2\] has shape \(3, 4, 12, 12\)"):
        tiny_net([*imgs[:2], torch.randn(3, 4, 12, 12), imgs[3]], t_imgs)
    with pytest.raises(ValueError, match=r"t_imgs\[1\] has shape \(2,\)"):
        tiny_net(imgs, [t_imgs[0], t_imgs[1][:2], *t_imgs[2:]])


# --- strict, safe loading ---------------------------------------------------------------------------------------------

def test_load_rejects_a_file_that_is_not_a_checkpoint(tmp_path):
    bogus = tmp_path / "weights.pth"
    bogus.write_bytes(b"definitely not a checkpoint")
    with pytest.raises(ValueError, match="weights.pth.*not a weights-only torch checkpoint"):
        rsinfer.models.load("copgen-beta", bogus, **_tiny_config())
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        rsinfer.models.load("copgen-beta", tmp_path / "missing.safetensors", **_tiny_config())


def test_load_rejects_wrong_shapes():
    """The tiny checkpoint into a network with narrower MLPs: every mis-shaped key is named with both shapes."""
    config = {**_tiny_config(), "mlp_ratio": 3.0}
    with pytest.raises(ValueError, match=r"9 mis-shaped keys: .*in_blocks\.0\.mlp\.fc1\.weight "
                                         r"\(checkpoint \(128, 32\), model \(96, 32\)\)"):
        rsinfer.models.load("copgen-beta", WEIGHTS, **config)


def test_load_rejects_extra_and_missing_keys(tmp_path):
    state = load_file(WEIGHTS)
    state["time_img_embeds.0.0.weight"] = torch.zeros(1)  # an mlp_time_embed=True checkpoint would carry these
    del state["decoder_preds.3.bias"]
    path = tmp_path / "edited.safetensors"
    save_file(state, path)
    with pytest.raises(ValueError, match=r"1 missing keys: decoder_preds\.3\.bias; "
                                         r"1 unexpected keys: time_img_embeds\.0\.0\.weight"):
        rsinfer.models.load("copgen-beta", path, **_tiny_config())


def test_load_reads_an_official_torch_pickle(tmp_path):
    """The released format: torch.save of a plain state_dict, read weights-only."""
    path = tmp_path / "nnet_ema.pth"
    torch.save(load_file(WEIGHTS), path)
    net = rsinfer.models.load("copgen-beta", path, **_tiny_config())
    imgs, t_imgs, official = _golden()
    with torch.no_grad(), use_backend("reference"):
        assert_matches_reference(net(imgs, t_imgs)[2], official[2])


# --- the fast CPU path ------------------------------------------------------------------------------------------------

def _official_under_autocast_bf16() -> list[torch.Tensor]:
    """PyTorch's own eager bf16 computation of the official math (how the official sampler runs on CPU)."""
    net = rsinfer.models.load("copgen-beta", WEIGHTS, **_tiny_config())
    imgs, t_imgs, _ = _golden()
    with torch.no_grad(), use_backend("reference"), torch.autocast("cpu", dtype=torch.bfloat16):
        return net(imgs, t_imgs)


@pytest.mark.parametrize("precision, engine", [("float32", "torch"), ("bfloat16", "torch"),
                                               pytest.param("float32", "compile", marks=pytest.mark.slow)])
def test_prepared_network_matches_official(precision, engine):
    loaded = rsinfer.models.load("copgen-beta", WEIGHTS, **_tiny_config())
    before = {k: v.clone() for k, v in loaded.state_dict().items()}
    net = prepare(loaded, precision=precision, engine=engine)
    imgs, t_imgs, official = _golden()
    eps = net(imgs, t_imgs)
    autocast = _official_under_autocast_bf16() if precision == "bfloat16" else [None] * 4
    for ours, ref, lowp in zip(eps, official, autocast):
        assert ours.dtype == torch.float32  # the caller's dtype
        if precision == "bfloat16":
            ours = ours.bfloat16()  # judged as a bf16 result: ≤ 2× the autocast error
        assert_matches_reference(ours, ref, lowp)
    assert all(torch.equal(v, before[k]) for k, v in loaded.state_dict().items())  # the caller's network is untouched
    assert set(net.net.state_dict()) == set(load_file(WEIGHTS))


def test_prepare_rejects_unknown_choices(tiny_net):
    with pytest.raises(ValueError, match=r"supports precisions \('float32', 'bfloat16'\), got 'float16'"):
        prepare(tiny_net, precision="float16")
    with pytest.raises(ValueError, match="'torch' or 'compile' engine, got 'onnxruntime'"):
        prepare(tiny_net, engine="onnxruntime")


def test_the_deprecated_prepare_still_serves_the_network(tiny_net, monkeypatch):
    from rsinfer.engines import base
    from rsinfer.models.prepared import prepare as old_prepare

    monkeypatch.setattr(base, "_warned", set())  # it warns once per process

    imgs, t_imgs, official = _golden()
    with pytest.warns(DeprecationWarning, match="rsinfer.engines.prepare"):
        eps = old_prepare(tiny_net, dtype="float32", mode="eager")(imgs, t_imgs)
    for ours, ref in zip(eps, official):
        assert_matches_reference(ours, ref)
    with pytest.raises(ValueError, match="unknown mode 'jit'"):
        old_prepare(tiny_net, mode="jit")
