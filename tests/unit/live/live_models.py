"""Small live models, bars and a consumer shared by the engine and consumer tests (one copy of the
set-up, not one per file).

The models read six calculator features, two sides of ``rounds`` small trees each: enough for the
engine to score, signal and compare paths on, trained in a fraction of a second.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from tickwise.core.candles import CandleBuilder
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.model import ModelArtifact, ParamValue, fit_booster, lgb_params
from tickwise.core.predictor import Predictor
from tickwise.core.signals import SignalGenerator
from tickwise.core.tick_validator import TickValidator
from tickwise.domain.bar import Bar
from tickwise.domain.calendar import NSE
from tickwise.domain.candle import Candle
from tickwise.domain.timeframe import Timeframe
from tickwise.observability.hooks import NullHooks
from tickwise.pipelines.live.consumer import TickConsumer
from tickwise.pipelines.live.engine import LiveEngine, SignalStep
from tickwise.pipelines.live.feed_watch import FeedWatch
from tickwise.pipelines.live.repair import RepairQueue

FEATURES = ("rsi_14", "ret_1", "bop", "cci_20", "mom_10", "stoch_k_14_3_3")
# Rows of the features' usual scale (RSI and stochastics around 50, returns near 0, ...).
_SCALE = np.array([20, 1e-3, 0.5, 100, 2, 30])
_CENTRE = np.array([50, 0, 0, 0, 0, 50])
PARAMS: dict[str, ParamValue] = lgb_params({"learning_rate": 0.1, "num_leaves": 15}, 3)


def side_boosters(rng: np.random.Generator, rounds: int) -> tuple[np.ndarray, dict[int, lgb.Booster]]:
    """Training rows over :data:`FEATURES` and a long (label from ``rsi_14``) / short (``cci_20``) pair."""
    x = rng.normal(size=(2000, len(FEATURES))) * _SCALE + _CENTRE
    boosters = {
        s: fit_booster(
            x,
            (x[:, k] + rng.normal(size=len(x)) * x[:, k].std() > x[:, k].mean()).astype(np.int8),
            params=PARAMS,
            num_boost_round=rounds,
            feature_names=list(FEATURES),
        )
        for s, k in ((1, 0), (-1, 3))
    }
    return x, boosters


def small_step(calc: FeatureCalculator, seed: int, rounds: int, version: str) -> SignalStep:
    """A :class:`SignalStep` over a :func:`side_boosters` pair; a low threshold, so that most ready
    bars get a direction and a comparison covers real signals."""
    _, boosters = side_boosters(np.random.default_rng(seed), rounds)
    artifact = ModelArtifact(version, boosters, FEATURES, calc.feature_set)
    return SignalStep(Predictor(artifact), SignalGenerator(threshold=0.3), calc.names)


def frame_bars(token: int, frame: pd.DataFrame) -> list[Bar]:
    """The live 1m bars of ``token`` for a candle frame's rows (``synthetic_candles``' columns)."""
    return [
        Bar(
            Candle(
                token,
                Timeframe.M1,
                r.time.to_pydatetime(),
                r.open,
                r.high,
                r.low,
                r.close,
                int(r.volume),
                None,
                "live",
            ),
            obi_5=float(r.obi_5),
        )
        for r in frame.itertuples(index=False)
    ]


def minute_consumer(
    engine: LiveEngine, clock: Any, day: date, until: datetime, **options: Any
) -> TickConsumer:
    """A :class:`TickConsumer` of NSE's session ``day`` on a real validator, candle builder (2 s grace),
    repair queue and feed watch, its rows dropped; ``options`` are the consumer's other arguments."""
    return TickConsumer(
        engine=engine,
        validator=TickValidator(NSE, 0.03, session_day=day),
        builder=CandleBuilder(calendar=NSE, grace_s=2.0),
        repairs=RepairQueue(NSE),
        watch=FeedWatch(silence_s=1.5, started=time.monotonic()),
        put=lambda table, rows: None,
        clock=clock,
        until=until,
        hooks=NullHooks(),
        **options,
    )
