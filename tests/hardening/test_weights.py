"""Finding 1: non-finite weights are refused when loaded, naming the tensors; a run whose valid inputs give NaN fails
and writes nothing."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from safetensors.torch import save_file
from torch import nn

from rsinfer import models, pipelines
from rsinfer.errors import InputDataError
from rsinfer.models.checkpoint import strict_load
from rsinfer.pipelines.dbcr import DbCr, SamplingPlan
from rsinfer.pipelines.decloud import Decloud
from rsinfer.scene import TileFunction, Tiles, run_scene

from .conftest import hidden_files

SMALL_DBCR = {"widths": [8, 16], "encoder_blocks": [1, 1], "decoder_blocks": [1, 1], "fusion_heads": [1, 1]}
TINY_COPGEN = {"img_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2}


def _poisoned(state: dict[str, torch.Tensor], poison: dict[str, tuple[int, float]]) -> dict[str, torch.Tensor]:
    """`state` with `count` leading values of each named tensor set to `value` (NaN or Inf)."""
    state = {key: tensor.clone() for key, tensor in state.items()}
    for key, (count, value) in poison.items():
        state[key].view(-1)[:count] = value
    return state


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_loading_refuses_nan_and_inf_parameters_and_names_them(tmp_path, suffix) -> None:
    state = models.build("dbcr", **SMALL_DBCR).state_dict()
    weight = next(key for key in state if key.endswith(".weight") and state[key].numel() >= 2)
    bad = _poisoned(state, {"head.bias": (1, float("nan")), weight: (2, float("inf"))})
    path = tmp_path / f"bad{suffix}"
    save_file(bad, path) if suffix == ".safetensors" else torch.save(bad, path)
    with pytest.raises(InputDataError) as caught:
        models.load("dbcr", path, **SMALL_DBCR)
    message = str(caught.value)
    assert str(path) in message and "2 tensor(s) hold NaN or Inf" in message
    assert "head.bias (1 NaN)" in message and f"{weight} (2 Inf)" in message
    clean = tmp_path / f"clean{suffix}"
    save_file(state, clean) if suffix == ".safetensors" else torch.save(state, clean)
    loaded = models.load("dbcr", clean, **SMALL_DBCR)
    assert torch.equal(loaded.state_dict()["head.bias"], state["head.bias"])


def test_copgen_beta_with_a_nan_pos_embed_is_refused(tmp_path) -> None:
    state = _poisoned(models.build("copgen-beta", **TINY_COPGEN).state_dict(), {"pos_embed": (5, float("nan"))})
    torch.save(state, tmp_path / "nnet.pth")
    with pytest.raises(InputDataError, match=r"pos_embed \(5 NaN\)"):
        models.load("copgen-beta", tmp_path / "nnet.pth", **TINY_COPGEN)


def test_non_finite_constants_of_the_architecture_still_load() -> None:
    """Only tensors that are finite in the freshly built network are checked: a mask of -inf is the architecture's."""

    class Masked(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(3, 3)
            self.register_buffer("mask", torch.triu(torch.full((3, 3), float("-inf")), diagonal=1))

    net = Masked()
    strict_load(net, Masked().state_dict())
    assert torch.isinf(net.mask).sum() == 3
    with pytest.raises(InputDataError, match=r"proj.weight \(1 NaN\)"):
        strict_load(net, _poisoned(Masked().state_dict(), {"proj.weight": (1, float("nan"))}))


def test_decloud_refuses_a_checkpoint_with_a_nan_bias(crops, tmp_path, cli) -> None:
    """The issue's case: DB-CR weights with head.bias NaN gave a 100 % nodata raster and exit 0."""
    state = _poisoned(models.build("dbcr").state_dict(), {"head.bias": (13, float("nan"))})
    save_file(state, tmp_path / "dbcr.safetensors")
    out = tmp_path / "clear.tif"
    outcome = cli("decloud", "--s2", crops["s2"], "--s1", crops["s1"], "--weights", tmp_path / "dbcr.safetensors",
                  "--out", out, "--tile", "64", "--overlap", "16", "--quiet")
    assert outcome.status == 3
    assert outcome.line.startswith("rsinfer decloud: error: ") and "head.bias (13 NaN)" in outcome.line
    assert not out.exists() and hidden_files(tmp_path) == []


def test_a_network_that_gives_nan_fails_the_run_and_writes_nothing(crops, tmp_path) -> None:
    """NaN reaching the output where every input is valid is a failure, never nodata in its place."""
    dbcr = DbCr.with_random_weights(0, network=SMALL_DBCR, plan=SamplingPlan(steps=1), tile=64)
    with torch.no_grad():
        dbcr.net.head.bias[3] = float("nan")  # past the loader's check, as a float16 overflow would be
    out = tmp_path / "clear.tif"
    out.write_bytes(b"the previous result")
    with pytest.raises(InputDataError, match=r"NaN or Inf at \d+ pixels where every input was valid"):
        pipelines.run(Decloud.around(dbcr), {"s2": crops["s2"], "s1": crops["s1"]}, out,
                      tiling=pipelines.Tiling(64, 16), output_options=pipelines.OutputOptions(overwrite=True),
                      progress=False)
    assert out.read_bytes() == b"the previous result" and hidden_files(tmp_path) == []


def test_nan_only_where_an_input_is_invalid_is_nodata(crops, tmp_path) -> None:
    """The engine's rule, pixel by pixel: NaN where an input is nodata is written as nodata; NaN at one valid pixel
    fails the run and names that pixel's place on the output grid."""
    with rasterio.open(crops["s1"]) as ds:
        vv = ds.read(1)
    vv[40:50, 60:70] = np.nan
    with rasterio.open(crops["s1"], "r+") as ds:
        ds.write(vv, 1)

    class NanWhereInvalid(TileFunction):
        def __call__(self, tiles: Tiles) -> torch.Tensor:
            return torch.where(tiles.valid[:, None], tiles.inputs["s1"][:, :1] * 2, torch.nan)

    summary = run_scene(NanWhereInvalid(), {"s1": crops["s1"]}, tmp_path / "a.tif", tile=64, overlap=16,
                        progress=False)
    assert summary.tiles_run == 6
    with rasterio.open(tmp_path / "a.tif") as ds:
        written = ds.read(1)
    assert np.isnan(written[40:50, 60:70]).all()
    np.testing.assert_allclose(written[~np.isnan(vv)], 2 * vv[~np.isnan(vv)], rtol=1e-6)

    def nan_at_one_valid_pixel(batch):
        x = batch["s1"][:, :1] * 2
        x[0, 0, 5, 7] = float("nan")
        return x

    with pytest.raises(InputDataError, match=r"at 1 pixels where every input was valid \(first at row 5, col 7\)"):
        run_scene(nan_at_one_valid_pixel, {"s1": crops["s1"]}, tmp_path / "b.tif", tile=64, overlap=16,
                  batch_size=1, progress=False)
    assert not (tmp_path / "b.tif").exists() and hidden_files(tmp_path) == []
