"""Triton kernels for the rsinfer ops, installed as `rsinfer.kernels` (one kernel and its launcher per file).

Each public function has the signature of its spec in `rsinfer.ops.reference`; `rsinfer.ops` dispatches to them under
the ``triton`` backend. They run on CUDA tensors, or on CPU tensors in the Triton interpreter when
``TRITON_INTERPRET=1`` is set before this package is imported. Kernels import only torch and triton.
`rsinfer.kernels.compile_check` compiles every kernel for a CUDA architecture on a machine without a GPU.
"""

from rsinfer.kernels.accumulate import accumulate
from rsinfer.kernels.attention import attention
from rsinfer.kernels.group_modulation import group_modulate
from rsinfer.kernels.layernorm import add_layernorm
from rsinfer.kernels.modulation import modulate, residual_modulate

__all__ = ["attention", "modulate", "residual_modulate", "add_layernorm", "group_modulate", "accumulate"]
