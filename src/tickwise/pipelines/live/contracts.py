"""Live index futures: the session's contract map, the feed and REST views through it, the roll-day shift.

A continuous futures series (``NIFTY-FUT-CONT``) is stored under a synthetic token
(``core.futures.continuous_token``); live, its data comes from one real contract, the session's front
contract by the configured roll rule (``pipelines.contracts.front_on``, asked once at session start:
rolls happen between sessions). :class:`ContractMap` is the one mapping between the two, used by

* :class:`MappedFeed`: subscribing the continuous token subscribes the contract;
* the tick consumer (``TickConsumer(token_map=...)``): the contract's ticks are re-labelled with the
  continuous token before validation, so bars, features, labels and signals join under it;
* :class:`MappedCandleSource`: the REST repair and resume paths fetch the contract's candles and hand
  them back under the continuous token.

On the first session of a new contract (a roll day) the stored history of the series is in the old
contract's terms, while historical mode back-adjusts every earlier price by the roll gap
(``docs/futures.md``). :func:`adjust_for_roll` applies that same shift to the stored candles before the
session's first bar, so live features see the series historical mode would build, and a later
``tickwise historical`` rebuild rewrites equal values. Its check against the old contract's raw close
makes it idempotent (a restart on the roll day does not shift twice).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from types import TracebackType

from loguru import logger

from tickwise.core.futures import roll_gap, shift_prices
from tickwise.domain.calendar import SessionCalendar
from tickwise.domain.candle import Candle
from tickwise.domain.errors import BrokerError
from tickwise.domain.instrument import Instrument
from tickwise.domain.tick import Tick
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.contracts import DayFetch
from tickwise.ports.market_feed import CandleSource, FeedGap, FeedStats, MarketFeed
from tickwise.ports.repositories import CandleRepository


@dataclass(frozen=True, slots=True)
class ContractMap:
    """Contract token -> continuous token for one session (empty: no futures, every token is its own)."""

    day: date
    to_continuous: Mapping[int, int] = field(default_factory=dict)
    symbols: Mapping[int, str] = field(default_factory=dict)  # contract token -> tradingsymbol (logs)

    @property
    def to_contract(self) -> dict[int, int]:
        return {cont: contract for contract, cont in self.to_continuous.items()}

    def __bool__(self) -> bool:
        return bool(self.to_continuous)

    def continuous_of(self, token: int) -> int:
        """The token ``token``'s data is stored under (itself unless it is a mapped contract)."""
        return self.to_continuous.get(token, token)

    def contract_of(self, token: int) -> int:
        """The token to subscribe or fetch for ``token`` (the contract of a continuous series, else itself)."""
        return self.to_contract.get(token, token)

    def feed_tokens(self, tokens: Iterable[int]) -> list[int]:
        return [self.contract_of(t) for t in tokens]

    def remap(self, tick: Tick) -> Tick:
        """``tick`` under the token its data is stored under."""
        cont = self.to_continuous.get(tick.instrument_token)
        return tick if cont is None else dataclasses.replace(tick, instrument_token=cont)


class MappedFeed:
    """A :class:`MarketFeed` whose ``subscribe`` takes stored tokens and subscribes their contracts.

    Ticks keep the contract's token here (the wire's truth); the consumer re-labels them, so the one
    map decides both directions.
    """

    def __init__(self, feed: MarketFeed, contracts: ContractMap) -> None:
        self._feed = feed
        self.contracts = contracts
        self.subscribed: list[int] = []  # the tokens last sent to the broker

    @property
    def queue(self) -> asyncio.Queue[Tick]:
        return self._feed.queue

    @property
    def stats(self) -> FeedStats:
        return self._feed.stats

    @property
    def gaps(self) -> Sequence[FeedGap]:
        return self._feed.gaps

    @property
    def state(self) -> str:
        return self._feed.state

    @property
    def error(self) -> BaseException | None:
        return self._feed.error

    async def subscribe(self, tokens: Iterable[int], mode: str = "quote") -> None:
        mapped = self.contracts.feed_tokens(tokens)
        for contract, cont in self.contracts.to_continuous.items():
            if contract in mapped:
                logger.info(
                    "live: subscribing {} ({}) for the continuous series {}",
                    self.contracts.symbols.get(contract, contract),
                    contract,
                    cont,
                )
        self.subscribed = mapped
        await self._feed.subscribe(mapped, mode)

    async def wait_connected(self, timeout_s: float | None = None) -> None:
        await self._feed.wait_connected(timeout_s)

    def start(self) -> asyncio.Task[None]:
        return self._feed.start()

    async def __aenter__(self) -> MappedFeed:
        await self._feed.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._feed.__aexit__(exc_type, exc, tb)


