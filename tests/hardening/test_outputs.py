"""Findings 4, 6 and the output points of 7: outputs are checked before any work and appear together or not at all;
no run replaces a file it did not mean to (another run's, an input, a link's target); files get the umask's mode;
messages name flags on the command line and keywords in Python."""

from __future__ import annotations

import os

import pytest

from rsinfer import pipelines
from rsinfer.errors import OutputError, OutputExistsError
from rsinfer.files import OutputGroup, commit_all
from rsinfer.pipelines.dbcr import DbCr, SamplingPlan
from rsinfer.pipelines.decloud import Decloud
from rsinfer.scene import run_scene

from .conftest import hidden_files
from .test_weights import SMALL_DBCR


def _small_decloud() -> Decloud:
    return Decloud.around(DbCr.with_random_weights(0, network=SMALL_DBCR, plan=SamplingPlan(steps=1), tile=64))


def test_a_preview_into_a_missing_directory_fails_before_the_raster_is_written(crops, tmp_path, cli) -> None:
    """Before: the raster was written first, the preview then failed (naming a temporary file), and the rerun needed
    --overwrite."""
    args = ["decloud", "--s2", crops["s2"], "--s1", crops["s1"], "--out", tmp_path / "clear.tif", "--random-weights",
            "--tile", "64", "--overlap", "16", "--quiet"]
    outcome = cli(*args, "--preview", tmp_path / "missing" / "clear.png")
    assert outcome.status == 4
    assert outcome.line == (f"rsinfer decloud: error: {tmp_path / 'missing' / 'clear.png'}: the output directory "
                            f"{tmp_path / 'missing'} does not exist")
    assert not (tmp_path / "clear.tif").exists() and hidden_files(tmp_path) == []
    assert cli(*args, "--preview", tmp_path / "clear.png").status == 0  # the rerun needs no --overwrite
    assert (tmp_path / "clear.tif").is_file() and (tmp_path / "clear.png").is_file()


def test_translate_checks_its_output_before_building_its_networks(data_dir, tmp_path, cli, monkeypatch) -> None:
    """Before: --out was checked after the whole sampling run (hours at 50 steps on a large scene)."""
    built = []
    monkeypatch.setattr(pipelines, "build", lambda spec: built.append(spec) or pytest.fail("built before the check"))
    s1 = data_dir / "sen1floods11" / "Spain_7370579_S1Hand.tif"
    (tmp_path / "exists.tif").write_bytes(b"x")
    for out, status, message in ((tmp_path / "missing" / "o.tif", 4, f"the output directory {tmp_path / 'missing'} "
                                                                      "does not exist"),
                                 (tmp_path / "exists.tif", 2, "already exists (pass --overwrite to replace it)")):
        outcome = cli("translate", "--random-weights", "--input", f"s1_rtc={s1}", "--target", "s2_l2a", "--out", out)
        assert outcome.status == status and outcome.line == f"rsinfer translate: error: {out}: {message}"
    assert built == []


def test_the_raster_and_its_preview_appear_together_or_not_at_all(crops, tmp_path) -> None:
    """Another run writes the preview while this one computes: this run fails (no --overwrite), and leaves neither
    its raster nor its preview; the other run's preview stays."""
    pipe = _small_decloud()
    out, preview = tmp_path / "clear.tif", tmp_path / "clear.png"
    render = pipe.preview

    def render_after_another_run(output, plan):
        preview.write_bytes(b"the other run's preview")
        return render(output, plan)

    pipe.preview = render_after_another_run
    with pytest.raises(OutputExistsError, match="clear.png: appeared while it was being written"):
        pipelines.run(pipe, {"s2": crops["s2"], "s1": crops["s1"]}, out, tiling=pipelines.Tiling(64, 16),
                      preview=preview, progress=False)
    assert not out.exists() and preview.read_bytes() == b"the other run's preview" and hidden_files(tmp_path) == []


def test_a_concurrent_run_s_output_is_not_replaced_without_overwrite(crops, tmp_path) -> None:
    """The no-clobber check also holds at the final move, not only at the start."""
    out, calls = tmp_path / "o.tif", []

    def other_run_finishes_meanwhile(batch):
        calls.append(1)
        if len(calls) == 2:  # after this run checked the path and opened its temporary file
            out.write_bytes(b"the other run's result")
        return batch["s1"][:, :1]

    with pytest.raises(OutputExistsError, match="o.tif: appeared while it was being written"):
        run_scene(other_run_finishes_meanwhile, {"s1": crops["s1"]}, out, tile=64, overlap=16, batch_size=1,
                  progress=False)
    assert len(calls) == 6
    assert out.read_bytes() == b"the other run's result" and hidden_files(tmp_path) == []


