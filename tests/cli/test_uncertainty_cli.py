"""`--samples K` and `--uncertainty-out PATH` on the command line: the mean and the standard deviation of K draws
(checked for K = 2 against two single runs by the closed form), their tags, and the refusals before any work."""

from __future__ import annotations

import os

import numpy as np
import pytest
import rasterio
from tests.scene.scene_data import S1, S2, crop

from rsinfer.cli import build_parser, main


@pytest.fixture
def crops(tmp_path, monkeypatch) -> dict[str, str]:
    """72 × 90 pixels of the Sen1Floods11 pair inside the demo weights' hold-out (columns 384–511)."""
    monkeypatch.setenv("RSINFER_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "inputs"
    folder.mkdir()
    return {name: str(crop(path, folder / f"{name}.tif", 200, 400, 72, 90)) for name, path in (("s2", S2), ("s1", S1))}


def _decloud(crops, out, *extra) -> int:
    return main(["decloud", "--s2", crops["s2"], "--s1", crops["s1"], "--out", str(out), "--weights", "demo",
                 "--tile", "64", "--overlap", "16", "--quiet", *extra])


def _read(path) -> tuple[np.ndarray, dict[str, str]]:
    with rasterio.open(path) as ds:
        return ds.read().astype(np.float64), ds.tags()


def test_two_draws_give_the_mean_and_the_closed_form_std(crops, tmp_path, capsys) -> None:
    """For K = 2 with ddof=1: mean = (a + b)/2 and std = |a − b|/√2 of the single runs with seeds 3 and 4."""
    stochastic = ("--sampler", "i2sb", "--steps", "2")
    for seed in (3, 4):
        assert _decloud(crops, tmp_path / f"seed{seed}.tif", *stochastic, "--seed", str(seed), "--dtype",
                        "float32") == 0
    (a, _), (b, _) = _read(tmp_path / "seed3.tif"), _read(tmp_path / "seed4.tif")
    mean_path, std_path, png = tmp_path / "mean.tif", tmp_path / "std.tif", tmp_path / "mean.png"
    assert main(["decloud", "--s2", crops["s2"], "--s1", crops["s1"], "--out", str(mean_path), "--weights", "demo",
                 "--tile", "64", "--overlap", "16", *stochastic, "--seed", "3", "--samples", "2",
                 "--uncertainty-out", str(std_path), "--preview", str(png)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {std_path} (per-band standard deviation of 2 draws)" in out and f"wrote {png}" in out
    (mean, mean_tags), (std, std_tags) = _read(mean_path), _read(std_path)
    with rasterio.open(mean_path) as m, rasterio.open(std_path) as s, rasterio.open(crops["s2"]) as src:
        assert m.dtypes == src.dtypes and s.dtypes == ("float32",) * 13  # the mean in the S2 input's DN type
        assert (m.crs, m.transform, m.shape) == (s.crs, s.transform, s.shape) == (src.crs, src.transform, src.shape)
        assert m.descriptions == s.descriptions == src.descriptions
    dn = (a + b) / 2  # rounded to whole DN; 0 is the S2 nodata, so a valid 0 is written as 1
    assert np.where(np.rint(dn) == 0, mean == 1, np.abs(mean - dn) <= 0.5 + 1e-3).all()
    np.testing.assert_allclose(std, np.abs(a - b) / np.sqrt(2), rtol=1e-5, atol=1e-3)
    assert (std > 10).mean() > 0.75  # i2sb's draws differ (the demo network passes the bridge noise through)
    for tags in (mean_tags, std_tags):
        assert tags["RSINFER_SAMPLES"] == "2" and tags["RSINFER_SEED"] == "3"
        assert tags["RSINFER_WEIGHTS"] == "demo:dbcr-demo" and "--uncertainty-out" in tags["RSINFER_COMMAND"]
    assert mean_tags["RSINFER_UNCERTAINTY"] == "std.tif" and std_tags["RSINFER_MEAN"] == "mean.tif"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("extra, message", [
    (("--samples", "3"), "--samples 3 draws need a stochastic sampler (i2sb, or dbim): --sampler alpha-ratio is "
                         "deterministic"),
    (("--samples", "3", "--sampler", "i2sb"), "--samples 3 draws need at least 2 sampler steps: with --steps 1"),
    (("--samples", "0", "--sampler", "i2sb"), "--samples 0: the number of draws must be an integer in 1..64"),
    (("--uncertainty-out", "UNC"), "is the standard deviation of several draws: ask for --samples 1 of at least 2"),
])
def test_refusals_come_before_any_work(crops, tmp_path, capsys, extra, message) -> None:
    extra = tuple(str(tmp_path / "std.tif") if e == "UNC" else e for e in extra)
    assert _decloud(crops, tmp_path / "out.tif", *extra) == 2
    assert message in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["inputs"]


def test_the_uncertainty_map_is_not_another_output(crops, tmp_path, capsys) -> None:
    out = tmp_path / "out.tif"
    assert _decloud(crops, out, "--sampler", "i2sb", "--steps", "2", "--samples", "2", "--uncertainty-out",
                    str(out)) == 2
    assert f"the uncertainty map {out} is the output too" in capsys.readouterr().err
    assert _decloud(crops, out, "--sampler", "i2sb", "--steps", "2", "--samples", "2", "--uncertainty-out",
                    crops["s1"]) == 2
    assert "would destroy the input" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["inputs"]


def test_translate_has_the_same_flags() -> None:
    args = build_parser().parse_args(["translate", "--input", "s1_rtc=s1.tif", "--target", "s2_l2a", "--out", "o.tif",
                                      "--random-weights", "--samples", "4", "--uncertainty-out", "std.tif"])
    assert (args.samples, args.uncertainty_out) == (4, "std.tif")
    assert build_parser().parse_args(["translate", "--input", "s1_rtc=s1.tif", "--target", "s2_l2a", "--out",
                                      "o.tif", "--random-weights"]).samples == 1
