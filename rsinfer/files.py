"""Atomic file output, in one place: every file rsinfer writes for a user goes through here.

A file is written under a temporary name in the target's directory (hidden: ``.<name>.<random><suffix>``) and only
then moved onto the target, so a reader never sees a half-written file and a failure or interrupt leaves nothing
behind (`TemporaryFile` removes it). Files get the mode an ordinary ``open()`` would give them (0666 minus the process
umask: 0644 under umask 022, as GDAL's own writers), not mkstemp's private 0600.

`commit(temporary, target, replace)`: with ``replace=False`` the move refuses to clobber a target that appeared while
the file was being written (another run writing the same output): ``link`` + ``unlink``, which fails with
FileExistsError instead of silently replacing it; where the filesystem has no hard links, a checked ``rename``.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path


def process_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def create_temporary(target: str | os.PathLike, suffix: str = ".tmp") -> Path:
    """An empty, hidden temporary file beside `target`, with the mode a plain open() would give it."""
    target = Path(target)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    try:
        os.fchmod(fd, 0o666 & ~process_umask())
    finally:
        os.close(fd)
    return Path(name)


def commit(temporary: str | os.PathLike, target: str | os.PathLike, replace: bool) -> Path:
    """Move the finished `temporary` onto `target`; with replace=False an existing target raises FileExistsError."""
    temporary, target = Path(temporary), Path(target)
    if replace:
        os.replace(temporary, target)
        return target
    try:
        os.link(temporary, target)
    except FileExistsError:
        raise FileExistsError(f"{target}: appeared while it was being written (another run?); not replaced") from None
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if target.exists():  # no hard links here: the best a plain rename can do
            raise FileExistsError(f"{target}: appeared while it was being written (another run?); not replaced") \
                from None
        os.replace(temporary, target)
        return target
    temporary.unlink()
    return target


class TemporaryFile:
    """``with TemporaryFile(target) as tmp: write tmp; tmp.commit()`` — removed unless committed."""

    def __init__(self, target: str | os.PathLike, suffix: str = ".tmp", replace: bool = False) -> None:
        self.target, self.replace = Path(target), replace
        self.path = create_temporary(self.target, suffix)
        self.committed = False

    def commit(self) -> Path:
        commit(self.path, self.target, self.replace)
        self.committed = True
        return self.target

    def discard(self) -> None:
        if not self.committed:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> TemporaryFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


def write_bytes_atomically(target: str | os.PathLike, data: bytes, replace: bool = True) -> Path:
    """`data` into `target` through a temporary file (fsync'd before the move)."""
    with TemporaryFile(target, replace=replace) as tmp:
        with open(tmp.path, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return tmp.commit()
