"""Casting float32 results to the output dtype with the GPU's rounding, also under the interpreter.

A GPU rounds float32 → bfloat16 to nearest even. The Triton 3.9 interpreter truncates instead (its fp_trunc ignores the
rounding mode), and its explicit round-to-nearest path drops the carry when the mantissa overflows. So under the
interpreter bfloat16 results are rounded here with integer arithmetic (the usual add-0x7FFF-plus-odd-bit trick);
compiled kernels keep the plain hardware cast. Interpreter tests then see the numbers a GPU would produce.
"""

from __future__ import annotations

import triton
import triton.language as tl

from rsinfer.kernels.arguments import INTERPRETING

_ROUND_BF16_BY_HAND = tl.constexpr(INTERPRETING)


@triton.jit
def cast_rounded(x, DTYPE: tl.constexpr):
    """x (float32) cast to DTYPE, rounding to nearest even."""
    if _ROUND_BF16_BY_HAND:
        if DTYPE == tl.bfloat16:
            bits = x.to(tl.float32).to(tl.uint32, bitcast=True)
            bits = bits + 0x7FFF + ((bits >> 16) & 1)
            return (bits >> 16).to(tl.uint16).to(tl.bfloat16, bitcast=True)
    return x.to(DTYPE)
