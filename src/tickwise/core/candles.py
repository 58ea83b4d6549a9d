"""Live candle building: validated ticks -> session-aligned candles (1 minute by default).

The rule (shared with the simulator's REST candles, so candles rebuilt from ticks equal served ones):

- A tick belongs to the bar containing its **exchange timestamp**; bars are aligned to the session
  open (09:15 IST). ``time`` is the bar's open instant (Kite's convention).
- open/high/low/close = first/max/min/last ``last_price`` of the bar's ticks, in arrival order (the
  :class:`~tickwise.core.tick_validator.TickValidator` in front guarantees non-decreasing exchange time).
- volume = cumulative ``volume_traded`` at the bar's last tick minus that at the last tick of the
  previous bar of the same session; the first bar of a session counts from 0 (so the pre-open trade's
  volume lands in the first bar). Ticks without ``volume_traded`` (indices) give volume 0.
- oi = ``oi`` of the bar's last tick (None when the ticks carry none).
- **Empty bars**: a bar with no ticks produces **no candle**, like Kite's historical API which omits
  minutes without trades, and like the simulator's REST candles (a candle only for minutes with
  snapshots). Consumers must not assume 375 one-minute candles per session.
- A bar closes when the instrument's first tick of a later bar arrives, on :meth:`close_through`
  once the feed as a whole has moved past the bar's end (the caller decides when: ticks stamped in a
  later minute have arrived and a short in-flight margin has passed), or on :meth:`on_clock` once
  ``now >= bar end + grace_s``. A tick for a bar that has already closed is a **late tick**: counted
  in ``late_ticks`` (and in ``late_after_feed_close`` when the bar was closed by
  :meth:`close_through`, the price of closing early) and dropped; a closed candle is never changed.
- Ticks outside the calendar's session are ignored and counted (``outside_session_ticks``).

Each closed bar is returned as a :class:`~tickwise.domain.bar.Bar`: the domain :class:`Candle` and
``obi_5`` of the bar's last full-mode tick that carried a book (NaN if none), the one bar type the live
path carries through the engine to the writer. :meth:`CandleBuilder.close_through_columns` returns the
same bars as :class:`ClosedBars`, columns first: a minute's feed close (up to 3,000 bars at a shard)
needs only the bars' numbers before their signals, and the ``Bar`` objects (about 3 us each) are built
when something reads them, after the signals (:meth:`ClosedBars.bars`, the very objects
:meth:`CandleBuilder.close_through` returns).
The open bars are kept grouped by their open instant as they open, so that close takes the minute's
bars as ready groups (no scan of every instrument) and sums their newest books' quantities in one pass
(:func:`~tickwise.core.order_book.newest_imbalances`); :meth:`CandleBuilder.close_through` still scans,
and the two are tested equal bar for bar.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import repeat
from operator import attrgetter, itemgetter
from typing import overload

import numpy as np

from tickwise.core.order_book import newest_imbalance, newest_imbalances
from tickwise.core.slotted import positional
from tickwise.domain.bar import Bar
from tickwise.domain.calendar import NSE, SessionCalendar
from tickwise.domain.candle import Candle
from tickwise.domain.tick import Depth, Tick
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe


@dataclass(slots=True)
class _Bar:
    open_time: datetime
    end_time: datetime
    open: float
    high: float
    low: float
    close: float
    last_volume: int | None
    oi: int | None
    obi: float
    # Books of the bar's full-mode ticks, newest last: obi_5 is computed once, at close, from the
    # newest book that has one, instead of on every tick (reading a book is what costs).
    books: list[Depth]
    group: _OpenGroup  # the open bars sharing this bar's open instant, this one among them


@dataclass(slots=True)
class _OpenGroup:
    """The instruments whose open bar opens at ``open_time`` (so ends at ``end_time``), by token.

    Kept as bars open and close, so a feed close takes the minute's bars as a ready group instead of
    scanning every instrument and comparing aware datetimes (a 3,000-instrument minute, issue 14)."""

    open_time: datetime
    end_time: datetime
    states: dict[int, _InstrumentState]


@dataclass(slots=True)
class _InstrumentState:
    day: date
    baseline: int = 0  # cumulative volume at the last tick of the previous bar of this session
    bar: _Bar | None = None
    closed_until: datetime | None = None  # end of the last closed bar
    closed_open: datetime | None = None  # open of the last closed bar
    closed_by_feed: bool = False  # whether close_through closed it


# Candle(...) and Bar(...) with every field positional, without the frozen __init__ (core.slotted):
# a minute's close builds one of each per instrument before its features and signal.
_new_candle = positional(Candle)
_new_bar = positional(Bar)
_TOKEN = itemgetter(0)
_GROUP_OPEN_TIME = attrgetter("open_time")


def _open_time(due: tuple[int, _InstrumentState]) -> datetime:
    bar = due[1].bar
    assert bar is not None
    return bar.open_time


def _in_close_order(due: list[tuple[int, _InstrumentState]]) -> list[tuple[int, _InstrumentState]]:
    """``due`` (token, state with an open bar) ordered by (bar open instant, token): the order closed
    bars are returned in. Tokens sort as plain ints (one C-level sort); the open instants only when the
    bars do not all share one (the usual close is one minute's bars), stably, so ties keep token order."""
    due.sort(key=_TOKEN)
    # An equality scan, not a set: hashing an aware datetime asks its zone for the offset, comparing
    # two of the same zone does not.
    if due and any(_open_time(d) != _open_time(due[0]) for d in due):
        due.sort(key=_open_time)
    return due


class ClosedBars(Sequence[Bar]):
    """Bars closed together (a minute's feed close), held as columns; a ``Sequence[Bar]`` whose
    :class:`Bar` objects are built on first access, all at once, and kept (:meth:`bars`).

    ``tokens`` are distinct (one bar per instrument); ``instant`` is the open instant every bar shares,
    or None when they do not share one. ``values`` is the ``(n, 6)`` float64 block of o, h, l, c,
    volume and ``obi_5`` (NaN without a book), the values the feature bank reads from the bars.
    """

    __slots__ = (
        "_bars", "closes", "highs", "instant", "lows", "obis", "ois", "opens", "source", "timeframe",
        "times", "tokens", "volumes",
    )  # fmt: skip

    def __init__(
        self,
        timeframe: Timeframe,
        source: str,
        tokens: list[int],
        times: list[datetime],
        opens: list[float],
        highs: list[float],
        lows: list[float],
        closes: list[float],
        volumes: list[int],
        ois: list[int | None],
        obis: list[float],
        *,
        one_instant: bool = False,
    ) -> None:
        self.timeframe, self.source = timeframe, source
        self.tokens, self.times = tokens, times
        self.opens, self.highs, self.lows, self.closes = opens, highs, lows, closes
        self.volumes, self.ois, self.obis = volumes, ois, obis
        first = times[0] if times else None
        # ``one_instant``: the caller knows every bar opened at one instant (the candle builder's
        # close of one open group), so no scan. Else an equality scan, not a set: hashing an aware
        # datetime asks its zone for the offset.
        self.instant = first if one_instant or all(t == first for t in times) else None
        self._bars: list[Bar] | None = None

    @classmethod
    def of(cls, bars: Sequence[Bar]) -> ClosedBars:
        """The columns of ``bars`` (distinct instruments, one timeframe and source), e.g. bars replayed
        from elsewhere; :meth:`bars` then builds equal, new objects."""
        if not bars:
            raise ValueError("ClosedBars.of needs at least one bar")
        candles = [b.candle for b in bars]
        tokens = [c.instrument_token for c in candles]
        if len(set(tokens)) != len(tokens):
            raise ValueError("ClosedBars holds at most one bar per instrument")
        kinds = {(c.timeframe, c.source) for c in candles}
        if len(kinds) != 1:
            raise ValueError(
                f"ClosedBars holds bars of one timeframe and source, got {sorted(map(str, kinds))}"
            )
        ((timeframe, source),) = kinds
        return cls(
            timeframe, source, tokens, [c.time for c in candles], [c.open for c in candles],
            [c.high for c in candles], [c.low for c in candles], [c.close for c in candles],
            [c.volume for c in candles], [c.oi for c in candles], [b.obi_5 for b in bars],
        )  # fmt: skip

    @property
    def materialized(self) -> bool:
        """Whether the :class:`Bar` objects were built (something read them)."""
        return self._bars is not None

    def __len__(self) -> int:
        return len(self.tokens)

    @overload
    def __getitem__(self, index: int) -> Bar: ...
    @overload
    def __getitem__(self, index: slice) -> list[Bar]: ...
    def __getitem__(self, index: int | slice) -> Bar | list[Bar]:
        return self.bars()[index]

    def __iter__(self) -> Iterator[Bar]:
        return iter(self.bars())

    @property
    def values(self) -> np.ndarray:
        """``(n, 6)``: o, h, l, c, volume, obi_5 per bar (float64, as the feature bank reads a bar)."""
        out = np.empty((len(self.tokens), 6))
        out[:, 0] = self.opens
        out[:, 1] = self.highs
        out[:, 2] = self.lows
        out[:, 3] = self.closes
        out[:, 4] = self.volumes
        out[:, 5] = self.obis
        return out

    def bar_at(self, index: int) -> Bar:
        """The bar at ``index``: the kept object once :meth:`bars` ran, else one built alone (equal to
        it) without building the others, for a check that reads one bar (the consumer's repair gate)."""
        if self._bars is not None:
            return self._bars[index]
        i = range(len(self.tokens))[index]
        candle = _new_candle(
            self.tokens[i], self.timeframe, self.times[i], self.opens[i], self.highs[i], self.lows[i],
            self.closes[i], self.volumes[i], self.ois[i], self.source,
        )  # fmt: skip
        return _new_bar(candle, self.obis[i])

    def bars(self) -> list[Bar]:
        """The closed bars as :class:`Bar` objects (built once, then kept)."""
        if self._bars is None:
            n = len(self.tokens)
            candles = map(
                _new_candle, self.tokens, repeat(self.timeframe, n), self.times, self.opens, self.highs,
                self.lows, self.closes, self.volumes, self.ois, repeat(self.source, n),
            )  # fmt: skip
            self._bars = list(map(_new_bar, candles, self.obis))
        return self._bars


class CandleBuilder:
    """Per-instrument incremental candle builder (see the module docstring for the exact rule)."""

    def __init__(
        self,
        timeframe: Timeframe = Timeframe.M1,
        calendar: SessionCalendar = NSE,
        grace_s: float = 2.0,
        *,
        source: str = "live",
    ) -> None:
        if timeframe is Timeframe.D1:
            raise ValueError("CandleBuilder builds intraday candles; roll 1d up with RollupBuilder")
        if grace_s < 0:
            raise ValueError(f"grace_s must be >= 0, got {grace_s}")
        self.timeframe = timeframe
        self.calendar = calendar
        self.grace = timedelta(seconds=grace_s)
        self.source = source
        self.late_ticks = 0
        self.late_after_feed_close = 0
        self.outside_session_ticks = 0
        self.invalid_ticks = 0
        self.ticks = 0
        self._states: dict[int, _InstrumentState] = {}
        # Open bars grouped by their open instant (at most a few groups: the forming minute and any
        # minute not yet closed); every open bar is in exactly one group.
        self._groups: dict[datetime, _OpenGroup] = {}
        self._last_group: _OpenGroup | None = None

    def on_tick(self, tick: Tick) -> list[Bar]:
        """Feed one (validated) tick; return the candles it closed (usually none, at most one)."""
        ts = tick.exchange_timestamp
        price = tick.last_price
        if ts is None or ts.tzinfo is None or not math.isfinite(price):
            self.invalid_ticks += 1
            return []
        state = self._states.get(tick.instrument_token)
        bar = state.bar if state is not None else None
        if bar is not None and bar.open_time <= ts < bar.end_time:
            self._update(bar, tick, price)
            self.ticks += 1
            return []
        if not self.calendar.is_open(ts):
            self.outside_session_ticks += 1
            return []

        closed: list[Bar] = []
        day = ts.astimezone(IST).date()
        if state is None or day > state.day:
            if state is not None and state.bar is not None:
                closed.append(self._close(tick.instrument_token, state))
            state = _InstrumentState(day=day)
            self._states[tick.instrument_token] = state
        elif day < state.day:
            self.late_ticks += 1
            return []
        elif state.bar is not None:
            if ts < state.bar.open_time:
                self._late(state, ts)
                return []
            closed.append(self._close(tick.instrument_token, state))
        elif state.closed_until is not None and ts < state.closed_until:
            self._late(state, ts)
            return []

        open_time = self.calendar.bar_open(ts, self.timeframe)
        group = self._last_group
        # A minute's bars open one after another: compare with the last group before hashing an
        # aware datetime (which asks its zone for the offset).
        if group is None or group.open_time != open_time:
            group = self._groups.get(open_time)
            if group is None:
                end_time = min(open_time + self.timeframe.delta, self.calendar.session_close(day))
                group = _OpenGroup(open_time, end_time, {})
                self._groups[open_time] = group
            self._last_group = group
        group.states[tick.instrument_token] = state
        end_time = group.end_time
        state.bar = _Bar(
            open_time=open_time,
            end_time=end_time,
            open=price,
            high=price,
            low=price,
            close=price,
            last_volume=None,
            oi=None,
            obi=math.nan,
            books=[],
            group=group,
        )
        self._update(state.bar, tick, price)
        self.ticks += 1
        return closed

    def on_clock(self, now: datetime) -> list[Bar]:
        """Close every bar whose end + grace is at or before ``now``; ordered by (time, token)."""
        # now >= end + grace, as end <= now - grace: one subtraction per call, not an addition per
        # instrument (the clock calls this every second; aware-datetime arithmetic is exact).
        cutoff = now - self.grace
        return self._close_all(
            (token, state)
            for token, state in self._states.items()
            if state.bar is not None and state.bar.end_time <= cutoff
        )

    def close_through(self, boundary: datetime) -> list[Bar]:
        """Close every bar that ends at or before ``boundary``; ordered by (time, token).

        The feed's part of bar closing: once ticks stamped at or after ``boundary`` have arrived (and
        the caller's in-flight margin has passed), an instrument that has not ticked since still has
        its earlier minute open; waiting for the clock's grace would delay its signal for nothing.
        A tick of such a bar that arrives afterwards is late (``late_after_feed_close``).
        """
        return self._close_all(
            (
                (token, state)
                for token, state in self._states.items()
                if state.bar is not None and state.bar.end_time <= boundary
            ),
            by_feed=True,
        )

    def close_through_columns(self, boundary: datetime) -> ClosedBars:
        """:meth:`close_through` with the bars as :class:`ClosedBars`: the same bars, the same order,
        the same state changes, but no object per bar until one is read."""
        # The bars due are whole groups (a group's bars share their open and end instants), taken in
        # open-instant order, each in token order: the (open instant, token) order of close_through.
        due = sorted((g for g in self._groups.values() if g.end_time <= boundary), key=_GROUP_OPEN_TIME)
        tokens: list[int] = []
        states: list[_InstrumentState] = []
        for group in due:
            self._drop(group)
            # Sorting the int tokens alone is one C-level sort; the states follow them.
            in_order = sorted(group.states)
            tokens += in_order
            states += map(group.states.__getitem__, in_order)
        times: list[datetime] = []
        opens: list[float] = []
        highs: list[float] = []
        lows: list[float] = []
        closes: list[float] = []
        volumes: list[int] = []
        ois: list[int | None] = []
        books: list[list[Depth]] = []
        defaults: list[float] = []
        for state in states:
            bar = state.bar
            assert bar is not None  # a group holds open bars only
            last_volume = bar.last_volume
            if last_volume is None:
                volumes.append(0)
            else:
                # Never negative, even if an unvalidated feed regresses the cumulative counter.
                baseline = state.baseline
                volumes.append(max(0, last_volume - baseline))
                state.baseline = max(baseline, last_volume)
            state.bar = None
            state.closed_until = bar.end_time
            state.closed_open = bar.open_time
            state.closed_by_feed = True
            times.append(bar.open_time)
            opens.append(bar.open)
            highs.append(bar.high)
            lows.append(bar.low)
            closes.append(bar.close)
            ois.append(bar.oi)
            books.append(bar.books)
            defaults.append(bar.obi)
        obis = newest_imbalances(books, defaults)
        return ClosedBars(
            self.timeframe, self.source, tokens, times, opens, highs, lows, closes, volumes, ois, obis,
            one_instant=len(due) == 1,
        )  # fmt: skip

    def flush(self) -> list[Bar]:
        """Close every open bar now (end of session or shutdown)."""
        return self._close_all((token, s) for token, s in self._states.items() if s.bar is not None)

    def open_bar_time(self, instrument_token: int) -> datetime | None:
        """Open instant of the instrument's forming bar, if any."""
        state = self._states.get(instrument_token)
        return state.bar.open_time if state is not None and state.bar is not None else None

    def _close_all(self, due: Iterable[tuple[int, _InstrumentState]], *, by_feed: bool = False) -> list[Bar]:
        """Close the bars of ``due`` in (open instant, token) order (the order they are returned in)."""
        close = self._close
        return [close(token, state, by_feed) for token, state in _in_close_order(list(due))]

    @staticmethod
    def _update(bar: _Bar, tick: Tick, price: float) -> None:
        if price > bar.high:
            bar.high = price
        if price < bar.low:
            bar.low = price
        bar.close = price
        if tick.volume_traded is not None:
            bar.last_volume = tick.volume_traded
        if tick.oi is not None:
            bar.oi = tick.oi
        depth = tick.depth
        if depth is not None:
            bar.books.append(depth)

    def _late(self, state: _InstrumentState, ts: datetime) -> None:
        self.late_ticks += 1
        if state.closed_by_feed and state.closed_open is not None and ts >= state.closed_open:
            self.late_after_feed_close += 1

    def _close(self, token: int, state: _InstrumentState, by_feed: bool = False) -> Bar:
        bar, volume, obi = self._finish(token, state, by_feed)
        # Candle(token, timeframe, time, open, high, low, close, volume, oi, source), Bar(candle, obi_5)
        candle = _new_candle(
            token, self.timeframe, bar.open_time, bar.open, bar.high, bar.low, bar.close, volume,
            bar.oi, self.source,
        )  # fmt: skip
        return _new_bar(candle, obi)

    def _drop(self, group: _OpenGroup) -> None:
        """Forget ``group`` (all its bars closed or closing): a later bar of its instant starts anew."""
        if self._groups.get(group.open_time) is group:
            del self._groups[group.open_time]
        if self._last_group is group:
            self._last_group = None

    def _finish(self, token: int, state: _InstrumentState, by_feed: bool) -> tuple[_Bar, int, float]:
        """Close the instrument's open bar: its state moves on; returns the bar, its volume and obi_5."""
        bar = state.bar
        assert bar is not None
        group = bar.group
        del group.states[token]
        if not group.states:
            self._drop(group)
        last_volume = bar.last_volume
        if last_volume is None:
            volume = 0
        else:
            # Never negative, even if an unvalidated feed regresses the cumulative counter.
            volume = max(0, last_volume - state.baseline)
            state.baseline = max(state.baseline, last_volume)
        state.bar = None
        state.closed_until = bar.end_time
        state.closed_open = bar.open_time
        state.closed_by_feed = by_feed
        return bar, volume, newest_imbalance(bar.books, bar.obi)
