"""`rsinfer env`: versions, CPU features, threads, and every backend and engine with its availability and reason."""

from __future__ import annotations

import argparse

from rsinfer.environment import CPU_FLAGS, environment_report


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("env", help="print versions, CPU features and backend availability")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report = environment_report()
    print(f"rsinfer {report.rsinfer}  python {report.python}  {report.system}")
    features = " ".join(report.cpu_flags) or "none of " + ", ".join(CPU_FLAGS)
    print(f"cpu: {report.cpu_model}; {report.logical_cores} logical cores; features: {features}; bfloat16: "
          f"{'native' if report.native_bf16 else 'emulated (slower than float32)'}")
    print(f"torch threads: {report.torch_threads[0]} intra-op, {report.torch_threads[1]} inter-op; CUDA: {report.cuda}")
    print("packages: " + ", ".join(f"{name} {version}" for name, version in report.packages))
    for title, statuses, width in (("op backends", report.backends, 10), ("network engines", report.engines, 12)):
        print(f"{title}:")
        for status in statuses:
            print(f"  {status.name:<{width}} {'available' if status.available else 'not available'}: "
                  f"{status.reason}")
    return 0
