"""`rsinfer env`: versions, CPU features, threads, and every backend with its availability and reason."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform

import torch

from rsinfer import ops

_PACKAGES = ("torch", "numpy", "triton", "rasterio", "onnx", "onnxruntime", "safetensors", "tensorrt")
_CPU_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("env", help="print versions, CPU features and backend availability")
    parser.set_defaults(func=run)


def _cpu_model_and_flags() -> tuple[str, list[str]]:
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    return model, [flag for flag in _CPU_FLAGS if flag in flags]


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def run(args: argparse.Namespace) -> int:
    import rsinfer

    model, flags = _cpu_model_and_flags()
    print(f"rsinfer {rsinfer.__version__}  python {platform.python_version()}  "
          f"{platform.system()} {platform.machine()}")
    features = " ".join(flags) or "none of " + ", ".join(_CPU_FLAGS)
    print(f"cpu: {model}; {os.cpu_count()} logical cores; features: {features}")
    print(f"torch threads: {torch.get_num_threads()} intra-op, {torch.get_num_interop_threads()} inter-op; "
          f"CUDA: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'no device'}")
    print("packages: " + ", ".join(f"{p} {_version(p)}" for p in _PACKAGES))
    print("op backends:")
    for status in ops.backend_statuses():
        state = "available" if status.available else "not available"
        print(f"  {status.name:<10} {state}: {status.reason}")
    from rsinfer.engines import engine_statuses

    print("network engines:")
    for status in engine_statuses():
        state = "available" if status.available else "not available"
        print(f"  {status.name:<12} {state}: {status.reason}")
    return 0
