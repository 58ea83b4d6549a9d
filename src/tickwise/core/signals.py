"""Signal generator: side probabilities (+ regime features) -> direction, confidence, position size.

A pure function of its inputs, shared by the historical and live pipelines (parity). For each bar:

- ``direction`` = +1 when ``p_long >= threshold`` and ``p_long > p_short``; -1 when ``p_short >= threshold``
  and ``p_short > p_long``; otherwise 0 (including exact ties);
- ``confidence`` = ``max(p_long, p_short)``: the model's probability that the better side's trade hits
  its profit target first (for direction 0 it shows how close the bar came to a signal);
- ``size`` = fractional Kelly for a bet that wins ``payoff`` (k_pt / k_sl barrier ratio) or loses 1:
  ``f* = p - (1 - p) / payoff``; ``size = clip(kelly_fraction * f*, 0, max_position)``; 0 without a signal.

The regime filter suppresses signals (direction 0, size 0) on bars whose regime features fall outside
configured bounds, e.g. a volatility so low that the profit target does not cover trading costs, or a
Hurst exponent in a regime the model was not meant for. A bar whose regime feature is NaN is suppressed.
With a model's regime layer (``core.regime``) it can also suppress chosen HMM states
(:class:`StateRule` on ``regime_state``) or bars just after a likely change point (``cp_prob`` above a
bound), configured by ``signals.regime_filter`` (default off).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class RegimeRule:
    """Allow signals only while ``low <= feature <= high`` (either bound optional)."""

    feature: str
    low: float | None = None
    high: float | None = None

    def allows(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        ok = ~np.isnan(values)
        if self.low is not None:
            ok &= values >= self.low
        if self.high is not None:
            ok &= values <= self.high
        result: np.ndarray = ok
        return result


@dataclass(frozen=True, slots=True)
class StateRule:
    """Allow signals only while the (integer-valued) ``feature`` is not one of ``suppress``."""

    feature: str
    suppress: tuple[int, ...] = ()

    def allows(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        result: np.ndarray = ~np.isnan(values) & ~np.isin(values, np.asarray(self.suppress, dtype=np.float64))
        return result


@dataclass(frozen=True)
class SignalBatch:
    direction: np.ndarray  # int8: -1, 0, +1
    confidence: np.ndarray  # float64 in [0, 1]
    size: np.ndarray  # float64 in [0, max_position]
    suppressed: np.ndarray  # bool: a signal the regime filter removed


@dataclass(frozen=True)
class SignalGenerator:
    threshold: float = 0.55
    kelly_fraction: float = 0.25
    max_position: float = 0.1
    payoff: float = 2.0 / 1.5
    regime: Sequence[RegimeRule | StateRule] = field(default_factory=tuple)
    # Meta-label sizing (core.meta_model.meta_size): the discretisation step of the size the model's
    # meta model gives each signal; None switches meta sizing off (signals.meta.enabled).
    meta_step: float | None = None

    def __post_init__(self) -> None:
        if self.meta_step is not None and not 0.0 < self.meta_step <= 1.0:
            raise ValueError(f"meta_step must be in (0, 1] or None, got {self.meta_step}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if not 0.0 < self.kelly_fraction <= 1.0:
            raise ValueError(f"kelly_fraction must be in (0, 1], got {self.kelly_fraction}")
        if not 0.0 < self.max_position <= 1.0:
            raise ValueError(f"max_position must be in (0, 1], got {self.max_position}")
        if self.payoff <= 0:
            raise ValueError(f"payoff must be positive, got {self.payoff}")

    @property
    def regime_features(self) -> tuple[str, ...]:
        return tuple(rule.feature for rule in self.regime)

    def generate(
        self,
        p_long: np.ndarray,
        p_short: np.ndarray,
        regime: Mapping[str, np.ndarray] | None = None,
    ) -> SignalBatch:
        """Vectorised over bars; ``regime`` maps each rule's feature name to its values per bar."""
        p_long = np.asarray(p_long, dtype=np.float64)
        p_short = np.asarray(p_short, dtype=np.float64)
        if p_long.shape != p_short.shape:
            raise ValueError(f"p_long {p_long.shape} and p_short {p_short.shape} differ in shape")
        long_ok = (p_long >= self.threshold) & (p_long > p_short)
        short_ok = (p_short >= self.threshold) & (p_short > p_long)
        direction = np.where(long_ok, 1, np.where(short_ok, -1, 0)).astype(np.int8)
        allowed = np.ones(p_long.shape, dtype=bool)
        for rule in self.regime:
            if regime is None or rule.feature not in regime:
                raise ValueError(f"regime filter needs feature {rule.feature!r}, which was not given")
            allowed &= rule.allows(regime[rule.feature])
        suppressed = (direction != 0) & ~allowed
        direction[suppressed] = 0
        confidence = np.clip(np.maximum(p_long, p_short), 0.0, 1.0)
        p_win = np.where(direction == 1, p_long, p_short)
        kelly = p_win - (1.0 - p_win) / self.payoff
        size = np.clip(self.kelly_fraction * kelly, 0.0, self.max_position)
        size = np.where(direction != 0, size, 0.0)
        return SignalBatch(direction=direction, confidence=confidence, size=size, suppressed=suppressed)

    def one(
        self, p_long: float, p_short: float, regime: Mapping[str, float] | None = None
    ) -> tuple[int, float, float]:
        """One bar (live): the same computation as :meth:`generate` on a one-element batch."""
        arrays = None if regime is None else {k: np.array([v], dtype=np.float64) for k, v in regime.items()}
        batch = self.generate(np.array([p_long]), np.array([p_short]), arrays)
        return int(batch.direction[0]), float(batch.confidence[0]), float(batch.size[0])


