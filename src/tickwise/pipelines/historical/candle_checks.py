"""The historical step of the data-quality checks: flag an instrument's stored candles, store the flags.

Runs after backfill, inside ``derive`` (per instrument, on its 1m history; with ``compute.scheduler:
pool`` in the worker process that then derives the instrument):
``core.candle_flags.flag_candles`` is causal, so re-checking the whole history gives every bar the flag
it had when it was new, and the upsert into ``candle_flags`` keeps the step idempotent. The flags with
action ``excluded`` are then kept out of the labels (``core.candle_flags.exclude_labels``), and so out
of training, which reads the stored labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from tickwise.core.candle_flags import CandleCheckConfig, flag_candles, with_actions
from tickwise.domain.calendar import NSE, SessionCalendar
from tickwise.domain.instrument import Instrument
from tickwise.domain.timeframe import Timeframe
from tickwise.observability.hooks import NullHooks
from tickwise.ports.candle_flags import CandleFlagRepository
from tickwise.ports.hooks import PipelineHooks
from tickwise.ports.repositories import CandleRepository


@dataclass(frozen=True, slots=True)
class CandleQuality:
    """What the checks need: where flags go, the thresholds and policy, and the hooks to count them."""

    flags: CandleFlagRepository
    config: CandleCheckConfig = field(default_factory=CandleCheckConfig)
    hooks: PipelineHooks = field(default_factory=NullHooks)


@dataclass
class FlagCounts:
    """Flags per check and how many flagged bars the policy excludes (the integrity report's part)."""

    by_check: dict[str, int] = field(default_factory=dict)
    flagged_bars: int = 0
    excluded_bars: int = 0

    def add(self, other: FlagCounts) -> None:
        for check, n in other.by_check.items():
            self.by_check[check] = self.by_check.get(check, 0) + n
        self.flagged_bars += other.flagged_bars
        self.excluded_bars += other.excluded_bars

    def summary(self) -> str:
        checks = ", ".join(f"{c}={n}" for c, n in sorted(self.by_check.items())) or "none"
        return f"{self.flagged_bars} bars flagged ({checks}), {self.excluded_bars} excluded from labels"


async def check_candles(
    token: int,
    candles: pd.DataFrame,
    quality: CandleQuality,
    calendar: SessionCalendar = NSE,
    timeframe: Timeframe = Timeframe.M1,
) -> tuple[pd.DataFrame, FlagCounts]:
    """Flag ``token``'s candles, store the flags, report them; returns (flags with actions, counts)."""
    flags = with_actions(
        flag_candles(candles, quality.config, calendar, instrument_token=token, timeframe=timeframe),
        quality.config,
    )
    counts = FlagCounts()
    if flags.empty:
        return flags, counts
    await quality.flags.add_frame(flags)
    for (check, action), n in flags.groupby(["check", "action"]).size().items():
        counts.by_check[str(check)] = counts.by_check.get(str(check), 0) + int(n)
        quality.hooks.on_candles_flagged(str(check), str(action), int(n))
    counts.flagged_bars = int(flags["time"].nunique())
    counts.excluded_bars = int(flags.loc[flags["action"] == "excluded", "time"].nunique())
    return flags, counts


async def check_universe(
    candles: CandleRepository,
    universe: Sequence[Instrument],
    quality: CandleQuality,
    calendar: SessionCalendar = NSE,
) -> FlagCounts:
    """:func:`check_candles` over each instrument's stored 1m candles (``tickwise backfill``)."""
    total = FlagCounts()
    for inst in universe:
        frame = await candles.read_frame(inst.instrument_token, Timeframe.M1, None, None)
        _, counts = await check_candles(inst.instrument_token, frame, quality, calendar)
        total.add(counts)
    return total
