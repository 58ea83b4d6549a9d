"""Scale-free features derived elementwise from other slots, and the warm-up mask.

One kernel serves both paths: batch applies it to every column of the slot matrix, live to a single
column. Elementwise IEEE arithmetic gives the same bits either way. A non-finite result (division by a
zero range or ATR) becomes NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tickwise.core.features.jit import njit_no_nrt

OP_SUBDIV = 0  # (a - b) / c
OP_DIV = 1  # a / b
OP_POS = 2  # (a - b) / (c - b): position of a inside [b, c]
OP_AXPY = 3  # a + k * b


@dataclass(frozen=True, slots=True)
class Derived:
    """One derived feature: ``name = op(a, b, c, k)`` over other slot names."""

    name: str
    op: int
    a: str
    b: str
    c: str = ""
    k: float = 0.0

    @property
    def inputs(self) -> tuple[str, ...]:
        if self.op in (OP_SUBDIV, OP_POS):
            return (self.a, self.b, self.c)
        return (self.a, self.b)


@njit_no_nrt(cache=True, error_model="numpy")  # four row views per op, per live bar: no refcounts
def apply_derived(
    m: np.ndarray, ops: np.ndarray, consts: np.ndarray, warm: np.ndarray, first_index: int
) -> None:
    """Compute every derived slot (``ops[i] = (op, dst, a, b, c)``) in table order, then mask warm-up.

    ``m`` is the (slots, columns) matrix; column ``j`` holds bar ``first_index + j`` counted from the
    anchor. Feature slot ``f`` is set to NaN while ``bar < warm[f]``.
    """
    n = m.shape[1]
    for i in range(ops.shape[0]):
        op = ops[i, 0]
        dst = m[ops[i, 1]]
        a = m[ops[i, 2]]
        b = m[ops[i, 3]]
        c = m[ops[i, 4]]
        kk = consts[i]
        if op == OP_SUBDIV:
            for j in range(n):
                dst[j] = (a[j] - b[j]) / c[j]
        elif op == OP_DIV:
            for j in range(n):
                dst[j] = a[j] / b[j]
        elif op == OP_POS:
            for j in range(n):
                dst[j] = (a[j] - b[j]) / (c[j] - b[j])
        else:
            for j in range(n):
                dst[j] = a[j] + kk * b[j]
        for j in range(n):
            if not np.isfinite(dst[j]):
                dst[j] = np.nan
    for f in range(warm.shape[0]):
        stop = min(warm[f] - first_index, n)
        row = m[f]
        for j in range(stop):
            row[j] = np.nan
