"""The `rsinfer` command line: the only module that parses arguments, reads RSINFER_* variables or prints.

Each subcommand lives in its own module exposing ``register(subparsers)``, which adds its parser and sets
``func(args) -> int`` as the handler. Subcommands are thin: parse, build the pipeline from its spec, run it
(`rsinfer.cli.pipeline_run`). The shared flags and their meaning: `rsinfer.cli.options`. Start-up imports neither
torch nor GDAL: `rsinfer --help` stays fast.

Failures (`FAILURES`, the table of docs/errors.md): every failure ends the command with one line on stderr,
``rsinfer COMMAND: error: <what, naming the file or flag, and why>``, and an exit status by class (`rsinfer.errors`):
2 for a usage error, 3 for bad input data, 4 for an output or environment error, 128 + the signal's number when
SIGINT, SIGTERM or SIGHUP stopped it (each handled like Ctrl-C: temporary files removed, earlier outputs left as they
were), and 1 for anything else, which is a bug. `--verbose` adds the traceback. Messages name settings by their flags
(``--overwrite``), not by the Python keywords the library uses (``overwrite=True``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import logging
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

from rsinfer.errors import InputDataError, OutputError, RsinferError, UsageError

# Subcommand modules, in the order `rsinfer --help` lists them.
_COMMANDS = ("env", "scene", "translate", "decloud", "pansharpen", "classify", "embed", "fill-gap", "evaluate", "batch",
             "bench")
# Library keyword → command-line flag, where the flag is not the keyword with dashes.
_FLAGS = {"output": "--out"}
_STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


@dataclass(frozen=True)
class Failure:
    """One class of failure (a row of docs/errors.md): its exit status, and what it covers and asks to change."""

    name: str
    status: str
    covers: str


FAILURES: tuple[Failure, ...] = (
    Failure("usage error", "2", "a flag's value or a combination of flags, a path that does not exist, an output that "
                                "exists (without --overwrite) or is also an input; argparse's own errors too. Change "
                                "the command."),
    Failure("input data error", "3", "an input whose content cannot be used: not a raster, no CRS, truncated data, "
                                     "bands that are not the ones the pipeline needs (the bands expected and found "
                                     "are listed), weights holding NaN or Inf; valid inputs that gave NaN or Inf. "
                                     "Change the data."),
    Failure("output or environment error", "4", "an output that is a directory or a symbolic link, a missing or "
                                                "read-only directory, a full disk, too little memory, a backend or "
                                                "engine that cannot run here. Change the environment."),
    Failure("interrupted", "128 + signal", "130 for SIGINT (Ctrl-C), 143 for SIGTERM, 129 for SIGHUP. Temporary "
                                           "files are removed; an earlier output is left as it was."),
    Failure("internal error", "1", "anything else: a bug in rsinfer. Rerun with --verbose and report the traceback."),
)


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGINT, SIGTERM, SIGHUP) raised as an exception in the main thread, so that every cleanup path
    that handles Ctrl-C handles it too."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rsinfer",
                                     description="Inference runtime for remote-sensing generative models")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log at INFO level (backend choices, timings); tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMANDS:
        module_name = f"rsinfer.cli.{name.replace('-', '_')}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name != module_name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.command_line = ["rsinfer", *argv]
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    with _stop_signals_interrupt(), warnings.catch_warnings():
        warnings.showwarning = functools.partial(_warning_line, args.command)
        try:
            return int(args.func(args) or 0)
        except KeyboardInterrupt as err:
            signum = getattr(err, "signum", signal.SIGINT)
            print(f"rsinfer {args.command}: interrupted by {signal.Signals(signum).name}: temporary files removed, "
                  "earlier outputs left as they were", file=sys.stderr)
            return 128 + signum
        except Exception as err:  # every failure ends in one line and an exit status
            status = exit_status(err)
            print(f"rsinfer {args.command}: error: {error_line(err, status)}", file=sys.stderr)
            if args.verbose:
                traceback.print_exception(err, file=sys.stderr)
            return status


def exit_status(err: Exception) -> int:
    """The exit status of a failure (`FAILURES`)."""
    if isinstance(err, InputDataError):
        return 3
    if isinstance(err, (UsageError, FileNotFoundError, FileExistsError, ValueError)):
        return 2  # a path the command names that does not exist, an output it names that does
    if isinstance(err, (OutputError, OSError, MemoryError, RuntimeError)):
        return 4
    return 1


def flag(name: str, value: object) -> str:
    """How the command line names a library setting: ``--overwrite``, ``--tile 256``, ``--out``."""
    option = _FLAGS.get(name, f"--{name.replace('_', '-')}")
    return option if value is None or value is True else f"{option} {value}"


def error_line(err: Exception, status: int) -> str:
    """`err` as one line, settings named by their flags; a bug says so."""
    text = err.render(flag) if isinstance(err, RsinferError) else str(err)
    text = " ".join(text.split()) or type(err).__name__
    if status == 1:
        return f"internal error: {type(err).__name__}: {text} (a bug: rerun with --verbose and report the traceback)"
    return text


def _warning_line(command: str, message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    """A Python warning (e.g. rasterio's) as one line, like the errors."""
    print(f"rsinfer {command}: warning: {' '.join(str(message).split())} ({category.__name__})", file=sys.stderr)


@contextlib.contextmanager
def _stop_signals_interrupt() -> Iterator[None]:
    """While the command runs, SIGINT, SIGTERM and SIGHUP raise `Interrupted` in the main thread (schedulers, `timeout`
    and container stops send SIGTERM; a closed terminal SIGHUP). A signal that is ignored (nohup) stays ignored.
    Signals after the first are ignored, so that the cleanup the first one started completes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping: list[int] = []

    def interrupt(signum: int, frame: object) -> None:
        if stopping:
            return
        stopping.append(signum)
        raise Interrupted(signum)

    previous = {}
    for name in _STOP_SIGNALS:
        number = getattr(signal, name, None)
        if number is None or signal.getsignal(number) is signal.SIG_IGN:
            continue
        previous[number] = signal.signal(number, interrupt)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


if __name__ == "__main__":
    sys.exit(main())
