"""The change-point columns of batch scoring, computed once per prior and bars.

Every walk-forward fold model of a timeframe scores the same feature rows with its own HMM but the same
change-point settings, and the change-point recursion (about 95 % of the layer's cost) never reads the
HMM. So :meth:`RegimeLayer.frame <tickwise.core.regime.layer.RegimeLayer.frame>` asks
:func:`change_point_columns` for them, which runs the recursion alone (``CHANGE_POINT_PART`` of
:func:`~tickwise.core.regime.kernels.regime_steps`, the same per-bar code as the live step) and keeps
the result for the next model, keyed by a cryptographic digest of everything the values depend on: the
settings and the bars' session days, instrument segments and inputs. A small, bounded cache
(:data:`MAX_ENTRIES` results, :data:`MAX_BYTES` in all); a result larger than that is computed each time.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tickwise.core.regime.kernels import (
    CHANGE_POINT_PART,
    NO_DAY,
    STATE_DAY,
    change_point_table,
    regime_steps,
)

if TYPE_CHECKING:
    from tickwise.core.regime.layer import ChangePointSpec

MAX_ENTRIES = 4  # the timeframes of one run (1m, 5m, 15m) and the champion's, at most
MAX_BYTES = 256 * 2**20

# A one-state placeholder HMM: with CHANGE_POINT_PART the kernel never reads it, but its arrays keep
# the kernel's argument types (one compiled specialisation for both uses).
_NO_HMM = (np.ones(1), np.ones((1, 1)), np.zeros((1, 2)), np.ones((1, 2)))


@dataclass(frozen=True, slots=True)
class CacheInfo:
    hits: int
    misses: int
    entries: int
    nbytes: int


@functools.lru_cache(maxsize=16)
def _tables(alpha0: float, max_run_length: int) -> tuple[np.ndarray, np.ndarray]:
    alphas, ratios = change_point_table(alpha0, max_run_length)
    alphas.flags.writeable = False
    ratios.flags.writeable = False
    return alphas, ratios


def change_point_tables(cp: ChangePointSpec) -> tuple[np.ndarray, np.ndarray]:
    """:func:`~tickwise.core.regime.kernels.change_point_table` of ``cp``'s prior, computed once."""
    return _tables(float(cp.prior[2]), int(cp.max_run_length))


class _Cache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._results: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._hits = 0
        self._misses = 0

    def get(self, key: bytes) -> np.ndarray | None:
        with self._lock:
            found = self._results.get(key)
            if found is None:
                self._misses += 1
                return None
            self._hits += 1
            self._results.move_to_end(key)
            return found

    def put(self, key: bytes, value: np.ndarray) -> None:
        if value.nbytes > MAX_BYTES:
            return
        with self._lock:
            self._results[key] = value
            self._results.move_to_end(key)
            while (
                len(self._results) > MAX_ENTRIES or sum(v.nbytes for v in self._results.values()) > MAX_BYTES
            ):
                self._results.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._results.clear()
            self._hits = self._misses = 0

    def info(self) -> CacheInfo:
        with self._lock:
            nbytes = sum(v.nbytes for v in self._results.values())
            return CacheInfo(self._hits, self._misses, len(self._results), nbytes)


_CACHE = _Cache()


def cache_info() -> CacheInfo:
    """Hits, misses and what the cache holds (for tests and benchmarks)."""
    return _CACHE.info()


def clear_cache() -> None:
    _CACHE.clear()


def _key(cp: ChangePointSpec, days: np.ndarray, segments: np.ndarray, x: np.ndarray) -> bytes:
    digest = hashlib.blake2b(digest_size=32)
    digest.update(repr(sorted(cp.to_dict().items())).encode())
    for part in (days, segments, x):
        digest.update(repr((part.dtype.str, part.shape)).encode())
        digest.update(np.ascontiguousarray(part).data)
    return digest.digest()


def compute_change_point_columns(
    cp: ChangePointSpec, days: np.ndarray, segments: np.ndarray, x: np.ndarray
) -> np.ndarray:
    """``(n, 2)``: expected run length and change probability of each bar, each segment ``[lo, hi)`` of
    rows (one instrument's bars in time order) from a fresh state, without the cache."""
    alphas, ratios = change_point_tables(cp)
    prior = np.asarray(cp.prior, dtype=np.float64)
    out = np.empty((len(days), 4))  # the placeholder HMM's two columns, then the change-point two
    for lo, hi in segments.tolist():
        ints = np.zeros(3, dtype=np.int64)
        ints[STATE_DAY] = NO_DAY
        regime_steps(
            days[lo:hi],
            x[lo:hi],
            *_NO_HMM,
            cp.hazard,
            prior,
            cp.change_window,
            np.zeros(1),
            np.full((5, cp.max_run_length), np.nan),
            ints,
            out[lo:hi],
            alphas,
            ratios,
            CHANGE_POINT_PART,
        )
    return out[:, 2:]


def change_point_columns(
    cp: ChangePointSpec, days: np.ndarray, segments: np.ndarray, x: np.ndarray
) -> np.ndarray:
    """:func:`compute_change_point_columns`, from the cache when the same settings and bars were
    computed before (read-only)."""
    days = np.ascontiguousarray(days, dtype=np.int64)
    segments = np.ascontiguousarray(segments, dtype=np.int64).reshape(-1, 2)
    x = np.ascontiguousarray(x, dtype=np.float64)
    key = _key(cp, days, segments, x)
    found = _CACHE.get(key)
    if found is not None:
        return found
    columns = np.ascontiguousarray(compute_change_point_columns(cp, days, segments, x))
    columns.flags.writeable = False
    _CACHE.put(key, columns)
    return columns
