"""The engine's admission check of a minute's columns, as arrays kept between minutes (issue 14).

A minute's feed close takes the columns path (``LiveEngine._process_columns``) only when every bar's
instrument is open, its stream is the one banked in the engine's :class:`FeatureBank` and the bar is
newer than the instrument's newest. Asked of 3,000 instrument objects each minute (two dictionary
lookups, two attributes and an identity test per bar, every one a cache miss on a loaded machine),
that was about 2.8 ms of the candle close -> signal path at 3,000 instruments, and the bank's own row
lookup another 0.5 ms. :class:`ColumnsGate` holds the same facts as arrays sorted by instrument token
(bank row, whether the stream is banked, the newest bar's instant in epoch microseconds), so a
minute's check is a few numpy calls over the minute's tokens.

The gate is a cache of the engine's state: the engine drops it whenever an instrument is opened or
rewound, or a stream is opened (:meth:`LiveEngine._invalidate_gate`), records each bar it folds
(:meth:`record` / :meth:`record_one`), and builds a new one at the next columns minute.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, Protocol, TypeVar

import numpy as np

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
NO_BAR = np.iinfo(np.int64).min  # an instrument with no bar folded yet: any bar is newer


def epoch_us(t: datetime) -> int:
    """Whole microseconds since the epoch of an aware instant (exact: datetimes hold microseconds)."""
    return (t - _EPOCH) // _MICROSECOND


class _Held(Protocol):
    @property
    def stream(self) -> object | None: ...
    @property
    def last_time(self) -> datetime | None: ...


S = TypeVar("S", bound=_Held)


@dataclass(frozen=True, slots=True)
class Admitted:
    """A minute the gate admits: the bank row and the gate position of each bar, in block order."""

    rows: np.ndarray  # int64 bank rows
    positions: np.ndarray  # int64 indices into ColumnsGate.states


class ColumnsGate(Generic[S]):
    """Sorted tokens of the engine's instruments with their bank rows, banked flags and newest instants."""

    __slots__ = ("banked", "last_us", "rows", "states", "tokens")

    def __init__(
        self,
        states: Mapping[int, S],
        row_of: Callable[[int], int | None],
        banked_stream: Callable[[int], object | None],
    ) -> None:
        order = sorted(states)
        self.tokens = np.array(order, dtype=np.int64)
        self.states = [states[t] for t in order]
        rows = [row_of(t) for t in order]
        self.rows = np.array([-1 if r is None else r for r in rows], dtype=np.int64)
        self.banked = np.array(
            [
                s.stream is not None and banked_stream(t) is s.stream
                for t, s in zip(order, self.states, strict=True)
            ],
            dtype=bool,
        )
        self.last_us = np.array(
            [NO_BAR if s.last_time is None else epoch_us(s.last_time) for s in self.states], dtype=np.int64
        )

    def admit(self, tokens: Sequence[int], instant: datetime) -> Admitted | None:
        """The rows of a minute whose bars all opened at ``instant``, or None when the per-bar path must
        take it: a token twice, an instrument not open or not banked, or a bar not newer than its
        instrument's newest (a duplicate)."""
        tok = np.fromiter(tokens, dtype=np.int64, count=len(tokens))
        ascending = tok.shape[0] < 2 or bool((tok[1:] > tok[:-1]).all())  # then no token twice
        if not ascending and np.unique(tok).shape[0] != tok.shape[0]:
            return None
        pos = np.searchsorted(self.tokens, tok)
        if pos.shape[0] and int(pos.max()) >= self.tokens.shape[0]:
            return None
        if not bool((self.tokens[pos] == tok).all()) or not bool(self.banked[pos].all()):
            return None
        if pos.shape[0] and int(self.last_us[pos].max()) >= epoch_us(instant):
            return None
        return Admitted(rows=self.rows[pos], positions=pos)

    def held(self, admitted: Admitted) -> list[S]:
        """The instrument states of an admitted minute, in block order."""
        return list(map(self.states.__getitem__, admitted.positions.tolist()))

    def record(self, admitted: Admitted, instant: datetime) -> None:
        """The admitted minute's bars (all opened at ``instant``) are their instruments' newest."""
        self.last_us[admitted.positions] = epoch_us(instant)

    def record_one(self, token: int, t: datetime) -> None:
        """A bar of ``token`` opened at ``t`` was folded in by the per-bar path."""
        i = int(np.searchsorted(self.tokens, token))
        if i < self.tokens.shape[0] and int(self.tokens[i]) == token:
            self.last_us[i] = epoch_us(t)
