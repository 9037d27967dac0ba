"""Compile every kernel ahead of time for a CUDA architecture, on a machine without a GPU.

The interpreter runs programs the compiler rejects (a name given two types by the branches of an `if`, dot operands
under 16 wide, non-constexpr globals...), so passing the interpreter tests does not prove a kernel builds. Triton's
frontend, its MLIR passes and the ptxas shipped in the triton wheel need no device: `compile_all(90)` lowers each
kernel to a cubin for sm_90 with the launch configuration the CUDA launchers use (the first autotune config for
attention) and returns the shared memory each needs. Arguments are specialised as a typical launch would make them:
unit innermost strides become constants, pointers and the other strides are known multiples of 16. Import
rsinfer.kernels without TRITON_INTERPRET for this: the kernels must be JIT functions, not interpreted ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from rsinfer.kernels.accumulate import _BLOCK as _ACCUMULATE_BLOCK
from rsinfer.kernels.accumulate import _accumulate_kernel
from rsinfer.kernels.arguments import INTERPRETING
from rsinfer.kernels.attention import _CONFIGS as _ATTENTION_CONFIGS
from rsinfer.kernels.attention import _attention_fwd_kernel
from rsinfer.kernels.group_modulation import _BLOCK as _GROUP_BLOCK
from rsinfer.kernels.group_modulation import (
    _BLOCK_CHUNKS,
    _combine_stats_kernel,
    _group_modulate_kernel,
    _partial_stats_kernel,
)
from rsinfer.kernels.layernorm import _add_layernorm_kernel
from rsinfer.kernels.modulation import _modulate_rows_kernel

_TRITON_TYPES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}
_FLOAT_SCALARS = ("qk_scale", "eps")


@dataclass(frozen=True)
class _Build:
    """One kernel instance: constexpr values, strides that are 1, pointer types (default: the data dtype), launch
    options."""
    name: str
    kernel: object
    constexprs: dict
    unit_strides: tuple[str, ...]
    pointers: dict = field(default_factory=dict)
    num_warps: int = 4
    num_stages: int = 3


def _builds(data: str) -> list[_Build]:
    attention_config = _ATTENTION_CONFIGS[0]
    row_block = dict(BLOCK_ROWS=2, BLOCK_D=2048)  # D = 1152 (DiT-XL width) at 4096 elements per program
    stats = dict(MEAN="*fp32", M2="*fp32", SAMPLE_MEAN="*fp32", SAMPLE_RSTD="*fp32")
    return [
        _Build("attention", _attention_fwd_kernel,
               dict(HEAD_DIM=72, BLOCK_D=128, DOT_FP32=False, DOT_PRECISION="ieee" if data == "fp32" else "tf32",
                    **attention_config.kwargs),
               ("stride_qd", "stride_kd", "stride_vd", "stride_od"),
               num_warps=attention_config.num_warps, num_stages=attention_config.num_stages),
        _Build("residual_modulate", _modulate_rows_kernel, dict(WITH_RESIDUAL=True, **row_block),
               ("stride_xd", "stride_yd", "stride_gd", "stride_hd", "stride_cd"),
               dict(GATE="*fp32", SHIFT="*fp32", SCALE="*fp32", SEGMENT="*i32"), num_warps=8),
        _Build("modulate", _modulate_rows_kernel, dict(WITH_RESIDUAL=False, **row_block),
               ("stride_xd", "stride_yd", "stride_gd", "stride_hd", "stride_cd"),
               dict(SHIFT="*fp32", SCALE="*fp32", SEGMENT="*i32"), num_warps=8),
        _Build("add_layernorm", _add_layernorm_kernel, row_block, ("stride_xd", "stride_rd", "stride_w", "stride_b"),
               num_warps=8),
        _Build("group_modulate.partial_stats", _partial_stats_kernel, dict(CONTIGUOUS=True, BLOCK=_GROUP_BLOCK),
               ("stride_w",), stats, num_warps=8),
        _Build("group_modulate.combine_stats", _combine_stats_kernel,
               dict(BLOCK=_GROUP_BLOCK, BLOCK_CHUNKS=_BLOCK_CHUNKS), (), stats),
        _Build("group_modulate", _group_modulate_kernel, dict(CONTIGUOUS=True, BLOCK=_GROUP_BLOCK),
               ("stride_w", "stride_hc", "stride_sc"), stats, num_warps=8),
        _Build("group_modulate.strided", _group_modulate_kernel, dict(CONTIGUOUS=False, BLOCK=_GROUP_BLOCK),
               ("stride_hc", "stride_sc"), stats, num_warps=8),
        _Build("accumulate", _accumulate_kernel, dict(BLOCK=_ACCUMULATE_BLOCK),
               ("stride_cw", "stride_ww", "stride_tw", "stride_qw"), dict(WEIGHT_CANVAS="*fp32", TILE_WEIGHT="*fp32")),
    ]


def _specialised(fn: triton.JITFunction, build: _Build, data: str) -> ASTSource:
    """The kernel as a launch on typical tensors specialises it (see the module docstring)."""
    constexprs = build.constexprs | {stride: 1 for stride in build.unit_strides}
    signature, attrs = {}, {}
    for index, arg in enumerate(fn.arg_names):
        if arg in constexprs:
            signature[arg] = "constexpr"
        elif arg.isupper():  # pointers are the capitalised arguments
            signature[arg] = build.pointers.get(arg, f"*{data}")
            attrs[(index,)] = [["tt.divisibility", 16]]
        else:  # sizes, strides, offsets are int32; eps and the attention scale are float32
            signature[arg] = "fp32" if arg in _FLOAT_SCALARS else "i32"
            if arg.startswith("stride_"):
                attrs[(index,)] = [["tt.divisibility", 16]]
    return ASTSource(fn=fn, signature=signature, attrs=attrs,
                     constexprs={(fn.arg_names.index(k),): v for k, v in constexprs.items()})


def compile_all(arch: int, dtype: str = "bfloat16") -> dict[str, int]:
    """Compile every kernel for sm_`arch` with `dtype` data; returns kernel name → shared memory in bytes.

    Raises whatever the compiler raises (a `CompilationError` names the kernel line).
    """
    if INTERPRETING:
        raise RuntimeError("compile_all needs compiled kernels: import rsinfer.kernels without TRITON_INTERPRET=1")
    torch_dtype = getattr(torch, dtype, None)
    if torch_dtype not in _TRITON_TYPES:
        raise ValueError(f"dtype {dtype!r} is not one of {[str(d).removeprefix('torch.') for d in _TRITON_TYPES]}")
    data = _TRITON_TYPES[torch_dtype]
    target = GPUTarget("cuda", arch, 32)
    shared = {}
    for build in _builds(data):
        fn = build.kernel.fn if isinstance(build.kernel, triton.runtime.Autotuner) else build.kernel
        compiled = triton.compile(_specialised(fn, build, data), target=target,
                                  options=dict(num_warps=build.num_warps, num_stages=build.num_stages))
        shared[build.name] = compiled.metadata.shared
    return shared
