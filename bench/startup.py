"""Start-up time of the command line (issue 17, item 5: `rsinfer --help` and `rsinfer <command> --help` under 1 s).

    .venv/bin/python bench/startup.py [--repeats 11] [--commands env scene ...]

Each candidate is a fresh process, timed from spawn to exit (wall clock, so it includes the interpreter start, site and
the console script's entry-point lookup, as a user sees it): ``python -c pass`` (the interpreter alone, the floor),
``python -c "import rsinfer"``, ``rsinfer --help`` and ``rsinfer <command> --help`` for every command `rsinfer --help`
lists. One warm-up round (file cache), then `--repeats` rounds with the candidates interleaved, so machine load hits
them alike. The table gives the median with its min–max, the median above the interpreter floor, and the heavy
packages the command imported (from one extra run under ``-X importtime``; none is the target). JSON lines go to
bench/startup.jsonl.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
RSINFER = str(BIN / "rsinfer")
HEAVY = ("torch", "numpy", "rasterio", "onnxruntime", "onnx", "ray", "triton", "matplotlib", "pystac", "scipy")
TARGET_S = 1.0


def listed_commands() -> list[str]:
    out = subprocess.run([RSINFER, "--help"], capture_output=True, text=True, check=True).stdout
    return re.findall(r"^    ([a-z][a-z-]*)  ", out, re.MULTILINE)


def candidates(commands: list[str]) -> dict[str, list[str]]:
    found = {"python -c pass": [sys.executable, "-c", "pass"],
             "python -c 'import rsinfer'": [sys.executable, "-c", "import rsinfer"],
             "rsinfer --help": [RSINFER, "--help"]}
    found.update({f"rsinfer {command} --help": [RSINFER, command, "--help"] for command in commands})
    return found


def wall_time(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def heavy_imports(argv: list[str]) -> list[str]:
    """The HEAVY packages `argv` imports (its Python run under -X importtime)."""
    program = argv[1:] if argv[0] == sys.executable else argv  # a console script runs as `python <script>`
    log = subprocess.run([sys.executable, "-X", "importtime", *program], capture_output=True, text=True,
                         check=True).stderr
    imported = {line.split("|")[-1].strip().split(".")[0] for line in log.splitlines()
                if line.startswith("import time:")}
    return sorted(imported & set(HEAVY))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11, help="timed rounds after one warm-up round (default 11)")
    parser.add_argument("--commands", nargs="*", help="commands to time (default: every command rsinfer lists)")
    parser.add_argument("--jsonl", default=str(Path(__file__).with_name("startup.jsonl")),
                        help="where the JSON lines go (appended)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    runs = candidates(args.commands if args.commands is not None else listed_commands())
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_index in range(args.repeats + 1):
        for name, argv in runs.items():
            elapsed = wall_time(argv)
            if round_index:  # round 0 warms the file cache
                times[name].append(elapsed)
    floor = statistics.median(times["python -c pass"])
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    print(f"rsinfer start-up, {date}: {cpu_model()}, {len(os.sched_getaffinity(0))} CPUs, "
          f"Python {platform.python_version()}; median of {args.repeats} fresh processes, interleaved")
    print(f"{'command':<34} {'median ms':>10} {'min–max ms':>14} {'above python':>13}  heavy imports")
    rows = []
    for name, argv in runs.items():
        median = statistics.median(times[name])
        heavy = heavy_imports(argv)
        row = dict(bench="startup", date=date, command=name, median_s=median, min_s=min(times[name]),
                   max_s=max(times[name]), above_interpreter_s=median - floor, heavy_imports=heavy,
                   repeats=args.repeats, cpu=cpu_model(), under_target=median < TARGET_S)
        rows.append(row)
        print(f"{name:<34} {median * 1e3:>10.0f} {min(times[name]) * 1e3:>6.0f}–{max(times[name]) * 1e3:<7.0f} "
              f"{round((median - floor) * 1e3):>12d}  {', '.join(heavy) or 'none'}")
    worst = max((r for r in rows if r["command"].startswith("rsinfer")), key=lambda r: r["median_s"])
    print(f"slowest: {worst['command']} at {worst['median_s'] * 1e3:.0f} ms (target < {TARGET_S * 1e3:.0f} ms)")
    with open(args.jsonl, "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
