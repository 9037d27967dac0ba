"""The environment report: versions, CPU features, threads, and every op backend and network engine with the reason it
can or cannot run here. `rsinfer env` prints it; benchmarks record it; `auto` choices read the CPU flags from it."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from dataclasses import dataclass

CORE_PACKAGES = ("torch", "numpy", "safetensors", "rasterio", "affine")
# Optional packages → the rsinfer extra that installs them (pyproject.toml). TensorRT has none: NVIDIA ships it for
# CUDA hosts, and it cannot be installed or tested on our machines.
EXTRAS = {"triton": "triton", "onnx": "onnx", "onnxruntime": "onnx", "ray": "ray", "matplotlib": "plots",
          "pystac": "stac"}
NO_EXTRA = {"tensorrt": "NVIDIA's TensorRT 10 for CUDA hosts (no rsinfer extra)"}
PACKAGES = (*CORE_PACKAGES, *EXTRAS, *NO_EXTRA)
CPU_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")


@dataclass(frozen=True)
class Status:
    name: str
    available: bool
    reason: str


@dataclass(frozen=True)
class EnvironmentReport:
    rsinfer: str
    python: str
    system: str
    cpu_model: str
    cpu_flags: tuple[str, ...]
    logical_cores: int
    torch_threads: tuple[int, int]  # intra-op, inter-op
    cuda: str
    packages: tuple[tuple[str, str], ...]
    backends: tuple[Status, ...]
    engines: tuple[Status, ...]

    @property
    def native_bf16(self) -> bool:
        """The CPU computes bfloat16 natively (avx512_bf16 or AMX): only then is bfloat16 faster than float32."""
        return "avx512_bf16" in self.cpu_flags or "amx_bf16" in self.cpu_flags


def cpu_model_and_flags() -> tuple[str, tuple[str, ...]]:
    """The CPU model name and which of `CPU_FLAGS` it has (from /proc/cpuinfo)."""
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
    return model, tuple(flag for flag in CPU_FLAGS if flag in flags)


def package_version(package: str) -> str:
    """The installed version of `package`, or "not installed — " and how to install it."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        if package in EXTRAS:
            return f"not installed — pip install 'rsinfer[{EXTRAS[package]}]'"
        if package in NO_EXTRA:
            return f"not installed — {NO_EXTRA[package]}"
        return "not installed — a core dependency: reinstall rsinfer"


def environment_report() -> EnvironmentReport:
    """Everything `rsinfer env` shows (imports torch and probes every backend and engine)."""
    import torch

    import rsinfer
    from rsinfer import ops
    from rsinfer.engines import engine_statuses

    model, flags = cpu_model_and_flags()
    return EnvironmentReport(
        rsinfer.__version__, platform.python_version(), f"{platform.system()} {platform.machine()}", model, flags,
        os.cpu_count() or 1, (torch.get_num_threads(), torch.get_num_interop_threads()),
        torch.cuda.get_device_name() if torch.cuda.is_available() else "no device",
        tuple((p, package_version(p)) for p in PACKAGES),
        tuple(Status(s.name, s.available, s.reason) for s in ops.backend_statuses()),
        tuple(Status(s.name, s.available, s.reason) for s in engine_statuses()))
