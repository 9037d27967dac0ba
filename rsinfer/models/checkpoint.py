"""Reading checkpoints safely and loading them strictly, with errors that list what is wrong."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

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
            raise ValueError(f"checkpoint {str(path)!r} is not a readable safetensors file: {err}") from err
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        raise ValueError(f"checkpoint {str(path)!r} is not a weights-only torch checkpoint or safetensors file: "
                         f"{err}") from err
    if isinstance(obj, dict):
        wrapped = [k for k in _WRAPPER_KEYS if k in obj and isinstance(obj[k], dict)]
        if len(wrapped) == 1 and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            obj = obj[wrapped[0]]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"checkpoint {str(path)!r} does not hold a state_dict of tensors")
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
        raise ValueError(f"{source} does not match {type(net).__name__} "
                         f"({len(expected)} keys expected): " + "; ".join(problems))
    net.load_state_dict(state_dict, strict=True)