def test_commit_all_undoes_the_targets_it_placed_when_one_is_refused(tmp_path) -> None:
    with OutputGroup() as group:
        first, second = group.temporary(tmp_path / "a.tif"), group.temporary(tmp_path / "b.png")
        first.write_bytes(b"a"), second.write_bytes(b"b")
        (tmp_path / "b.png").write_bytes(b"someone else's")
        with pytest.raises(FileExistsError):
            group.commit()
        assert not (tmp_path / "a.tif").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.png"]
    assert (tmp_path / "b.png").read_bytes() == b"someone else's"
    one, two = tmp_path / ".1", tmp_path / ".2"
    one.write_bytes(b"1"), two.write_bytes(b"2")
    assert commit_all([(one, tmp_path / "b.png"), (two, tmp_path / "c")], replace=True) == [tmp_path / "b.png",
                                                                                           tmp_path / "c"]
    assert (tmp_path / "b.png").read_bytes() == b"1" and (tmp_path / "c").read_bytes() == b"2"


def test_an_output_that_is_an_input_is_refused(crops, tmp_path, cli) -> None:
    before = crops["s2"].read_bytes()
    same = tmp_path / "." / crops["s2"].name  # another spelling of the same file
    outcome = cli("scene", "--product", "ndwi", "--input", f"s2={crops['s2']}", "--out", same, "--overwrite")
    assert outcome.status == 2
    assert outcome.line == (f"rsinfer scene: error: {same} is input 's2': writing it would destroy the input; give "
                            "--out another file")
    assert crops["s2"].read_bytes() == before


def test_a_symbolic_link_as_output_is_refused(crops, tmp_path, cli) -> None:
    """Documented: rsinfer does not write through links (replacing the link would silently break what it named)."""
    target = tmp_path / "kept.tif"
    target.write_bytes(b"kept")
    for name, points_to in (("link.tif", target), ("dangling.tif", tmp_path / "nowhere.tif")):
        link = tmp_path / name
        link.symlink_to(points_to)
        outcome = cli("scene", "--product", "ndwi", "--input", f"s2={crops['s2']}", "--out", link, "--overwrite")
        assert outcome.status == 4
        assert outcome.line == (f"rsinfer scene: error: {link}: is a symbolic link (to {points_to}); rsinfer does not "
                                "write through links: name the file itself, or remove the link")
        assert link.is_symlink() and os.readlink(link) == str(points_to)
    assert target.read_bytes() == b"kept" and not (tmp_path / "nowhere.tif").exists()


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_outputs_get_the_mode_of_the_umask(crops, tmp_path, umask) -> None:
    """Finding 6: 0666 minus the umask, as GDAL's and Python's own writers give, never mkstemp's 0600."""
    out, preview = tmp_path / "clear.tif", tmp_path / "clear.png"
    old = os.umask(umask)
    try:
        pipelines.run(_small_decloud(), {"s2": crops["s2"], "s1": crops["s1"]}, out, preview=preview,
                      tiling=pipelines.Tiling(64, 16), progress=False)
    finally:
        os.umask(old)
    assert {oct(path.stat().st_mode & 0o777) for path in (out, preview)} == {oct(0o666 & ~umask)}


def test_messages_name_flags_on_the_command_line_and_keywords_in_python(crops, tmp_path, cli) -> None:
    out = tmp_path / "o.tif"
    out.write_bytes(b"x")
    line = cli("scene", "--product", "ndwi", "--input", f"s2={crops['s2']}", "--out", out).line
    assert line == f"rsinfer scene: error: {out}: already exists (pass --overwrite to replace it)"
    with pytest.raises(OutputExistsError) as caught:
        pipelines.run(pipelines.build(pipelines.PipelineSpec("ndwi", "none", {})), {"s2": crops["s2"]}, out)
    assert str(caught.value) == f"{out}: already exists (pass overwrite=True to replace it)"
    memory = OutputError("lower {tile} or {batch_size}", tile=None, batch_size=None)
    assert str(memory) == "lower tile or batch_size"


def test_an_output_in_a_directory_named_like_a_file_is_an_output_error(crops, tmp_path, cli) -> None:
    (tmp_path / "plain").write_bytes(b"")
    outcome = cli("scene", "--product", "ndwi", "--input", f"s2={crops['s2']}", "--out", tmp_path / "plain" / "o.tif")
    assert outcome.status == 4
    assert outcome.line == (f"rsinfer scene: error: {tmp_path / 'plain' / 'o.tif'}: the output directory "
                            f"{tmp_path / 'plain'} does not exist")

