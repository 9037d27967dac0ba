"""A directory of built artifacts (ONNX graphs, TensorRT engines) that is safe to share between processes.

- Each artifact is named by a key digest and has a sidecar ``<name>.sha256`` holding its size and SHA-256.
- A reader loads the artifact's bytes and checks them against the sidecar *before* using them: a truncated or
  corrupted file is reported, deleted and rebuilt, never loaded.
- A build takes an exclusive file lock (``fcntl.flock`` on ``<name>.lock``), re-checks whether another process
  finished the artifact meanwhile, writes to a private temporary file and publishes it with an atomic rename, the
  artifact first and its sidecar second (a reader that sees the artifact without its sidecar treats it as missing and
  waits on the lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from rsinfer.files import write_bytes_atomically

_log = logging.getLogger("rsinfer.engines")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class EngineKey:
    """What a TensorRT engine depends on; any change gives a different digest (and file)."""

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    precision: str
    profile: tuple[tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]], ...]  # (input, min, opt, max)

    def digest(self) -> str:
        return sha256_bytes(json.dumps(asdict(self), sort_keys=True).encode())[:32]


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class ArtifactCache:
    """Verified, lock-protected storage of build outputs under `directory` (created if missing)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.directory / name

    def read_verified(self, name: str) -> bytes | None:
        """The artifact's bytes if it exists and matches its sidecar; None if it is missing or incomplete."""
        path, sidecar = self.path(name), self.path(name + ".sha256")
        if not path.is_file() or not sidecar.is_file():
            return None
        try:
            record = json.loads(sidecar.read_text())
            data = path.read_bytes()
        except (OSError, ValueError):
            return None
        if len(data) != record.get("size") or sha256_bytes(data) != record.get("sha256"):
            return None
        return data

    def get_or_build(self, name: str, build: Callable[[], bytes]) -> bytes:
        """The verified bytes of artifact `name`, building them with `build()` (once across processes) if needed."""
        data = self.read_verified(name)
        if data is not None:
            return data
        with _exclusive(self.path(name + ".lock")):
            data = self.read_verified(name)  # another process may have built it while we waited
            if data is not None:
                return data
            path = self.path(name)
            if path.exists():
                _log.warning("cached %s does not match its recorded size/hash (corrupted or incomplete); rebuilding",
                             path)
                path.unlink()
            self.path(name + ".sha256").unlink(missing_ok=True)
            _log.info("building %s", path)
            data = build()
            self._publish(name, data)
            return data

    def put(self, name: str, data: bytes) -> None:
        """Store `data` as artifact `name` (replacing it), under the lock, with its sidecar."""
        with _exclusive(self.path(name + ".lock")):
            self.path(name + ".sha256").unlink(missing_ok=True)
            self._publish(name, data)

    def _publish(self, name: str, data: bytes) -> None:
        """Atomic renames, artifact first, sidecar second (call with the lock held)."""
        write_bytes_atomically(self.path(name), data)
        write_bytes_atomically(self.path(name + ".sha256"),
                          json.dumps({"size": len(data), "sha256": sha256_bytes(data)}).encode())
