"""Issue 17, item 4: without gdalinfo the tests' gdalinfo cross-checks skip with a loud reason, or fail where
RSINFER_REQUIRE_GDALINFO is set (CI); with it they run (tests/scene/scene_data.py `gdalinfo`)."""

from __future__ import annotations

import shutil

import pytest

from tests.scene.scene_data import S2, gdalinfo


def test_without_gdalinfo_the_cross_check_skips_loudly(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("RSINFER_REQUIRE_GDALINFO", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"^GDALINFO MISSING: the independent gdalinfo cross-check"):
        gdalinfo(S2)


def test_without_gdalinfo_the_cross_check_fails_where_required(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("RSINFER_REQUIRE_GDALINFO", "1")
    with pytest.raises(pytest.fail.Exception, match=r"GDALINFO MISSING.*RSINFER_REQUIRE_GDALINFO requires it"):
        gdalinfo(S2)


def test_with_gdalinfo_the_cross_check_runs():
    if shutil.which("gdalinfo") is None:
        pytest.skip("gdalinfo is not installed here (make gdal)")
    info = gdalinfo(S2)
    assert info["size"] == [512, 512] and len(info["bands"]) == 13
