"""The ops vocabulary (importable without torch): backend names and op names."""

from typing import Literal, get_args

Backend = Literal["auto", "reference", "triton", "ext"]
BACKEND_CHOICES: tuple[str, ...] = get_args(Backend)  # what a user may select
BACKENDS: tuple[str, ...] = ("reference", "triton", "ext")  # the implementations
OPS: tuple[str, ...] = ("attention", "modulate", "residual_modulate", "add_layernorm", "group_modulate", "accumulate")
