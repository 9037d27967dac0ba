"""Atomic file output, in one place: every file rsinfer writes for a user goes through here.

A file is written under a temporary name in the target's directory (hidden: ``.<name>.<random><suffix>``) and only
then moved onto the target, so a reader never sees a half-written file and a failure or interrupt leaves nothing
behind (`TemporaryFile` removes it). Files get the mode an ordinary ``open()`` would give them (0666 minus the process
umask: 0644 under umask 022, as GDAL's own writers), not mkstemp's private 0600.

`commit(temporary, target, replace)`: with ``replace=False`` the move refuses to clobber a target that appeared while
the file was being written (another run writing the same output): ``link`` + ``unlink``, which fails with
FileExistsError instead of silently replacing it; where the filesystem has no hard links, a checked ``rename``.

A job with several outputs (a raster and its preview) writes each to its temporary and moves them together
(`OutputGroup`, `commit_all`): without ``replace`` every target is first linked to its temporary, and if one of them
is refused the links made so far are removed, so a failure leaves none of the outputs behind.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rsinfer.errors import OutputExistsError


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


def probe_directory(target: str | os.PathLike) -> None:
    """Raise the OSError (EACCES, EROFS, ENOSPC, ...) that creating a file beside `target` would meet, before any work
    is done for it: a temporary file is created there and removed."""
    create_temporary(target, ".probe").unlink()


def _appeared(target: Path) -> OutputExistsError:
    return OutputExistsError(f"{target}: appeared while it was being written (another run?); not replaced (pass "
                             "{overwrite} to replace it)", overwrite=True)


def _place_new(temporary: Path, target: Path) -> bool:
    """Make `target` name `temporary`'s file without replacing anything: True when it is a hard link (the temporary
    remains), False when it had to be a rename (no hard links on this filesystem)."""
    try:
        os.link(temporary, target)
        return True
    except FileExistsError:
        raise _appeared(target) from None
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
    if target.exists():  # no hard links here: the best a plain rename can do
        raise _appeared(target)
    os.replace(temporary, target)
    return False


def commit_all(moves: Sequence[tuple[str | os.PathLike, str | os.PathLike]], replace: bool) -> list[Path]:
    """Move each finished temporary onto its target, all or none. Without `replace` an existing target raises
    FileExistsError and the targets placed before it are removed again (their temporaries stay for the caller to
    remove); with it, targets are replaced one after the other."""
    moves = [(Path(temporary), Path(target)) for temporary, target in moves]
    if replace:
        for temporary, target in moves:
            os.replace(temporary, target)
        return [target for _, target in moves]
    placed: list[tuple[Path, Path, bool]] = []
    try:
        for temporary, target in moves:
            placed.append((temporary, target, _place_new(temporary, target)))
    except BaseException:
        for temporary, target, linked in placed:
            if linked:
                target.unlink(missing_ok=True)
            else:
                os.replace(target, temporary)
        raise
    for temporary, _, linked in placed:
        if linked:
            temporary.unlink()
    return [target for _, target in moves]


def commit(temporary: str | os.PathLike, target: str | os.PathLike, replace: bool) -> Path:
    """Move the finished `temporary` onto `target`; with replace=False an existing target raises FileExistsError."""
    return commit_all([(temporary, target)], replace)[0]


class OutputGroup:
    """Outputs that appear together or not at all: each written to a temporary file (`temporary`, or a finished one
    handed over with `add`), then all moved into place by `commit()`. Leaving the block without committing removes
    every temporary; without `replace` no existing file is replaced."""

    def __init__(self, replace: bool = False) -> None:
        self.replace = replace
        self._moves: list[tuple[Path, Path]] = []
        self.committed = False

    def temporary(self, target: str | os.PathLike, suffix: str = ".tmp") -> Path:
        """A new temporary file beside `target`, moved onto it at commit."""
        path = create_temporary(target, suffix)
        self._moves.append((path, Path(target)))
        return path

    def add(self, temporary: str | os.PathLike, target: str | os.PathLike) -> None:
        """Take over a finished `temporary`, moved onto `target` at commit (removed if the group is discarded)."""
        self._moves.append((Path(temporary), Path(target)))

    def temporary_of(self, target: str | os.PathLike) -> Path:
        """Where `target`'s content is until the commit."""
        target = Path(target)
        return next(temporary for temporary, t in self._moves if t == target)

    def commit(self) -> list[Path]:
        targets = commit_all(self._moves, self.replace)
        self.committed = True
        return targets

    def discard(self) -> None:
        if not self.committed:
            for temporary, _ in self._moves:
                temporary.unlink(missing_ok=True)

    def __enter__(self) -> OutputGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


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
