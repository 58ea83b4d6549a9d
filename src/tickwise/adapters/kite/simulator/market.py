"""The deterministic simulated market: one 1-second price path per instrument and trading day.

Everything follows from ``(seed, instrument_token, day)``; nothing depends on what was asked before,
so any day costs O(1) in the length of history:

* **Day level.** For every calendar day from :data:`EPOCH` to :data:`HORIZON` each instrument has an
  overnight gap, an open-to-close return, a volatility level (AR(1) in log, persistent across days) and
  a regime (``trend``, ``mean_reversion``, ``burst``, ``quiet``). Log closes follow a slowly
  mean-reverting AR(1) around the reference price, advanced only on trading days. These series are a
  few thousand numbers per instrument, computed once (vectorised) and then looked up.
* **Intraday.** 22,500 seconds 09:15:00-15:29:59. A latent order-book **imbalance** ``z`` (AR(1),
  half-life ~3 minutes) feeds the next second's return with a small coefficient, so the visible book
  imbalance (``obi``) has a real but weak relation to the next minutes' returns, and short-term
  returns are slightly autocorrelated. Volatility is U-shaped over the session with random bursts;
  mean-reversion days add an OU deviation. The path is a bridge pinned to the day's open and close.
* **Trades / snapshots.** A second carries a trade (and so a snapshot) with the instrument's liquidity
  probability; every minute has at least one, and 09:15:00 always has one. Between trades the price
  stands still. Trade sizes follow a U-shaped intensity; ``volume_traded`` is cumulative per session
  and includes the 09:08 pre-open equilibrium trade (price = the day's open). The index (NIFTY 50)
  has a snapshot every second and no volume.
* **Bad prints** (off unless ``bad_prints`` > 0). A fraction ``bad_prints`` of an equity's 1-minute
  REST candles (and the higher intervals built from them) is replaced by a bad print, drawn from
  ``(seed, token, day)`` alone: ``spike`` (the high or the low stretched 2-8 % beyond the bar's body,
  a fat-fingered trade), ``zero_volume`` (a flat bar at the previous close with no volume) or ``stale``
  (the previous minute's candle repeated). :meth:`Market.bad_prints` is the ground truth. Bad prints
  never touch the first minute of a session, adjacent minutes, the index or the WebSocket ticks.
* **Bad ticks.** About 1 in 20,000 snapshots is followed, on the WebSocket only, by an extra *spike*
  packet (same second, price off by 4-12 %, volume unchanged). Spikes never enter REST candles.

**Candle rule** (REST candles; the live candle builder implements the same rule):

    A snapshot is *valid* unless its ``last_price`` differs by more than :data:`SPIKE_THRESHOLD`
    (3 %) from the previous valid snapshot of the same token in the same session (the first snapshot
    of a session, the 09:08 pre-open trade, is valid). The 1-minute candle stamped ``m`` (09:15 ...
    15:29) is built from the valid snapshots whose ``exchange_timestamp`` lies in ``[m, m + 1 min)``:
    open = first price, high = max, low = min, close = last price, volume = ``volume_traded`` at the
    minute's last valid snapshot minus ``volume_traded`` at the previous minute's last valid snapshot
    (for the first minute of the session, minus 0; so the 09:15 candle includes the pre-open volume).
    Every session minute has at least one trade, so every session has 375 one-minute candles. Higher
    intervals (5, 15, 60 minute) aggregate the 1-minute candles in 09:15-aligned buckets (first open,
    max high, min low, last close, summed volume); ``day`` aggregates the whole session.

**Index futures.** A future's snapshot at second ``s`` is its index's price at ``s`` times
``1 + CARRY * calendar_days_to_expiry / 365`` (the basis, constant within a day and shrinking to
zero at expiry), rounded to the tick; its trade seconds, sizes and imbalance are its own draws.
Volume follows the roll: the near contract carries most of it until :data:`VOLUME_ROLL_SESSIONS`
sessions before its expiry, then the next contract does; the far contract trades thinly. A contract
has candles only on the sessions it is listed (near, next or far: about three months up to its expiry).

Genuine one-second moves stay far below 3 % (per-second volatility is ~0.01-0.05 %), so the rule never
drops a genuine snapshot.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter

from tickwise.adapters.kite.simulator.faults import BAD_PRINT_KINDS
from tickwise.adapters.kite.simulator.universe import (
    FutureSpec,
    SimInstrument,
    Universe,
    live_index_futures,
)
from tickwise.domain.calendar import NSE, SessionCalendar
from tickwise.domain.tick import OHLC, Depth, DepthLevel, Tick
from tickwise.domain.time import IST

EPOCH = date(2015, 1, 1)
HORIZON = date(2040, 12, 31)
SESSION_SECONDS = 22_500  # 09:15:00 ... 15:29:59
MINUTES = 375
PRE_OPEN = time(9, 8)
SPIKE_THRESHOLD = 0.03
SPIKE_RATE = 1 / 20_000
IMBALANCE_HALF_LIFE_S = 180.0
IMBALANCE_BETA = 0.03  # weight of the latent imbalance in the next second's return (vs unit noise)
REGIMES = ("quiet", "trend", "mean_reversion", "burst")
CARRY = 0.07  # annualised cost of carry of index futures over the index
VOLUME_ROLL_SESSIONS = 2  # sessions before expiry at which the next contract takes over the volume
LISTING_DAYS = 100  # upper bound of a contract's listed life (it is listed while near, next or far)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class DayLevel:
    """One instrument's day: previous close, open, close and the day's volatility and regime."""

    prev_close: float
    open: float
    close: float
    sigma: float  # open-to-close volatility of the session (log units)
    regime: str


@dataclass(frozen=True, slots=True)
class DayPath:
    """The snapshots of one instrument in one session (arrays are parallel, sorted by second).

    ``second`` counts from 09:15:00 IST; index 0 is the 09:08 pre-open trade (``second`` = -420).
    """

    token: int
    day: date
    level: DayLevel
    second: IntArray
    price: FloatArray
    ltq: IntArray
    volume: IntArray  # cumulative volume_traded
    vwap: FloatArray
    high: FloatArray  # day high so far
    low: FloatArray  # day low so far
    imbalance: FloatArray  # visible book imbalance in (-1, 1)
    spike_after: IntArray  # snapshot indices followed by a spike packet (WebSocket only)
    spike_price: FloatArray

    @property
    def session_open(self) -> datetime:
        return datetime.combine(self.day, time(9, 15), tzinfo=IST)


@dataclass(frozen=True, slots=True)
class MinuteCandles:
    """The 375 one-minute candles of one instrument-day (numpy columns)."""

    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: IntArray


@dataclass(frozen=True, slots=True)
class DayCandles:
    """The candles of one instrument-day that a history request returns, as columns.

    ``minute``: each candle's stamp in minutes after 09:15 IST; a day candle (stamped 00:00 IST) has
    ``daily`` set and its one row at minute 0."""

    day: date
    daily: bool
    minute: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: IntArray

    def rows(self) -> list[tuple[datetime, float, float, float, float, int]]:
        """The candles as ``(stamp, open, high, low, close, volume)`` tuples."""
        if self.daily:
            stamps = [datetime.combine(self.day, time(0, 0), tzinfo=IST)] * len(self.minute)
        else:
            open_at = datetime.combine(self.day, time(9, 15), tzinfo=IST)
            stamps = [open_at + timedelta(minutes=m) for m in self.minute.tolist()]
        return list(
            zip(
                stamps,
                self.open.tolist(),
                self.high.tolist(),
                self.low.tolist(),
                self.close.tolist(),
                self.volume.tolist(),
                strict=True,
            )
        )


_US_PER_MINUTE = 60_000_000


def _us(delta: timedelta) -> int:
    """``delta`` in whole microseconds (exact: a timedelta holds integer microseconds)."""
    return delta // timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class BadPrint:
    """One injected bad print: the 1-minute candle ``minute`` (0 = 09:15) of a session, and its kind."""

    minute: int
    kind: str


def _u_profile() -> FloatArray:
    """U-shaped intraday volatility / volume profile over the session's seconds, RMS 1."""
    u = (np.arange(SESSION_SECONDS) + 0.5) / SESSION_SECONDS
    profile = 1.0 + 1.5 * (2 * u - 1) ** 2
    normalised: FloatArray = profile / np.sqrt(np.mean(profile**2))
    return normalised


