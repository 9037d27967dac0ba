"""GUIDE §2: who may import whom, checked by walking every module's AST."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Backend modules only `rsinfer.ops` may name.
BACKEND_MODULES = ("triton", "rsinfer._C", "rsinfer.kernels", "onnxruntime", "tensorrt")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / "rsinfer").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    for path in sorted((ROOT / "kernels").rglob("*.py")):
        parts = ("rsinfer", "kernels") + path.relative_to(ROOT / "kernels").with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(module: str, path: Path) -> set[str]:
    names = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                names.add(f"{base}.{node.module}" if node.module else base)
            else:
                names.add(node.module)
                if node.module == "rsinfer":  # `from rsinfer import ops` imports rsinfer.ops
                    names.update(f"rsinfer.{alias.name}" for alias in node.names)
    return names


def _names(imported: str, prefixes: tuple[str, ...]) -> bool:
    return any(imported == p or imported.startswith(p + ".") for p in prefixes)


MODULES = _modules()


def _rule_violations(module: str, imported: set[str]) -> list[str]:
    bad = []
    for name in imported:
        if module.startswith("rsinfer.kernels"):
            if not _names(name, ("torch", "triton", "rsinfer.kernels")) and name.split(".")[0] not in _STDLIB:
                bad.append(f"{module} imports {name}: kernels import torch/triton only")
            continue
        if _names(name, ("triton", "rsinfer._C", "rsinfer.kernels")) and not module.startswith("rsinfer.ops"):
            bad.append(f"{module} imports {name}: only rsinfer.ops names a backend")
        if _names(name, ("onnxruntime", "tensorrt")) and not module.startswith("rsinfer.engines"):
            bad.append(f"{module} imports {name}: only rsinfer.engines runs exported graphs")
        if _names(name, ("rasterio",)) and not module.startswith("rsinfer.io"):
            bad.append(f"{module} imports {name}: only rsinfer.io imports rasterio")
        if module.startswith("rsinfer.samplers") and not (
                _names(name, ("torch", "rsinfer.samplers")) or name.split(".")[0] in _STDLIB):
            bad.append(f"{module} imports {name}: samplers import torch only")
        if module.startswith("rsinfer.scene") and _names(name, ("rsinfer.models", "rsinfer.samplers",
                                                                "rsinfer.pipelines")):
            bad.append(f"{module} imports {name}: the scene engine knows nothing of diffusion")
        if module.startswith("rsinfer.tiling") and _names(name, ("rsinfer",)) and not _names(
                name, ("rsinfer.ops", "rsinfer.tiling", *_SHARED)):
            bad.append(f"{module} imports {name}: tiling primitives import torch and rsinfer.ops only")
        if module.startswith("rsinfer.models") and _names(name, ("rsinfer.io", "rsinfer.scene", "rsinfer.pipelines",
                                                                 "rsinfer.cli", "rsinfer.engines")) \
                and (module, name.split(".")[0] + "." + name.split(".")[1]) not in _EXEMPT:
            bad.append(f"{module} imports {name}: models know nothing of rasters or pipelines")
        if module.startswith("rsinfer.cli") and _names(name, ("rsinfer",)) and not _names(
                name, ("rsinfer.cli", "rsinfer.pipelines", "rsinfer.environment", *_CLI_RUNNERS, *_SHARED)) \
                and name != "rsinfer":
            bad.append(f"{module} imports {name}: the CLI depends on the pipelines and the environment report only")
        if _names(name, ("ray",)) and not module.startswith("rsinfer.batch"):
            bad.append(f"{module} imports {name}: only rsinfer.batch uses the distributed engine")
        if _names(name, ("train",)):
            bad.append(f"{module} imports {name}: the training code imports rsinfer, never the reverse")
        if not module.startswith("rsinfer.cli") and _names(name, ("argparse", "rsinfer.cli")):
            bad.append(f"{module} imports {name}: only the CLI parses arguments")
    return bad


# Infrastructure every layer may use (standard library only inside).
_SHARED = ("rsinfer.lazy_exports", "rsinfer.files", "rsinfer.errors")
# The archive runner and the benchmark harness drive pipelines too; their subcommands may call them.
_CLI_RUNNERS = ("rsinfer.batch", "rsinfer.benchmark")
# Deprecated aliases that keep an old public name alive (they warn once).
_EXEMPT = {("rsinfer.models.prepared", "rsinfer.engines"): "prepare() moved to rsinfer.engines.prepare"}

_STDLIB = {"__future__", "functools", "math", "os", "typing", "dataclasses", "collections", "abc", "itertools",
           "enum", "contextlib", "warnings"}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_layering(module: str) -> None:
    assert _rule_violations(module, _imports(module, MODULES[module])) == []


def test_imports_rules_catch_a_violation() -> None:
    assert _rule_violations("rsinfer.models.copgen", {"triton"})
    assert _rule_violations("rsinfer.samplers.dpm_solver", {"numpy"})
    assert _rule_violations("rsinfer.scene.engine", {"rsinfer.samplers"})
    assert _rule_violations("rsinfer.kernels.attention", {"rsinfer.ops"})
    assert _rule_violations("rsinfer.tiling.blend", {"rsinfer.scene"})
    assert _rule_violations("rsinfer.models.vae", {"rsinfer.io"})
    assert _rule_violations("rsinfer.cli.decloud", {"rsinfer.engines"})
    assert _rule_violations("rsinfer.cli.decloud", {"rsinfer.io"})
    assert not _rule_violations("rsinfer.cli.decloud", {"rsinfer.pipelines.vocabulary", "rsinfer.environment"})
    assert _rule_violations("rsinfer.pipelines.decloud", {"ray"})
    assert _rule_violations("rsinfer.models.copgen", {"rsinfer.engines"})
    assert not _rule_violations("rsinfer.models.prepared", {"rsinfer.engines"})
    assert _rule_violations("rsinfer.cli.scene", {"rsinfer.ops"})  # as `from rsinfer import ops` records it


def test_no_module_prints_outside_the_cli() -> None:
    offenders = []
    for module, path in MODULES.items():
        if module.startswith("rsinfer.cli"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{module}:{node.lineno}")
    assert offenders == []
