"""``fma(a, b, c)``: ``a * b + c`` with one rounding, callable from numba code.

The ta-lib 0.8 C library is built with ``.fma`` clones of some functions (chosen at run time on a CPU
with FMA), in which GCC contracted some ``x * k + y`` into one ``vfmadd``: EMA's
``((x - ema) * k) + ema`` (checked: 0 differences with FMA, hundreds per 200k volatile bars without),
ADOSC's EMAs, MORNINGSTAR's and PIERCING's ``c + body * penetration``. A replica of those must fuse
exactly the same operations. Numba itself never contracts (no fastmath), so every FMA in the compiled
step is an explicit call of this intrinsic (``llvm.fma.f64``).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from llvmlite import ir  # type: ignore[import-untyped]
from numba import config as numba_config
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def _fma_intrinsic(typingctx: object, a: object, b: object, c: object) -> tuple[object, object]:
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context: object, builder: ir.IRBuilder, signature: object, args: list[object]) -> object:
        d = ir.DoubleType()
        fnty = ir.FunctionType(d, [d, d, d])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.fma.f64")  # type: ignore[no-untyped-call]
        return builder.call(fn, args)

    return sig, codegen


def _fma_exact(a: float, b: float, c: float) -> float:
    """``a * b + c`` with one rounding, in plain Python (for ``NUMBA_DISABLE_JIT=1`` runs).

    Fractions are exact and ``float(Fraction)`` rounds correctly (to nearest, ties to even), which is
    exactly what a hardware FMA does for finite operands; non-finite operands need no fusing.
    """
    if not (math.isfinite(a) and math.isfinite(b) and math.isfinite(c)):
        return a * b + c
    exact = Fraction(a) * Fraction(b) + Fraction(c)
    if exact == 0:
        return a * b + c  # keeps IEEE's sign of zero
    try:
        return float(exact)
    except OverflowError:  # beyond the largest double: round-to-nearest gives the signed infinity
        return math.inf if exact > 0 else -math.inf


# Jitted code calls fma(a, b, c) (the stubs see the typing signature). With the JIT disabled (the
# coverage pass of the kernels in `make test`) the intrinsic cannot execute: the exact Python FMA runs.
fma: Any = _fma_exact if numba_config.DISABLE_JIT else _fma_intrinsic  # type: ignore[attr-defined]
