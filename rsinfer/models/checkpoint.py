"""Reading checkpoints safely and loading them strictly, with errors that list what is wrong (`InputDataError`: the
file exists but its content cannot be used).

A checkpoint must also hold finite numbers: a NaN or Inf parameter (a diverged training run, a corrupt file, an
edited tensor) spreads through every convolution and attention it reaches, and the pipelines would turn the result
into an all-nodata raster or a constant image that still looks like a success. `strict_load` refuses such tensors and
names them (`InputDataError`). Only tensors whose value in the freshly built network is finite are checked, so an
architecture that keeps non-finite constants (an attention mask of -inf) still loads. There is no override: no model
here has a use for non-finite weights, and a checkpoint that needs one would be a model with such constants, which the
rule above already accepts.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from rsinfer.errors import InputDataError

# Containers some training scripts wrap a state_dict in; a checkpoint holding exactly one of them is unwrapped.
_WRAPPER_KEYS = ("state_dict", "model", "module", "net", "nnet")
_MAX_LISTED = 12


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors from `path`: safetensors, or a torch pickle read with ``weights_only=True`` (never arbitrary code)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist or is not a file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as err:  # safetensors raises its own error types for corrupt headers
            raise InputDataError(f"checkpoint {str(path)!r} is not a readable safetensors file: {err}") from err
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        raise InputDataError(f"checkpoint {str(path)!r} is not a weights-only torch checkpoint or safetensors "
                             f"file: {err}") from err
    if isinstance(obj, dict):
        wrapped = [k for k in _WRAPPER_KEYS if k in obj and isinstance(obj[k], dict)]
        if len(wrapped) == 1 and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            obj = obj[wrapped[0]]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputDataError(f"checkpoint {str(path)!r} does not hold a state_dict of tensors")
    return obj


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED])
    return shown + (f", ... ({len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else "")


def strict_load(net: nn.Module, state_dict: dict[str, torch.Tensor], source: str = "state_dict") -> None:
    """Load every key with its exact shape, or raise one error listing missing, unexpected and mis-shaped keys."""
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    misshaped = sorted(f"{k} (checkpoint {tuple(state_dict[k].shape)}, model {tuple(expected[k].shape)})"
                       for k in set(expected) & set(state_dict) if state_dict[k].shape != expected[k].shape)
    problems = [f"{len(keys)} {what}: {_listing(keys)}" for what, keys in
                (("missing keys", missing), ("unexpected keys", unexpected), ("mis-shaped keys", misshaped)) if keys]
    if problems:
        raise InputDataError(f"{source} does not match {type(net).__name__} "
                             f"({len(expected)} keys expected): " + "; ".join(problems))
    non_finite = non_finite_tensors(state_dict, expected)
    if non_finite:
        raise InputDataError(f"{source}: {len(non_finite)} tensor(s) hold NaN or Inf values: {_listing(non_finite)} "
                             "(a diverged training run or a damaged file); refusing to load them")
    net.load_state_dict(state_dict, strict=True)


def non_finite_tensors(state_dict: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> list[str]:
    """Keys of floating-point tensors of `state_dict` holding NaN or Inf where the `reference` tensor (the freshly
    built network's) is finite, with what they hold, e.g. "head.bias (3 NaN)"."""
    found = []
    for key in sorted(state_dict):
        tensor = state_dict[key]
        if not tensor.is_floating_point() or bool(torch.isfinite(tensor).all()):
            continue
        if key in reference and not bool(torch.isfinite(reference[key]).all()):
            continue  # the architecture itself holds non-finite constants here
        nan, inf = int(torch.isnan(tensor).sum()), int(torch.isinf(tensor).sum())
        found.append(f"{key} ({', '.join(f'{n} {what}' for n, what in ((nan, 'NaN'), (inf, 'Inf')) if n)})")
    return found