_PROFILE = _u_profile()


def _round_to_tick(values: FloatArray, tick: float) -> FloatArray:
    decimals = 4 if tick < 0.01 else 2
    return np.round(np.round(values / tick) * tick, decimals)


class Market:
    """Deterministic prices, snapshots and candles for every instrument of a :class:`Universe`."""

    def __init__(
        self,
        universe: Universe,
        seed: int = 42,
        calendar: SessionCalendar = NSE,
        cache_size: int = 4096,
        *,
        bad_prints: float = 0.0,
        scripted_bad_prints: Sequence[tuple[datetime, str]] = (),
    ) -> None:
        if not 0.0 <= bad_prints <= 0.2:
            raise ValueError(f"bad_prints is a fraction of candles in [0, 0.2], got {bad_prints}")
        self.bad_print_rate = bad_prints
        # The fault script's ``badprint`` entries, by (IST day, minute of the session).
        self._scripted: dict[tuple[date, int], str] = {}
        for at, kind in scripted_bad_prints:
            local = at.astimezone(IST)
            minute = (local.hour * 60 + local.minute) - (9 * 60 + 15)
            if kind not in BAD_PRINT_KINDS or not 0 < minute < MINUTES:
                raise ValueError(f"no bad print {kind!r} possible at {local:%Y-%m-%d %H:%M} IST")
            self._scripted[(local.date(), minute)] = kind
        self.universe = universe
        self.seed = seed
        self.calendar = calendar
        self._levels: dict[int, dict[str, np.ndarray]] = {}
        self._paths: OrderedDict[tuple[int, date], DayPath] = OrderedDict()
        self._candles: OrderedDict[tuple[int, date], MinuteCandles] = OrderedDict()
        self._noise: OrderedDict[tuple[int, date], FloatArray] = OrderedDict()
        self._cache_size = cache_size
        n_days = (HORIZON - EPOCH).days + 1
        self._trading = np.array(
            [calendar.is_trading_day(EPOCH + timedelta(days=i)) for i in range(n_days)], dtype=bool
        )

    # -- day level ---------------------------------------------------------------------------------

    def _rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng([self.seed & 0xFFFFFFFF, *key])

    def _day_series(self, token: int) -> dict[str, np.ndarray]:
        series = self._levels.get(token)
        if series is not None:
            return series
        member = self._member(token)
        rng = self._rng(token, 0)
        n = len(self._trading)
        is_index = member.instrument.segment == "INDICES"
        base_vol = 0.008 if is_index else (0.003 if member.instrument.exchange == "CDS" else 0.014)
        # Persistent volatility level: log-vol AR(1) across trading days.
        log_vol = lfilter([1.0], [1.0, -0.97], rng.normal(0.0, 0.06, n))
        vol = base_vol * np.exp(log_vol)
        regime = rng.choice(len(REGIMES), size=n, p=[0.4, 0.25, 0.25, 0.1])
        gap = rng.normal(0.0, 0.35, n) * vol
        trend_drift = rng.choice([-1.0, 1.0], n) * rng.uniform(0.5, 1.5, n) * vol
        intraday = np.where(regime == 1, trend_drift, rng.normal(0.0, 0.7, n) * vol)
        intraday = np.where(regime == 2, intraday * 0.3, intraday)
        shocks = np.where(self._trading, gap + intraday, 0.0)
        # Log deviation from the reference price: AR(1) with phi close to 1, stepped on trading days only.
        phi = np.where(self._trading, 0.995, 1.0)
        # Filter over the trading days only, then carry each value over the following non-trading days.
        trading_idx = np.flatnonzero(self._trading)
        on_trading = lfilter([1.0], [1.0, -0.995], shocks[trading_idx])
        last_trading = np.maximum.accumulate(np.where(self._trading, np.arange(n), -1))
        dev = np.where(
            last_trading >= 0, on_trading[np.searchsorted(trading_idx, np.maximum(last_trading, 0))], 0.0
        )
        log_close = np.log(member.base_price) + dev
        prev = np.concatenate(([log_close[0]], log_close[:-1]))
        log_open = np.where(
            self._trading,
            np.log(member.base_price) + phi * (prev - np.log(member.base_price)) + gap,
            log_close,
        )
        tick = member.tick_size
        series = {
            "close": _round_to_tick(np.exp(log_close), tick),
            "open": _round_to_tick(np.exp(log_open), tick),
            "vol": vol,
            "regime": regime,
        }
        self._levels[token] = series
        return series

    def _member(self, token: int) -> SimInstrument:
        member = self.universe.get(token)
        if member is None:
            future = self.universe.future(token)
            if future is None:
                raise KeyError(f"unknown instrument token {token}")
            member = future[1]
        return member

    # -- index futures -----------------------------------------------------------------------------

    def _basis(self, member: SimInstrument, day: date) -> float:
        expiry = member.instrument.expiry
        assert expiry is not None
        return 1.0 + CARRY * max((expiry - day).days, 0) / 365.0

    def listed_on(self, token: int, day: date) -> bool:
        """Whether ``token`` trades on ``day`` (always true except for futures outside their life)."""
        future = self.universe.future(token)
        if future is None:
            return True
        # Listed while it is one of the near/next/far contracts, exactly as the dump of that day says.
        return any(c.instrument_token == token for c in live_index_futures(future[0], day, self.calendar))

    def _volume_weight(self, spec: FutureSpec, member: SimInstrument, day: date) -> float:
        """Share of the underlying's futures volume this contract carries on ``day``."""
        live = live_index_futures(spec, day, self.calendar)
        near = live[0]
        assert near.expiry is not None
        sessions_left = len(self.calendar.trading_days(day, near.expiry)) - 1
        rolled = sessions_left < VOLUME_ROLL_SESSIONS
        token = member.token
        if token == near.instrument_token:
            return 0.15 if rolled else 1.0
        if len(live) > 1 and token == live[1].instrument_token:
            return 1.0 if rolled else 0.12
        return 0.03

    def _future_level(self, member: SimInstrument, index_token: int, day: date) -> DayLevel:
        u = self.day_level(index_token, day)
        prev = self.calendar.previous_trading_day(day)
        tick = member.tick_size

        def adj(price: float, on: date) -> float:
            return float(_round_to_tick(np.array([price * self._basis(member, on)]), tick)[0])

        return DayLevel(adj(u.prev_close, prev), adj(u.open, day), adj(u.close, day), u.sigma, u.regime)

    def _build_future_path(self, spec: FutureSpec, member: SimInstrument, day: date) -> DayPath:
        index = self.day_path(spec.index_token, day)  # a snapshot every second: index i + 1 is second i
        level = self._future_level(member, spec.index_token, day)
        rng = self._rng(member.token, day.toordinal())
        T = SESSION_SECONDS
        trades = rng.random(T) < member.liquidity
        per_minute = trades.reshape(MINUTES, 60)
        empty = ~per_minute.any(axis=1)
        if empty.any():
            per_minute[np.flatnonzero(empty), rng.integers(0, 60, int(empty.sum()))] = True
        trades[0] = trades[-1] = True
        seconds = np.flatnonzero(trades)
        traded = _round_to_tick(index.price[seconds + 1] * self._basis(member, day), member.tick_size)
        traded[0], traded[-1] = level.open, level.close
        price = np.concatenate(([level.open], traded))
        second = np.concatenate(([-420], seconds)).astype(np.int64)
        weight = self._volume_weight(spec, member, day)
        intensity = _PROFILE[seconds] ** 2 / member.liquidity
        sizes = member.base_quantity * weight * intensity * rng.lognormal(0.0, 0.8, len(seconds)) * 0.2
        pre_open = member.base_quantity * weight * rng.uniform(5, 20)
        ltq = np.maximum(1, np.concatenate(([pre_open], sizes))).astype(np.int64)
        volume = np.cumsum(ltq)
        vwap = np.cumsum(ltq * price) / volume
        vwap = np.round(np.round(vwap / member.tick_size) * member.tick_size, 2)
        return DayPath(
            token=member.token,
            day=day,
            level=level,
            second=second,
            price=price,
            ltq=ltq,
            volume=volume,
            vwap=vwap,
            high=np.maximum.accumulate(price),
            low=np.minimum.accumulate(price),
            imbalance=np.concatenate(([0.0], index.imbalance[seconds + 1])),
            spike_after=np.zeros(0, np.int64),
            spike_price=np.zeros(0, np.float64),
        )

    def _day_index(self, day: date) -> int:
        i = (day - EPOCH).days
        if not 0 <= i < len(self._trading):
            raise ValueError(f"{day} is outside the simulated history ({EPOCH} .. {HORIZON})")
        return i

    def day_level(self, token: int, day: date) -> DayLevel:
        future = self.universe.future(token)
        if future is not None:
            return self._future_level(future[1], future[0].index_token, day)
        s = self._day_series(token)
        i = self._day_index(day)
        prev = self.calendar.previous_trading_day(day)
        j = self._day_index(prev) if prev >= EPOCH else i
        return DayLevel(
            prev_close=float(s["close"][j]),
            open=float(s["open"][i]),
            close=float(s["close"][i]),
            sigma=float(s["vol"][i]),
            regime=REGIMES[int(s["regime"][i])],
        )

    # -- intraday path -----------------------------------------------------------------------------

    def day_path(self, token: int, day: date) -> DayPath:
        """The snapshots of ``token`` on trading day ``day`` (cached; ``ValueError`` on a non-trading day)."""
        key = (token, day)
        path = self._paths.get(key)
        if path is not None:
            self._paths.move_to_end(key)
            return path
        if not self.calendar.is_trading_day(day):
            raise ValueError(f"{day} is not a trading day")
        path = self._build_path(token, day)
        self._paths[key] = path
        if len(self._paths) > self._cache_size:
            self._paths.popitem(last=False)
        return path

    def _uncached_path(self, token: int, day: date) -> DayPath:
        """:meth:`day_path` without caching it (the same deterministic path)."""
        if not self.calendar.is_trading_day(day):
            raise ValueError(f"{day} is not a trading day")
        return self._build_path(token, day)

    def _build_path(self, token: int, day: date) -> DayPath:
        future = self.universe.future(token)
        if future is not None:
            if not self.listed_on(token, day):
                raise ValueError(f"{future[1].instrument.tradingsymbol} does not trade on {day}")
            return self._build_future_path(future[0], future[1], day)
        member = self._member(token)
        level = self.day_level(token, day)
        rng = self._rng(token, day.toordinal())
        T = SESSION_SECONDS
        profile = _PROFILE
        burst = np.ones(T)
        n_bursts = rng.poisson(2.5 if level.regime == "burst" else 0.4)
        for _ in range(n_bursts):
            start = int(rng.integers(0, T))
            burst[start : start + int(rng.integers(300, 1800))] *= rng.uniform(2.0, 3.5)
        noise = rng.standard_normal((3, T))
        phi = np.exp(-np.log(2) / IMBALANCE_HALF_LIFE_S)
        z = lfilter([np.sqrt(1 - phi**2)], [1.0, -phi], noise[0])
        # return of second t = sigma_t * (noise + beta * z_{t-1}): the imbalance leads the price.
        drive = noise[1]
        drive[1:] += IMBALANCE_BETA * z[:-1]
        drive *= profile
        drive *= burst
        drive *= level.sigma / np.sqrt(T)
        drive[0] = 0.0
        walk = np.cumsum(drive)
        if level.regime == "mean_reversion":
            m_phi = np.exp(-1 / 600.0)
            ou = lfilter([level.sigma / np.sqrt(T) * 6.0], [1.0, -m_phi], noise[2])
            walk += ou - ou[0]

        # Trade seconds: liquidity probability, at least one per minute, always 09:15:00 and 15:29:59.
        trades = rng.random(T) < member.liquidity
        per_minute = trades.reshape(MINUTES, 60)
        empty = ~per_minute.any(axis=1)
        if empty.any():
            per_minute[np.flatnonzero(empty), rng.integers(0, 60, int(empty.sum()))] = True
        trades[0] = trades[-1] = True
        seconds = np.flatnonzero(trades)
        # Bridge pinned to the day's open (09:15:00) and close (15:29:59), evaluated at trade seconds only.
        log_o, log_c = np.log(level.open), np.log(level.close)
        t = seconds / (T - 1)
        bridge = log_o + walk[seconds] - t * (walk[-1] - (log_c - log_o))
        traded = _round_to_tick(np.exp(bridge), member.tick_size)
        traded[0] = level.open
        traded[-1] = level.close
        is_index = member.instrument.segment == "INDICES"
        price = np.concatenate(([level.open], traded))
        second = np.concatenate(([-420], seconds)).astype(np.int64)
        n = len(second)
        if is_index:
            ltq = np.zeros(n, dtype=np.int64)
        else:
            intensity = _PROFILE[seconds] ** 2 / member.liquidity
            sizes = member.base_quantity * intensity * rng.lognormal(0.0, 0.8, len(seconds)) * 0.2
            pre_open = member.base_quantity * rng.uniform(5, 20)
            ltq = np.maximum(1, np.concatenate(([pre_open], sizes))).astype(np.int64)
        volume = np.cumsum(ltq)
        turnover = np.cumsum(ltq * price)
        vwap = np.where(volume > 0, turnover / np.maximum(volume, 1), price)
        vwap = np.round(vwap / member.tick_size) * member.tick_size
        vwap = np.round(vwap, 4 if member.tick_size < 0.01 else 2)
        imbalance = np.tanh(0.8 * np.concatenate(([0.0], z[seconds])))
        n_spikes = rng.binomial(max(n - 1, 0), SPIKE_RATE) if not is_index else 0
        spike_after = (
            np.sort(rng.choice(np.arange(1, n), size=n_spikes, replace=False))
            if n_spikes
            else np.zeros(0, np.int64)
        )
        spike_factor = 1 + rng.choice([-1.0, 1.0], n_spikes) * rng.uniform(0.04, 0.12, n_spikes)
        spike_price = _round_to_tick(price[spike_after] * spike_factor, member.tick_size)
        return DayPath(
            token=token,
            day=day,
            level=level,
            second=second,
            price=price,
            ltq=ltq,
            volume=volume,
            vwap=vwap,
            high=np.maximum.accumulate(price),
            low=np.minimum.accumulate(price),
            imbalance=imbalance,
            spike_after=spike_after.astype(np.int64),
            spike_price=spike_price,
        )

    # -- candles -----------------------------------------------------------------------------------

    def minute_candles(self, token: int, day: date) -> MinuteCandles:
        """The 375 one-minute candles of ``token`` on ``day``, per the candle rule of this module."""
        key = (token, day)
        cached = self._candles.get(key)
        if cached is not None:
            return cached
        # A REST history request reads each day's path once: built here without entering the path
        # cache, so backfilling years of many instruments holds candles (15 KB a day), not paths (MBs).
        p = self._paths.get(key) or self._uncached_path(token, day)
        minute = np.maximum(p.second, 0) // 60  # the pre-open trade folds into the first minute's volume only
        session = p.second >= 0
        m, price = minute[session], p.price[session]
        starts = np.searchsorted(m, np.arange(MINUTES), side="left")
        ends = np.searchsorted(m, np.arange(MINUTES), side="right")
        candles = MinuteCandles(
            open=price[starts],
            high=np.maximum.reduceat(price, starts),
            low=np.minimum.reduceat(price, starts),
            close=price[ends - 1],
            volume=np.diff(np.concatenate(([0], p.volume[session][ends - 1]))),
        )
        candles = self._apply_bad_prints(
            candles, self.bad_prints(token, day), self._rng(token, day.toordinal(), 3)
        )
        self._candles[key] = candles
        if len(self._candles) > self._cache_size:
            self._candles.popitem(last=False)
        return candles

    def bad_prints(self, token: int, day: date) -> list[BadPrint]:
        """The bad prints injected into ``token``'s candles on ``day`` (empty when the rate is 0)."""
        member = self._member(token)
        if member.instrument.segment == "INDICES":
            return []
        scripted = {m: k for (d, m), k in self._scripted.items() if d == day}
        if self.bad_print_rate <= 0:
            return [BadPrint(m, k) for m, k in sorted(scripted.items())]
        rng = self._rng(token, day.toordinal(), 2)
        chosen = np.flatnonzero(rng.random(MINUTES) < self.bad_print_rate)
        kinds = rng.integers(0, len(BAD_PRINT_KINDS), MINUTES)
        out: list[BadPrint] = []
        for m in chosen.tolist():
            # Minute 0 has no previous bar to repeat; neighbours would make one print hide another.
            if m == 0 or (out and m - out[-1].minute < 2):
                continue
            out.append(BadPrint(m, BAD_PRINT_KINDS[int(kinds[m])]))
        if scripted:  # a scripted print replaces a random one at the same minute
            merged = {bp.minute: bp.kind for bp in out} | scripted
            out = [BadPrint(m, k) for m, k in sorted(merged.items())]
        return out

    @staticmethod
    def _apply_bad_prints(
        clean: MinuteCandles, prints: list[BadPrint], rng: np.random.Generator
    ) -> MinuteCandles:
        if not prints:
            return clean
        o, h, low, c = (a.copy() for a in (clean.open, clean.high, clean.low, clean.close))
        v = clean.volume.copy()
        for bp in prints:
            m = bp.minute
            if bp.kind == "spike":
                size = float(rng.uniform(0.02, 0.08))
                if rng.random() < 0.5:
                    h[m] = round(max(h[m], max(o[m], c[m]) * (1 + size)), 2)
                else:
                    low[m] = round(min(low[m], min(o[m], c[m]) * (1 - size)), 2)
            elif bp.kind == "zero_volume":
                o[m] = h[m] = low[m] = c[m] = c[m - 1]
                v[m] = 0
            else:  # stale: the previous minute's print repeated
                o[m], h[m], low[m], c[m], v[m] = o[m - 1], h[m - 1], low[m - 1], c[m - 1], v[m - 1]
        return MinuteCandles(open=o, high=h, low=low, close=c, volume=v)

    def candles(
        self, token: int, interval_minutes: int | None, start: datetime, end: datetime, now: datetime
    ) -> list[tuple[datetime, float, float, float, float, int]]:
        """Candles stamped in ``[start, end]`` whose whole interval has ended by ``now``.

        ``interval_minutes`` None means day candles (stamped 00:00 IST).
        """
        return [
            row for day in self.candle_days(token, interval_minutes, start, end, now) for row in day.rows()
        ]

    def candle_days(
        self, token: int, interval_minutes: int | None, start: datetime, end: datetime, now: datetime
    ) -> list[DayCandles]:
        """:meth:`candles` as columns, one :class:`DayCandles` per day that has any.

        Each day's bars come from whole-array reductions over its minute candles (``reduceat``): the
        maximum, minimum and integer sum of a slice are exact, so they equal one reduction per bar,
        without a Python step per bar (the REST history of a backfill asks for every minute of every
        session)."""
        out: list[DayCandles] = []
        first = start.astimezone(IST).date()
        last = min(end.astimezone(IST).date(), now.astimezone(IST).date())
        for day in self.calendar.trading_days(first, last):
            if not self.listed_on(token, day):
                continue
            c = self.minute_candles(token, day)
            open_at = datetime.combine(day, time(9, 15), tzinfo=IST)
            if interval_minutes is None:
                stamp = datetime.combine(day, time(0, 0), tzinfo=IST)
                if start <= stamp <= end and now >= open_at + timedelta(minutes=MINUTES):
                    out.append(
                        DayCandles(
                            day,
                            True,
                            np.zeros(1, dtype=np.int64),
                            np.array([c.open[0]], dtype=np.float64),
                            np.array([c.high.max()], dtype=np.float64),
                            np.array([c.low.min()], dtype=np.float64),
                            np.array([c.close[-1]], dtype=np.float64),
                            np.array([c.volume.sum()], dtype=np.int64),
                        )
                    )
                continue
            b = np.arange(0, MINUTES, interval_minutes, dtype=np.int64)
            e = np.minimum(b + interval_minutes, MINUTES)
            # stamp in [start, end] and the bar's end by now, in exact integer microseconds from 09:15
            keep = (
                (b * _US_PER_MINUTE >= _us(start - open_at))
                & (b * _US_PER_MINUTE <= _us(end - open_at))
                & (e * _US_PER_MINUTE <= _us(now - open_at))
            )
            if not keep.any():
                continue
            out.append(
                DayCandles(
                    day,
                    False,
                    b[keep],
                    np.asarray(c.open[b][keep], dtype=np.float64),
                    np.asarray(np.maximum.reduceat(c.high, b)[keep], dtype=np.float64),
                    np.asarray(np.minimum.reduceat(c.low, b)[keep], dtype=np.float64),
                    np.asarray(c.close[e - 1][keep], dtype=np.float64),
                    np.asarray(np.add.reduceat(c.volume, b)[keep], dtype=np.int64),
                )
            )
        return out

    def continuous_candles(
        self, token: int, interval_minutes: int | None, start: datetime, end: datetime, now: datetime
    ) -> list[tuple[datetime, float, float, float, float, int]]:
        """Kite's ``continuous=1``: each day's candles of the underlying's front contract on that day.

        The front contract is the nearest one not yet expired (it trades through its expiry day);
        prices are raw, not adjusted at the roll. ``KeyError`` unless ``token`` is an index future.
        """
        return [
            row
            for day in self.continuous_candle_days(token, interval_minutes, start, end, now)
            for row in day.rows()
        ]

    def continuous_candle_days(
        self, token: int, interval_minutes: int | None, start: datetime, end: datetime, now: datetime
    ) -> list[DayCandles]:
        """:meth:`continuous_candles` as columns, one :class:`DayCandles` per day that has any."""
        future = self.universe.future(token)
        if future is None:
            raise KeyError(f"{token} is not an index future")
        spec = future[0]
        out: list[DayCandles] = []
        first = start.astimezone(IST).date()
        last = min(end.astimezone(IST).date(), now.astimezone(IST).date())
        for day in self.calendar.trading_days(first, last):
            front = live_index_futures(spec, day, self.calendar)[0]
            day_start = max(start, datetime.combine(day, time(0, 0), tzinfo=IST))
            day_end = min(end, datetime.combine(day, time(23, 59, 59), tzinfo=IST))
            out.extend(self.candle_days(front.instrument_token, interval_minutes, day_start, day_end, now))
        return out

    # -- snapshots ---------------------------------------------------------------------------------

    def _epoch_of(self, path: DayPath, second: int) -> int:
        return int(path.session_open.timestamp()) + second

    def _tick(self, path: DayPath, i: int, price: float | None = None) -> Tick:
        member = self._member(path.token)
        ins = member.instrument
        at = datetime.fromtimestamp(self._epoch_of(path, int(path.second[i])), IST)
        last = float(path.price[i]) if price is None else price
        ohlc = OHLC(path.level.open, float(path.high[i]), float(path.low[i]), path.level.prev_close)
        change = (last - ohlc.close) * 100 / ohlc.close if ohlc.close else 0.0
        if ins.segment == "INDICES":
            return Tick(path.token, "full", False, last, ohlc=ohlc, change=change, exchange_timestamp=at)
        tick = member.tick_size
        imb = float(path.imbalance[i])
        noise = self._book_noise(path)[i].tolist()
        spread = 1 + int(noise[0] > 1.3)
        best_bid = round(float(path.price[i]) - tick * (1 if noise[1] > 1.0 else 0), 4)
        best_ask = round(best_bid + spread * tick, 4)
        q = member.base_quantity
        decimals = 4 if tick < 0.01 else 2
        buy = tuple(
            DepthLevel(
                max(1, int(q * (1 + imb) * (1 + 0.3 * k) * noise[k])),
                round(best_bid - k * tick, decimals),
                max(1, int(noise[k] * 3 + k)),
            )
            for k in range(5)
        )
        sell = tuple(
            DepthLevel(
                max(1, int(q * (1 - imb) * (1 + 0.3 * k) * noise[5 + k])),
                round(best_ask + k * tick, decimals),
                max(1, int(noise[5 + k] * 3 + k)),
            )
            for k in range(5)
        )
        return Tick(
            instrument_token=path.token,
            mode="full",
            tradable=True,
            last_price=last,
            last_traded_quantity=int(path.ltq[i]),
            average_traded_price=float(path.vwap[i]),
            volume_traded=int(path.volume[i]),
            total_buy_quantity=int(sum(lv.quantity for lv in buy) * 8),
            total_sell_quantity=int(sum(lv.quantity for lv in sell) * 8),
            ohlc=ohlc,
            change=change,
            last_trade_time=at,
            oi=0,
            oi_day_high=0,
            oi_day_low=0,
            exchange_timestamp=at,
            depth=Depth(buy, sell),
        )

    def _book_noise(self, path: DayPath) -> FloatArray:
        """Per-snapshot depth noise (n x 10 lognormal), drawn once per instrument-day."""
        key = (path.token, path.day)
        noise = self._noise.get(key)
        if noise is None:
            rng = self._rng(path.token, path.day.toordinal(), 1)
            noise = rng.lognormal(0.0, 0.35, (len(path.second), 10))
            self._noise[key] = noise
            if len(self._noise) > self._cache_size:
                self._noise.popitem(last=False)
        return noise

    def snapshots_between(
        self, token: int, after: datetime, until: datetime, spikes: bool = True
    ) -> list[Tick]:
        """Snapshots (full-mode ticks) with ``after < exchange_timestamp <= until``, in order.

        With ``spikes`` the WebSocket's bad ticks are included right after the snapshot they follow.
        """
        out: list[Tick] = []
        first = after.astimezone(IST).date()
        last = until.astimezone(IST).date()
        for day in self.calendar.trading_days(first, last):
            path = self.day_path(token, day)
            base = int(path.session_open.timestamp())
            lo = int(np.searchsorted(path.second, int(after.timestamp()) - base, side="right"))
            hi = int(np.searchsorted(path.second, int(until.timestamp()) - base, side="right"))
            if lo >= hi:
                continue
            spike_at = (
                dict(zip(path.spike_after.tolist(), path.spike_price.tolist(), strict=True)) if spikes else {}
            )
            for i in range(lo, hi):
                out.append(self._tick(path, i))
                if i in spike_at:
                    out.append(self._tick(path, i, price=spike_at[i]))
        return out

    def last_snapshot(self, token: int, at: datetime) -> Tick:
        """The last genuine snapshot at or before ``at`` (the last-value cache), searching back over days."""
        day = at.astimezone(IST).date()
        if not self.calendar.is_trading_day(day):
            day = self.calendar.previous_trading_day(day)
        for _ in range(30):
            path = self.day_path(token, day)
            base = int(path.session_open.timestamp())
            i = int(np.searchsorted(path.second, int(at.timestamp()) - base, side="right")) - 1
            if i >= 0:
                return self._tick(path, i)
            day = self.calendar.previous_trading_day(day)
        raise ValueError(f"no snapshot of {token} before {at}")  # pragma: no cover

    def last_price(self, token: int, at: datetime) -> float:
        return self.last_snapshot(token, at).last_price
