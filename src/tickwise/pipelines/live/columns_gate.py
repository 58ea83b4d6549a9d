"""The engine's admission check of a minute's columns, as arrays kept between minutes (issue 14).

A minute's feed close takes the columns path (``LiveEngine._process_columns``) only when every bar's
instrument is open, its stream is the one banked in the engine's :class:`FeatureBank` and the bar is
newer than the instrument's newest. Asked of 3,000 instrument objects each minute (two dictionary
lookups, two attributes and an identity test per bar, every one a cache miss on a loaded machine),
that was about 2.8 ms of the candle close -> signal path at 3,000 instruments, and the bank's own row
lookup another 0.5 ms. :class:`ColumnsGate` holds the same facts as arrays, one slot per instrument
(bank row, whether its stream is the banked one, its newest bar's instant in epoch microseconds), and
the tokens sorted, so a minute's check is a few numpy calls over the minute's tokens.

The gate mirrors the engine's state: the engine puts an instrument again whenever it opens or rewinds
it or opens its stream (:meth:`ColumnsGate.put`), and records each bar it folds (:meth:`record`,
:meth:`record_one`). Kept as the instruments open, it is never rebuilt inside a minute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

import numpy as np

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
NO_BAR = np.iinfo(np.int64).min  # an instrument with no bar folded yet: any bar is newer

S = TypeVar("S")


def epoch_us(t: datetime) -> int:
    """Whole microseconds since the epoch of an aware instant (exact: datetimes hold microseconds)."""
    return (t - _EPOCH) // _MICROSECOND


@dataclass(frozen=True, slots=True)
class Admitted:
    """A minute the gate admits: each bar's bank row and gate slot, in block order."""

    rows: np.ndarray  # int64 bank rows
    slots: np.ndarray  # int64 slots of ColumnsGate.states


class ColumnsGate(Generic[S]):
    """Per instrument: its state object, bank row, whether its stream is the banked one, and the open
    instant of its newest bar; plus the tokens sorted, for a minute's lookup in one call."""

    __slots__ = ("_banked", "_last_us", "_order", "_rows", "_slot_of", "_sorted", "states")

    def __init__(self, capacity: int = 64) -> None:
        self.states: list[S] = []
        self._slot_of: dict[int, int] = {}
        self._rows = np.zeros(capacity, dtype=np.int64)
        self._banked = np.zeros(capacity, dtype=bool)
        self._last_us = np.zeros(capacity, dtype=np.int64)
        self._sorted: np.ndarray | None = None  # tokens in ascending order (None: sort at next use)
        self._order = np.zeros(0, dtype=np.int64)  # the slot of each sorted token

    def __len__(self) -> int:
        return len(self.states)

    def put(self, token: int, state: S, row: int | None, banked: bool, last: datetime | None) -> None:
        """``token``'s instrument as it is now: its state, bank row (None: none), whether its bank row
        holds its stream, and the open instant of its newest bar (None: no bar yet)."""
        slot = self._slot_of.get(token)
        if slot is None:
            slot = self._slot_of[token] = len(self.states)
            self.states.append(state)
            if slot >= self._rows.shape[0]:
                size = 2 * self._rows.shape[0]
                self._rows, self._banked, self._last_us = (
                    np.resize(a, size) for a in (self._rows, self._banked, self._last_us)
                )
            self._sorted = None
        else:
            self.states[slot] = state
        self._rows[slot] = -1 if row is None else row
        self._banked[slot] = banked and row is not None
        self._last_us[slot] = NO_BAR if last is None else epoch_us(last)

    def admit(self, tokens: Sequence[int], instant: datetime) -> Admitted | None:
        """The rows of a minute whose bars all opened at ``instant``, or None when the per-bar path must
        take it: a token twice, an instrument not open or not banked, or a bar not newer than its
        instrument's newest (a duplicate)."""
        if self._sorted is None:
            tokens_in_slots = np.fromiter(self._slot_of.keys(), dtype=np.int64, count=len(self._slot_of))
            slots = np.fromiter(self._slot_of.values(), dtype=np.int64, count=len(self._slot_of))
            by_token = np.argsort(tokens_in_slots, kind="stable")
            self._sorted, self._order = tokens_in_slots[by_token], slots[by_token]
        known = self._sorted
        tok = np.fromiter(tokens, dtype=np.int64, count=len(tokens))
        ascending = tok.shape[0] < 2 or bool((tok[1:] > tok[:-1]).all())  # then no token twice
        if not ascending and np.unique(tok).shape[0] != tok.shape[0]:
            return None
        pos = np.searchsorted(known, tok)
        if pos.shape[0] == 0 or int(pos.max()) >= known.shape[0] or not bool((known[pos] == tok).all()):
            return None
        slots = self._order[pos]
        if not bool(self._banked[slots].all()) or int(self._last_us[slots].max()) >= epoch_us(instant):
            return None
        return Admitted(rows=self._rows[slots], slots=slots)

    def held(self, admitted: Admitted) -> list[S]:
        """The instrument states of an admitted minute, in block order."""
        return list(map(self.states.__getitem__, admitted.slots.tolist()))

    def record(self, admitted: Admitted, instant: datetime) -> None:
        """The admitted minute's bars (all opened at ``instant``) are their instruments' newest."""
        self._last_us[admitted.slots] = epoch_us(instant)

    def record_one(self, token: int, t: datetime) -> None:
        """A bar of ``token`` opened at ``t`` was folded in bar by bar."""
        slot = self._slot_of.get(token)
        if slot is not None:
            self._last_us[slot] = epoch_us(t)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Bank rows, banked flags and newest instants (epoch microseconds) by slot (for tests)."""
        n = len(self.states)
        return self._rows[:n].copy(), self._banked[:n].copy(), self._last_us[:n].copy()
