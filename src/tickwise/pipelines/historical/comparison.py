"""Challenger vs champion on the same out-of-sample window, from stored features and labels.

The window is every bar strictly after ``max(trained_to) + embargo`` of the two models, so neither model
has seen those bars or any label that overlaps them. Both models score the same bars (those where each
has all its features and both sides are labelled); their signals are followed as in ``core.metrics``
(label outcomes, Zerodha intraday costs) and summed per session for the paired bootstrap, or their
probabilities are compared by DeLong's test (see ``core.promotion``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np
import pandas as pd

from tickwise.core.metrics import TradeOutcomes, ZerodhaIntradayCosts
from tickwise.core.model import ModelArtifact
from tickwise.core.predictor import Predictor
from tickwise.core.promotion import PromotionRule, daily_sum, delong_test, paired_bootstrap, trade_net_returns
from tickwise.core.regime import layer_of
from tickwise.core.signal_model import SignalModel
from tickwise.core.signals import SignalGenerator
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.governance import Comparison
from tickwise.pipelines.historical.predict import session_open_before
from tickwise.ports.repositories import ModelRecord

KEY = ["instrument_token", "time"]


class FeatureFrames(Protocol):
    async def read_frame(
        self,
        instrument_token: int,
        timeframe: Timeframe,
        feature_set: str,
        start: datetime | None,
        end: datetime | None,
        *,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame: ...


class LabelFrames(Protocol):
    async def read_frame(
        self, instrument_token: int, timeframe: Timeframe, start: datetime | None, end: datetime | None
    ) -> pd.DataFrame: ...


def _scored(features: pd.DataFrame, artifact: ModelArtifact, generator: SignalGenerator) -> pd.DataFrame:
    """Per ready bar: direction and both side probabilities of one model (``features`` carries the
    regime columns of a model with a regime layer)."""
    predictor = Predictor(artifact)
    model = SignalModel(predictor, generator, layer_of(artifact.regime))
    x = features.loc[:, list(predictor.feature_names)].to_numpy(dtype=np.float64)
    regime = {n: features[n].to_numpy(dtype=np.float64) for n in generator.regime_features}
    scored = model.score(x, regime)
    probs = predictor.predict_matrix(x[scored.ready])
    rows = features.loc[scored.ready, KEY].reset_index(drop=True)
    rows["direction"] = scored.batch.direction.astype(np.int64)
    rows["p_long"] = probs[:, 0]
    rows["p_short"] = probs[:, 1]
    return rows


def _outcomes(frame: pd.DataFrame) -> TradeOutcomes:
    ret_l, exit_l = frame["ret_l"].to_numpy(np.float64), frame["exit_price_l"].to_numpy(np.float64)
    return TradeOutcomes(
        entry_price=exit_l / (1.0 + ret_l),  # ret = s * (exit / P0 - 1), long side
        long_ret=ret_l,
        long_exit=exit_l,
        long_win=frame["label_l"].to_numpy() == 1,
        short_ret=frame["ret_s"].to_numpy(np.float64),
        short_exit=frame["exit_price_s"].to_numpy(np.float64),
        short_win=frame["label_s"].to_numpy() == 1,
    )


class OutOfSampleComparison:
    """``Compare`` for :class:`~tickwise.pipelines.governance.ModelGovernance` over stored data."""

    def __init__(
        self,
        *,
        features: FeatureFrames,
        labels: LabelFrames,
        tokens: Callable[[], Awaitable[list[int]]],
        load: Callable[[ModelRecord], Awaitable[ModelArtifact]],
        generator: Callable[[ModelArtifact], SignalGenerator],
        timeframe: Timeframe,
        embargo: timedelta,
        rule: PromotionRule,
        costs: ZerodhaIntradayCosts | None = None,
    ) -> None:
        self._features = features
        self._labels = labels
        self._tokens = tokens
        self._load = load
        self._generator = generator
        self._timeframe = timeframe
        self._embargo = embargo
        self._rule = rule
        self._costs = costs or ZerodhaIntradayCosts()

    async def __call__(self, challenger: ModelRecord, champion: ModelRecord) -> Comparison:
        if challenger.trained_to is None or champion.trained_to is None:
            return Comparison(None, 0)
        after = pd.Timestamp(max(challenger.trained_to, champion.trained_to) + self._embargo)
        models = [await self._load(challenger), await self._load(champion)]
        gens = [self._generator(a) for a in models]
        frames = []
        for token in await self._tokens():
            per_model = []
            for artifact, gen in zip(models, gens, strict=True):
                layer = layer_of(artifact.regime)
                columns = list(SignalModel(Predictor(artifact), gen, layer).needed_features)
                # A regime layer's recursion starts at the session's open: read the session from there.
                start = after.to_pydatetime()
                f = await self._features.read_frame(
                    token,
                    self._timeframe,
                    artifact.feature_set,
                    session_open_before(start) if layer is not None else start,
                    None,
                    columns=columns,
                )
                if layer is not None and not f.empty:
                    f = layer.with_columns(f)
                f = f[pd.DatetimeIndex(f["time"]) > after] if not f.empty else f
                per_model.append(_scored(f.reset_index(drop=True), artifact, gen) if not f.empty else None)
            if per_model[0] is None or per_model[1] is None:
                continue
            labels = await self._labels.read_frame(token, self._timeframe, after.to_pydatetime(), None)
            if labels.empty:
                continue
            labels = labels[pd.DatetimeIndex(labels["time"]) > after]
            cols = [*KEY, "label", "ret", "exit_price"]
            long_ = labels[labels["side"] == 1][cols]
            short = labels[labels["side"] == -1][cols]
            sides = long_.merge(short, on=KEY, suffixes=("_l", "_s"))
            joined = per_model[0].merge(per_model[1], on=KEY, suffixes=("_a", "_b")).merge(sides, on=KEY)
            if not joined.empty:
                frames.append(joined)
        if not frames:
            return Comparison(None, 0, after.to_pydatetime())
        data = pd.concat(frames, ignore_index=True).sort_values(
            ["time", "instrument_token"], kind="mergesort"
        )
        times = pd.DatetimeIndex(data["time"])
        days = int(times.tz_convert("Asia/Kolkata").normalize().nunique())
        window_to = times.max().to_pydatetime()
        if self._rule.test == "delong":
            y = np.concatenate([data["label_l"].to_numpy() == 1, data["label_s"].to_numpy() == 1])
            pa = np.concatenate([data["p_long_a"].to_numpy(), data["p_short_a"].to_numpy()])
            pb = np.concatenate([data["p_long_b"].to_numpy(), data["p_short_b"].to_numpy()])
            result = delong_test(y, pa, pb)
            return Comparison(result, days, after.to_pydatetime(), window_to)
        outcomes = _outcomes(data)
        net_a = trade_net_returns(data["direction_a"].to_numpy(), outcomes, self._costs)
        net_b = trade_net_returns(data["direction_b"].to_numpy(), outcomes, self._costs)
        daily_a, daily_b = daily_sum(times, net_a), daily_sum(times, net_b)
        result = paired_bootstrap(
            daily_a.to_numpy(), daily_b.to_numpy(), samples=self._rule.bootstrap_samples, seed=self._rule.seed
        )
        return Comparison(result, days, after.to_pydatetime(), window_to)
