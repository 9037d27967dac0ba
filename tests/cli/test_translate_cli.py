"""`rsinfer translate`: the weights contract, random-weights stamping, argument errors."""

from __future__ import annotations

import zlib

import pytest
import rasterio
import torch
from tests.pipelines.copgen_standin import StandInCopGen, StandInVAE

from rsinfer import models
from rsinfer.cli import main


def test_without_weights_says_what_to_pass(data_dir, tmp_path, capsys) -> None:
    s1 = data_dir / "sen1floods11" / "Spain_7370579_S1Hand.tif"
    code = main(["translate", "--input", f"s1_rtc={s1}", "--target", "s2_l2a", "--out", str(tmp_path / "o.tif")])
    err = capsys.readouterr().err
    assert code == 2 and "--weights" in err and "--weights vae=" in err and "--random-weights" in err
    assert not (tmp_path / "o.tif").exists()


def test_random_weights_are_stamped(data_dir, tmp_path, capsys, monkeypatch) -> None:
    built = []

    def cheap_build(name: str, **overrides):  # the released sizes would take minutes on CPU
        built.append(name)
        return StandInCopGen() if name == "copgen-beta" else StandInVAE()

    monkeypatch.setattr(models, "build", cheap_build)
    s1 = data_dir / "sen1floods11" / "Spain_7370579_S1Hand.tif"
    out, preview = tmp_path / "o.tif", tmp_path / "o.png"
    code = main(["translate", "--random-weights", "--input", f"s1_rtc={s1}", "--target", "s2_l2a", "--out", str(out),
                 "--steps", "2", "--seed", "3", "--preview", str(preview)])
    assert code == 0 and built == ["copgen-beta", "sd-vae"]
    assert "RANDOM WEIGHTS" in capsys.readouterr().out
    with rasterio.open(out) as dst, rasterio.open(s1) as src:
        assert dst.tags()["RSINFER_WEIGHTS"] == "random:seed=3" and dst.tags()["RSINFER_PIPELINE"] == "translate"
        assert dst.tags()["RSINFER_STEPS"] == "2" and dst.tags()["RSINFER_SAMPLER"] == "unipc"
        assert (dst.crs, dst.transform, dst.shape) == (src.crs, src.transform, src.shape)
    png = preview.read_bytes()
    assert b"tEXtRSINFER_WEIGHTS\x00random:seed=3" in png
    # The banner is burnt in: a red band across the top of the preview.
    idat = png[png.index(b"IDAT") + 4:png.index(b"IEND") - 8]
    first_row = torch.frombuffer(bytearray(zlib.decompress(idat)[:1 + 512 * 3]), dtype=torch.uint8)[1:].view(512, 3)
    assert first_row[:, 0].float().mean() > 150 and first_row[:, 1].float().mean() < 60


def test_bad_arguments(data_dir, tmp_path, capsys) -> None:
    s1 = data_dir / "sen1floods11" / "Spain_7370579_S1Hand.tif"
    out = str(tmp_path / "o.tif")
    assert main(["translate", "--random-weights", "--input", f"sar={s1}", "--target", "s2_l2a", "--out", out]) == 2
    assert "unknown modality 'sar'" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse's own usage error (exit 2)
        main(["translate", "--random-weights", "--input", str(s1), "--target", "s2_l2a", "--out", out])
    assert "expected NAME=PATH" in capsys.readouterr().err
    assert main(["translate", "--random-weights", "--weights", str(s1), "--input", f"s1_rtc={s1}", "--target",
                 "s2_l2a", "--out", out]) == 2
    assert "excludes" in capsys.readouterr().err


def test_deprecated_flags_still_work(data_dir, tmp_path, capsys, monkeypatch) -> None:
    """--mode eager|compiled and --vae PATH are the old names of --engine torch|compile and --weights vae=PATH."""
    from rsinfer.cli import build_parser

    args = build_parser().parse_args(["translate", "--mode", "compiled", "--vae", "v.pth", "--input", "s1_rtc=x.tif",
                                      "--target", "dem", "--out", "o.tif"])
    assert args.engine == "compile" and args.vae == "v.pth"
    err = capsys.readouterr().err
    assert "--mode is deprecated; use --engine" in err and "--vae is deprecated" in err
