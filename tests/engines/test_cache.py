"""The artifact cache: keys, verification against the sidecar, concurrent builds from two processes."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rsinfer.engines.cache import ArtifactCache, EngineKey

ROOT = Path(__file__).resolve().parents[2]
KEY = EngineKey("ab" * 32, "10.9.0", "NVIDIA H100 80GB HBM3", "fp16",
                (("x_t", (1, 13, 8, 8), (4, 13, 256, 256), (4, 13, 256, 256)),))


@pytest.mark.parametrize("field, value", [("onnx_sha256", "cd" * 32), ("tensorrt_version", "10.10.0"),
                                          ("gpu_name", "NVIDIA A100-SXM4-80GB"), ("precision", "bf16"),
                                          ("profile", (("x_t", (1, 13, 8, 8), (4, 13, 512, 512),
                                                        (4, 13, 512, 512)),))])
def test_engine_key_changes_with_every_part(field: str, value) -> None:
    assert dataclasses.replace(KEY, **{field: value}).digest() != KEY.digest()
    assert dataclasses.replace(KEY).digest() == KEY.digest()


def test_build_once_then_reuse(tmp_path) -> None:
    cache, builds = ArtifactCache(tmp_path), []

    def build() -> bytes:
        builds.append(1)
        return b"engine-bytes" * 100

    assert cache.get_or_build("a.engine", build) == b"engine-bytes" * 100
    assert cache.get_or_build("a.engine", build) == b"engine-bytes" * 100
    assert len(builds) == 1


@pytest.mark.parametrize("damage", ["flip", "truncate", "no_sidecar", "bad_sidecar"])
def test_a_corrupted_artifact_is_rebuilt_never_returned(tmp_path, damage: str) -> None:
    cache = ArtifactCache(tmp_path)
    good = bytes(range(256)) * 64
    cache.get_or_build("m.onnx", lambda: good)
    path, sidecar = tmp_path / "m.onnx", tmp_path / "m.onnx.sha256"
    if damage == "flip":
        data = bytearray(good)
        data[1000] ^= 1
        path.write_bytes(bytes(data))
    elif damage == "truncate":
        path.write_bytes(good[:-10])
    elif damage == "no_sidecar":
        sidecar.unlink()
    else:
        sidecar.write_text("{not json")
    assert cache.read_verified("m.onnx") is None
    rebuilt = []
    assert cache.get_or_build("m.onnx", lambda: rebuilt.append(1) or good) == good
    assert rebuilt == [1] and path.read_bytes() == good and cache.read_verified("m.onnx") == good


def test_two_processes_building_at_once_build_once(tmp_path) -> None:
    script = textwrap.dedent(f"""
        import importlib.util, os, sys, time
        # load the cache module alone (stdlib only), not the rsinfer package: no torch import, a fast start
        spec = importlib.util.spec_from_file_location("cache", {str(ROOT / 'rsinfer' / 'engines' / 'cache.py')!r})
        cache = sys.modules["cache"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(cache)
        def build():
            with open({str(tmp_path / 'builds.log')!r}, 'a') as log:
                log.write(f'{{os.getpid()}}\\n')
            time.sleep(1.0)  # a slow build: the other process must wait for it, not start its own
            return b'x' * 1_000_000
        while not os.path.exists({str(tmp_path / 'go')!r}):
            time.sleep(0.01)
        data = cache.ArtifactCache({str(tmp_path / 'cache')!r}).get_or_build('shared.engine', build)
        print(len(data), data == b'x' * 1_000_000)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    (tmp_path / "go").touch()
    outputs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outputs == ["1000000 True", "1000000 True"]
    assert len((tmp_path / "builds.log").read_text().split()) == 1
    leftovers = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert leftovers == ["shared.engine", "shared.engine.lock", "shared.engine.sha256"]  # no temporary files left
