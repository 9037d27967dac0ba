"""The `rsinfer` command line: the only module that parses arguments, reads RSINFER_* variables or prints.

Each subcommand lives in its own module exposing ``register(subparsers)``, which adds its parser and sets
``func(args) -> int`` as the handler. Subcommands are thin: parse, build the pipeline from its spec, run it
(`rsinfer.cli.pipeline_run`). The shared flags and their meaning: `rsinfer.cli.options`. Start-up imports neither
torch nor GDAL: `rsinfer --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Subcommand modules, in the order `rsinfer --help` lists them.
_COMMANDS = ("env", "scene", "translate", "decloud", "pansharpen", "classify", "embed", "fill-gap", "evaluate", "batch",
             "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rsinfer",
                                     description="Inference runtime for remote-sensing generative models")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level (backend choices, timings)")
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
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, FileExistsError, RuntimeError) as err:
        print(f"rsinfer {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
