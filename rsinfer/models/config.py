"""Building a model's frozen config from the released defaults and the user's overrides."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

Config = TypeVar("Config")


def config_with_overrides(config_cls: type[Config], model: str, overrides: dict[str, Any]) -> Config:
    """`config_cls()` with `overrides` applied; unknown names raise a ValueError listing the allowed ones.

    Lists become tuples, so configs stay hashable and frozen.
    """
    allowed = [f.name for f in dataclasses.fields(config_cls)]
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise ValueError(f"unknown {model} config option(s) {unknown}; allowed: {allowed}")
    return config_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})
