"""Where the training load keeps each instrument's feature matrix: in memory, or spilled to disk.

``keep(values)`` takes one instrument's ``(n, k)`` float64 matrix and returns rows the load can gather
later (``gather(local, cols)``: rows ``local`` in their order, columns ``cols`` or all), so the matrix
need not stay in memory: the training load holds only the keys of every bar and gathers the rows a
training set, a fold's score window or the regime inputs need (``core.dataset.Bars``). The values
gathered are the values kept, bit for bit.

``keep_column(values)`` does the same for one 1-D typed array (a training set's keys and labels, an
instrument's kept labels: int8, int64 or float64 per row), read back whole or by rows
(``read(rows)``), the same values and dtype, so no array of the training rows need stay resident.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

__all__ = ["KeptColumn", "KeptRows", "RowSpill"]


class KeptRows(Protocol):
    def __len__(self) -> int: ...

    def gather(self, local: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
        """``(len(local), len(cols))`` float64 (all columns without ``cols``), a new in-memory array."""
        ...


class KeptColumn(Protocol):
    def __len__(self) -> int: ...

    def read(self, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Values ``rows`` (positions, a mask or a slice; default all) in the kept dtype."""
        ...


class RowSpill(Protocol):
    def keep(self, values: np.ndarray) -> KeptRows:
        """Keep one instrument's matrix; the caller drops its own reference afterwards."""
        ...

    def keep_column(self, values: np.ndarray) -> KeptColumn:
        """Keep one 1-D array (its dtype as given); the caller drops its own reference afterwards."""
        ...