class MappedCandleSource:
    """REST candles of a continuous series' token: its session contract's candles, re-labelled.

    Only the session day is served for a continuous token: earlier days belonged to other contracts
    (and to other roll adjustments), which the live mode does not rebuild; ``tickwise historical``
    does. Minutes before the session open come back empty for it (logged once), like minutes nobody
    traded; every other token passes straight through.
    """

    def __init__(self, source: CandleSource, contracts: ContractMap, calendar: SessionCalendar) -> None:
        self._source = source
        self.contracts = contracts
        self._open = calendar.session_open(contracts.day)
        self._warned: set[int] = set()

    async def historical(
        self, instrument_token: int, interval: Timeframe, start: datetime, end: datetime
    ) -> list[Candle]:
        contract = self.contracts.contract_of(instrument_token)
        if contract == instrument_token:
            return await self._source.historical(instrument_token, interval, start, end)
        if start < self._open and instrument_token not in self._warned:
            self._warned.add(instrument_token)
            logger.warning(
                "live: continuous series {}: minutes before {:%Y-%m-%d %H:%M} are not repaired live "
                "(another contract's); `tickwise historical` builds them",
                instrument_token,
                self._open,
            )
        if end < self._open:
            return []
        candles = await self._source.historical(contract, interval, max(start, self._open), end)
        return [dataclasses.replace(c, instrument_token=instrument_token) for c in candles]


@dataclass(frozen=True, slots=True)
class RollAdjustment:
    """What :func:`adjust_for_roll` did for one underlying on a roll day."""

    underlying: str
    old_token: int
    new_token: int
    gap: float
    outcome: str  # shifted | already shifted | no stored history | mismatch | no candles
    rows: int = 0


async def adjust_for_roll(
    underlying: str,
    continuous: int,
    old: Instrument,
    new: Instrument,
    day: date,
    candles: CandleRepository,
    fetch: DayFetch,
    calendar: SessionCalendar,
    timeframes: Sequence[Timeframe],
) -> RollAdjustment:
    """Back-adjust the stored series before ``day`` by the roll gap from ``old`` to ``new``.

    The gap is historical mode's: ``roll_gap`` of both contracts' candles of the previous session. The
    stored last 1m bar of that session tells what to do: equal to ``old``'s raw close, the history is
    in the old contract's terms and every stored candle before ``day`` (each of ``timeframes``) is
    shifted by the gap; equal to the raw close plus the gap, it was shifted already (a restart, or a
    historical run after the roll). Anything else is reported as a mismatch and left alone (then
    ``tickwise historical`` rebuilds the series).
    """
    previous = calendar.previous_trading_day(day)

    def result(outcome: str, gap: float = 0.0, rows: int = 0) -> RollAdjustment:
        return RollAdjustment(underlying, old.instrument_token, new.instrument_token, gap, outcome, rows)

    try:
        old_frame = await fetch(old.instrument_token, previous)
        new_frame = await fetch(new.instrument_token, previous)
    except BrokerError as exc:
        logger.warning("live: {} roll gap not fetched ({}); history left unadjusted", underlying, exc)
        return result("no candles")
    if old_frame.empty or new_frame.empty:
        return result("no candles")
    gap = roll_gap(old_frame, new_frame)
    opened = calendar.session_open(day)
    stored = await candles.read_frame(continuous, Timeframe.M1, calendar.session_open(previous), opened)
    if stored.empty:
        return result("no stored history", gap)
    last = stored.iloc[-1]
    raw = old_frame[old_frame["time"] == last["time"]]
    if raw.empty:
        return result("mismatch", gap)
    raw_close = round(float(raw["close"].iloc[-1]), 2)
    close = round(float(last["close"]), 2)
    if close == round(raw_close + gap, 2) and gap != 0.0:
        return result("already shifted", gap)
    if close != raw_close:
        return result("mismatch", gap)
    if gap == 0.0:
        return result("shifted", gap)
    rows = 0
    for tf in timeframes:
        frame = await candles.read_frame(continuous, tf, None, opened)
        if frame.empty:
            continue
        rows += await candles.add_frame(shift_prices(frame, gap), on_conflict="update")
    return result("shifted", gap, rows)
