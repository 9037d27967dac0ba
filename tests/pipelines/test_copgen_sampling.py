"""CopGenBeta.sample_latents against the official sampler's golden outputs, plus its contracts: names not positions,
seeds, conditions passed through unchanged, the ignored-modality modes, and input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tests.pipelines.copgen_standin import StandInCopGen
from safetensors import safe_open

from rsinfer.pipelines.copgen import MODALITIES, CopGenBeta
from rsinfer.samplers.dpm_solver import singlestep_orders

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "copgen_sampler" / "official_dpm_solver_pp.safetensors"


def _golden() -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(GOLDEN), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def _standin(tensors: dict[str, torch.Tensor]) -> StandInCopGen:
    net = StandInCopGen()
    net.load_state_dict({"mix": tensors["net.mix"], "time": tensors["net.time"]})
    return net


GOLDEN_TENSORS, GOLDEN_METADATA = _golden()
SCENARIOS = json.loads(GOLDEN_METADATA["scenarios"])


def _condition(names, latents: torch.Tensor) -> dict[str, torch.Tensor]:
    return {name: latents[MODALITIES.index(name)] for name in names}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_dpm_solver_pp_3s_matches_official_sampler(scenario: str) -> None:
    spec, t = SCENARIOS[scenario], GOLDEN_TENSORS
    net = _standin(t)
    pipe = CopGenBeta(net, ignored="official-noise-t0")
    targets = list(reversed(spec["targets"]))  # argument order must not matter
    noise = t.get(f"{scenario}.initial_noise")
    initial = None if noise is None else {name: noise[i] for i, name in enumerate(spec["targets"])}
    # The official script seeds the global RNG; the same seed in a Generator gives the same draws.
    generator = torch.Generator().manual_seed(spec["seed"])
    out = pipe.sample_latents(_condition(spec["condition"], t["condition_latents"]), targets, steps=spec["nfe"],
                              sampler="dpm-solver++3s", initial_noise=initial, generator=generator,
                              shape=t["condition_latents"].shape[1:])
    assert list(out) == spec["targets"]
    official = t[f"{scenario}.output"]
    for i, name in enumerate(spec["targets"]):
        err = float((out[name] - official[i]).norm() / official[i].norm())
        assert err <= 1e-4, f"{name}: relative error {err:.2e} against the official sampler"
    # The network was called at the official times (discrete units), all of them, in order.
    ours = torch.stack([call[MODALITIES.index(spec["targets"][0])][0] for call in net.calls])
    assert ours.shape == t[f"{scenario}.call_times"].shape == (spec["nfe"],)
    torch.testing.assert_close(ours, t[f"{scenario}.call_times"], rtol=0, atol=1e-3)


def test_whole_chain_with_the_copgen_network_matches_official_triffuser_sampling() -> None:
    """rsinfer's copgen-beta with the official tiny Triffuser's weights, driven by our pipeline, against the official
    sampler driving the official network (50 NFE, one condition, two ignored modalities, official quirk)."""
    from rsinfer import models

    (name, spec), = json.loads(GOLDEN_METADATA["triffuser_scenario"]).items()
    config, t = json.loads(GOLDEN_METADATA["triffuser_config"]), GOLDEN_TENSORS
    net = models.build("copgen-beta", **config).eval()
    net.load_state_dict({k.removeprefix("triffuser."): v for k, v in t.items() if k.startswith("triffuser.")})
    out = CopGenBeta(net, ignored="official-noise-t0").sample_latents(
        _condition(spec["condition"], t[f"{name}.condition_latents"]), spec["targets"], steps=spec["nfe"],
        sampler="dpm-solver++3s", initial_noise={spec["targets"][0]: t[f"{name}.initial_noise"][0]},
        generator=torch.Generator().manual_seed(spec["seed"]))
    official = t[f"{name}.output"][0]
    err = float((out[spec["targets"][0]] - official).norm() / official.norm())
    assert err <= 1e-4, f"relative error {err:.2e} against the official sampler + Triffuser"


def test_official_step_plan_for_50_nfe() -> None:
    assert singlestep_orders(50) == [3] * 16 + [2]
    assert singlestep_orders(21) == [3] * 6 + [2, 1]
    assert singlestep_orders(22) == [3] * 7 + [1]
    assert all(sum(singlestep_orders(n)) == n for n in range(1, 60))


@pytest.fixture
def standin() -> StandInCopGen:
    return _standin(GOLDEN_TENSORS)


def _latents(seed: int, batch: int = 2, size: int = 7) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(batch, 4, size, size, generator=g) for name in MODALITIES}


@pytest.mark.parametrize("sampler", ["dpm-solver++3s", "dpm-solver++2m", "unipc"])
def test_modality_order_independence(standin: StandInCopGen, sampler: str) -> None:
    z = _latents(3)
    pipe = CopGenBeta(standin)
    a = pipe.sample_latents({"dem": z["dem"], "s2_l2a": z["s2_l2a"]}, ["s2_l1c", "s1_rtc"], steps=7, sampler=sampler,
                            generator=torch.Generator().manual_seed(5))
    b = pipe.sample_latents({"s2_l2a": z["s2_l2a"], "dem": z["dem"]}, ["s1_rtc", "s2_l1c"], steps=7, sampler=sampler,
                            generator=torch.Generator().manual_seed(5))
    for name in ("s1_rtc", "s2_l1c"):
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)
    # Swapping which latent is called which does change the result: names, not positions, carry meaning.
    c = pipe.sample_latents({"dem": z["s2_l2a"], "s2_l2a": z["dem"]}, ["s1_rtc", "s2_l1c"], steps=7, sampler=sampler,
                            generator=torch.Generator().manual_seed(5))
    assert (c["s1_rtc"] - a["s1_rtc"]).abs().max() > 1e-3


def test_seed_reproducibility(standin: StandInCopGen) -> None:
    pipe = CopGenBeta(standin)
    cond = {"s1_rtc": _latents(4)["s1_rtc"]}
    a = pipe.sample_latents(cond, ["s2_l2a"], steps=6, sampler="unipc", generator=torch.Generator().manual_seed(9))
    b = pipe.sample_latents(cond, ["s2_l2a"], steps=6, sampler="unipc", generator=torch.Generator().manual_seed(9))
    c = pipe.sample_latents(cond, ["s2_l2a"], steps=6, sampler="unipc", generator=torch.Generator().manual_seed(10))
    torch.testing.assert_close(a["s2_l2a"], b["s2_l2a"], rtol=0, atol=0)
    assert (a["s2_l2a"] - c["s2_l2a"]).abs().max() > 1e-2


@pytest.mark.parametrize("ignored, t_ignored", [("marginal", 1000.0), ("official-noise-t0", 0.0)])
def test_conditions_pass_through_unchanged_and_time_labels(standin: StandInCopGen, ignored: str,
                                                           t_ignored: float) -> None:
    z = _latents(6)
    seen = []

    def recording(imgs, t_imgs):
        seen.append(([img.clone() for img in imgs], [t.clone() for t in t_imgs]))
        return standin(imgs, t_imgs)

    pipe = CopGenBeta(recording, ignored=ignored)
    pipe.sample_latents({"dem": z["dem"]}, ["s2_l2a"], steps=5, sampler="dpm-solver++2m",
                        generator=torch.Generator().manual_seed(1))
    assert len(seen) == 5
    ignored_draws = []
    for imgs, t_imgs in seen:
        assert torch.equal(imgs[0], z["dem"]) and torch.equal(t_imgs[0], torch.zeros(2))  # condition: clean, t = 0
        assert torch.all(t_imgs[3] > 0)  # target at the solver time
        for i in (1, 2):  # ignored: fresh N(0, I) at every call
            assert torch.equal(t_imgs[i], torch.full((2,), t_ignored))
            ignored_draws.append(imgs[i])
    assert all(not torch.equal(a, b) for a, b in zip(ignored_draws, ignored_draws[1:]))


def test_initial_noise_is_used(standin: StandInCopGen) -> None:
    pipe = CopGenBeta(standin)
    z = _latents(7)
    noise = torch.randn(2, 4, 7, 7)
    condition = {"s1_rtc": z["s1_rtc"], "dem": z["dem"], "s2_l1c": z["s2_l1c"]}
    a, b = (pipe.sample_latents(condition, ["s2_l2a"], steps=4, sampler="unipc", initial_noise={"s2_l2a": noise},
                                generator=torch.Generator().manual_seed(seed)) for seed in (0, 99))
    torch.testing.assert_close(a["s2_l2a"], b["s2_l2a"], rtol=0, atol=0)  # nothing else is random here
    c = pipe.sample_latents(condition, ["s2_l2a"], steps=4, sampler="unipc", initial_noise={"s2_l2a": noise + 0.1})
    assert (c["s2_l2a"] - a["s2_l2a"]).abs().max() > 1e-3


@pytest.mark.parametrize("condition, targets, message", [
    ({"s1": None}, ["s2_l2a"], "unknown modality 's1'"),
    ({"dem": None}, ["dem"], "both condition and target"),
    ({"dem": None}, [], "at least one target"),
    ({"dem": None}, ["s2_l2a", "s2_l2a"], "twice"),
])
def test_bad_modalities_raise(standin: StandInCopGen, condition, targets, message) -> None:
    z = torch.randn(1, 4, 8, 8)
    with pytest.raises(ValueError, match=message):
        CopGenBeta(standin).sample_latents({k: z for k in condition}, targets, steps=2)


def test_bad_options_raise(standin: StandInCopGen) -> None:
    z = torch.randn(1, 4, 8, 8)
    with pytest.raises(ValueError, match="unknown sampler 'ddim'"):
        CopGenBeta(standin).sample_latents({"dem": z}, ["s1_rtc"], steps=2, sampler="ddim")
    with pytest.raises(ValueError, match="unknown ignored-modality mode"):
        CopGenBeta(standin, ignored="zeros")
    with pytest.raises(ValueError, match="initial_noise names"):
        CopGenBeta(standin).sample_latents({"dem": z}, ["s1_rtc"], steps=2, initial_noise={"s2_l2a": z})
    with pytest.raises(ValueError, match="one shape"):
        CopGenBeta(standin).sample_latents({"dem": z, "s2_l1c": torch.randn(1, 4, 9, 9)}, ["s1_rtc"], steps=2)


def test_translate_images_encodes_samples_and_decodes(standin: StandInCopGen) -> None:
    from tests.pipelines.copgen_standin import StandInVAE

    vae = StandInVAE()
    pipe = CopGenBeta(standin, vae)
    images = {"s2_l2a": torch.rand(2, 3, 64, 64), "dem": torch.rand(2, 3, 64, 64)}
    out = pipe.translate(images, ["s1_rtc"], steps=4, sampler="unipc", generator=torch.Generator().manual_seed(2))
    g = torch.Generator().manual_seed(2)
    latents = {name: vae.encode(2 * images[name] - 1, g) for name in ("dem", "s2_l2a")}  # modality order
    z = pipe.sample_latents(latents, ["s1_rtc"], steps=4, sampler="unipc", generator=g)["s1_rtc"]
    torch.testing.assert_close(out["s1_rtc"], ((vae.decode(z) + 1) / 2).clamp(0, 1), rtol=0, atol=0)
    with pytest.raises(ValueError, match="needs a VAE"):
        CopGenBeta(standin).translate(images, ["s1_rtc"])
