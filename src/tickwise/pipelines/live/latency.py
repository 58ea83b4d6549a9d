"""Latency figures of the live path (bar closed -> signal written), computed one way everywhere.

The session report and ``tickwise bench live`` both summarise with :func:`percentiles` (NumPy's linear
interpolation), so the figures in ``docs/benchmarks.md`` and a live run's report are comparable.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Percentiles:
    """p50, p99 and max in milliseconds (None when nothing was measured), rounded to microseconds."""

    p50: float | None
    p99: float | None
    max: float | None


def percentiles(values_ms: Sequence[float]) -> Percentiles:
    """p50 / p99 / max of ``values_ms``."""
    if not values_ms:
        return Percentiles(None, None, None)
    arr = np.asarray(values_ms, dtype=np.float64)
    return Percentiles(
        round(float(np.percentile(arr, 50)), 3),
        round(float(np.percentile(arr, 99)), 3),
        round(float(arr.max()), 3),
    )


class LatencyLog:
    """Latencies (milliseconds) recorded by the signal sink as signals are written."""

    def __init__(self) -> None:
        # float64s, 8 B a signal (a list of floats takes 32): a session keeps every one until its report.
        self._values: array[float] = array("d")

    def add(self, ms: float) -> None:
        self._values.append(ms)

    def add_many(self, values_ms: Sequence[float]) -> None:
        """:meth:`add` of each value (a batch of signals written together)."""
        self._values.extend(values_ms)

    def __len__(self) -> int:
        return len(self._values)

    def summary(self) -> Percentiles:
        return percentiles(self._values)