# The regime filter both pipelines apply: no signal while the bar's volatility (NATR, % of price) is so
# low that the profit target (k_pt x ATR) would not cover the round-trip costs of an intraday trade.
REGIME_FEATURE = "natr_14"
# The regime layer's columns the filter may read (core.regime.RegimeLayer.columns).
REGIME_STATE = "regime_state"
CHANGE_PROB = "cp_prob"


def model_signal_generator(
    label_spec: Mapping[str, Any],
    *,
    threshold: float,
    kelly_fraction: float,
    max_position: float,
    round_trip_cost: float | None = None,
    meta_step: float | None = None,
    suppress_states: Sequence[int] = (),
    max_change_prob: float | None = None,
) -> SignalGenerator:
    """The generator for a model trained on ``label_spec`` (payoff = k_pt / k_sl; cost-based NATR
    regime rule). The live and historical pipelines both build their generator here (parity).

    ``round_trip_cost``: fraction of notional; default Zerodha intraday costs of a Rs 1 lakh trade.
    ``suppress_states`` / ``max_change_prob``: the regime-layer filter (``signals.regime_filter``):
    no signal while the filtered HMM state is one of these, or while ``cp_prob`` exceeds the bound.
    """
    from tickwise.core.metrics import ZerodhaIntradayCosts

    k_pt = float(label_spec.get("k_pt", 2.0))
    k_sl = float(label_spec.get("k_sl", 1.5))
    if round_trip_cost is None:
        one = np.array([1.0])
        round_trip_cost = float(ZerodhaIntradayCosts().round_trip(one, one * 100.0, one * 100.0)[0])
    return SignalGenerator(
        threshold=threshold,
        kelly_fraction=kelly_fraction,
        max_position=max_position,
        payoff=k_pt / k_sl,
        regime=(
            RegimeRule(REGIME_FEATURE, low=100.0 * round_trip_cost / k_pt),
            *regime_layer_rules(suppress_states, max_change_prob),
        ),
        meta_step=meta_step,
    )


def regime_layer_rules(
    suppress_states: Sequence[int], max_change_prob: float | None
) -> tuple[RegimeRule | StateRule, ...]:
    """The filter rules on the regime layer's columns (none when both settings are off)."""
    rules: list[RegimeRule | StateRule] = []
    if suppress_states:
        rules.append(StateRule(REGIME_STATE, tuple(sorted({int(s) for s in suppress_states}))))
    if max_change_prob is not None:
        rules.append(RegimeRule(CHANGE_PROB, high=float(max_change_prob)))
    return tuple(rules)


def signal_ready(x: np.ndarray) -> np.ndarray:
    """Bars (rows of model features) that may produce a signal: every model feature is finite.
    Warm-up bars have NaN features and get no signal in either pipeline."""
    ready: np.ndarray = np.asarray(np.isfinite(np.asarray(x, dtype=np.float64)).all(axis=-1))
    return ready
