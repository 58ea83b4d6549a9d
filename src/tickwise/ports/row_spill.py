"""Where the training load keeps each instrument's feature matrix: in memory, or spilled to disk.

``keep(values)`` takes one instrument's ``(n, k)`` float64 matrix and returns rows the load can gather
later (``gather(local, cols)``: rows ``local`` in their order, columns ``cols`` or all), so the matrix
need not stay in memory: the training load holds only the keys of every bar and gathers the rows a
training set, a fold's score window or the regime inputs need (``core.dataset.Bars``). The values
gathered are the values kept, bit for bit.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

__all__ = ["KeptRows", "RowSpill"]


class KeptRows(Protocol):
    def __len__(self) -> int: ...

    def gather(self, local: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
        """``(len(local), len(cols))`` float64 (all columns without ``cols``), a new in-memory array."""
        ...


class RowSpill(Protocol):
    def keep(self, values: np.ndarray) -> KeptRows:
        """Keep one instrument's matrix; the caller drops its own reference afterwards."""
        ...
