"""Which feature calculator computes the features of a signal timeframe's bars.

The calculator reads ONE instrument's bars of one timeframe, oldest first from the anchor. On 1m bars it
also aggregates the 5/15/60m context bars itself (``FeatureSpec.timeframes``; docs/features.md). That
aggregation takes every input bar for a one-minute bar (a bucket is closed by the bar whose open is its
last minute), so run over 5m or 15m bars it would close each context bucket one bar late, and its
warm-up, counted in input bars (``(lookback + 1) * minutes - 1``), would be 5 to 15 times too long
(1,199 bars: 48 sessions of 15m bars). The calculator for a longer timeframe therefore has no context
timeframes: every feature of a 5m or 15m bar reads only closed bars of that timeframe, from that
timeframe's roll-ups (the same ``RollupBuilder`` bars live and batch), and its feature set id differs
from the 1m one. The same calculator serves the batch step and the live streams of that timeframe.
"""

from __future__ import annotations

from tickwise.core.features.calculator import FeatureCalculator, FeatureSpec
from tickwise.domain.timeframe import Timeframe


def feature_spec_for(timeframe: Timeframe) -> FeatureSpec:
    """The feature spec of ``timeframe``'s bars: the default, without context timeframes above 1m."""
    if timeframe is Timeframe.M1:
        return FeatureSpec()
    if timeframe is Timeframe.D1:
        raise ValueError("signals are intraday: 1d bars have no feature calculator")
    return FeatureSpec(timeframes=())


def calculator_for(timeframe: Timeframe) -> FeatureCalculator:
    """The feature calculator of ``timeframe``'s bars (see the module docstring)."""
    return FeatureCalculator(feature_spec_for(timeframe))
