"""Live == batch with a regime layer: the engine's signals (one bar at a time, one minute at a time,
after a mid-session restart, after a rewind) equal batch prediction's over the same bars, bit for bit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from live_models import frame_bars

from tickwise.bench.features import synthetic_candles
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.model import ModelArtifact, fit_booster, lgb_params
from tickwise.core.predictor import Predictor
from tickwise.core.regime import RegimeLayer, RegimeSpec, fit_regime_layer
from tickwise.core.signals import RegimeRule, SignalGenerator, StateRule
from tickwise.domain.errors import ModelError
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.predict import signals_frame
from tickwise.pipelines.live.engine import LiveEngine, SignalStep

BASE = ("rsi_14", "ret_1", "bop", "cci_20")
TOKENS = (201, 202, 203)
SESSION = 375
HIST = 4 * SESSION  # the training window: four sessions (the features warm up in 1199 bars)
END = HIST + 80  # the live part ends 80 bars into the fifth session
RESTARTS = (HIST - 40, HIST)  # the engine opens 40 bars before a session's close, and at an open


@pytest.fixture(scope="module")
def calc() -> FeatureCalculator:
    return FeatureCalculator()


@pytest.fixture(scope="module")
def candles() -> dict[int, pd.DataFrame]:
    return {t: synthetic_candles(END, seed=t) for t in TOKENS}


@pytest.fixture(scope="module")
def features(calc: FeatureCalculator, candles: dict[int, pd.DataFrame]) -> pd.DataFrame:
    frames = []
    for t, c in candles.items():
        f = calc.compute(c)
        f.insert(0, "instrument_token", t)
        f["time"] = pd.to_datetime(f["time"], utc=True)
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def layer(features: pd.DataFrame) -> RegimeLayer:
    train = features[features.groupby("instrument_token").cumcount() < HIST]  # the training window only
    return fit_regime_layer(train, RegimeSpec(n_states=3, n_iter=20))


def _artifact(calc: FeatureCalculator, features: pd.DataFrame, layer: RegimeLayer) -> ModelArtifact:
    names = (*BASE, "regime_p0", "regime_p2", "cp_run_length", "cp_prob")
    data = layer.with_columns(features).dropna(subset=list(names))
    x = data.loc[:, list(names)].to_numpy()
    rng = np.random.default_rng(5)
    params = lgb_params({"learning_rate": 0.1, "num_leaves": 15}, 3)
    boosters = {
        s: fit_booster(
            x,
            (x[:, k] + rng.normal(size=len(x)) * x[:, k].std() > x[:, k].mean()).astype(np.int8),
            params=params,
            num_boost_round=40,
            feature_names=list(names),
        )
        for s, k in ((1, 0), (-1, 7))
    }
    return ModelArtifact("m-regime", boosters, names, calc.feature_set, regime=layer.to_dict())


def _generator(filtered: bool = False) -> SignalGenerator:
    rules = (StateRule("regime_state", (2,)), RegimeRule("cp_prob", high=0.5)) if filtered else ()
    return SignalGenerator(threshold=0.3, regime=rules)


def _engine(calc: FeatureCalculator, step: SignalStep, out: dict[str, list[Any]]) -> LiveEngine:
    return LiveEngine(
        calc, step, lambda table, rows: out.setdefault(table, []).extend(rows), wall=lambda: 0.0
    )


def _batch(
    artifact: ModelArtifact, features: pd.DataFrame, generator: SignalGenerator
) -> dict[tuple[int, Any], tuple[int, float, float]]:
    frames = [
        signals_frame(f.reset_index(drop=True), Predictor(artifact), generator, Timeframe.M1)
        for _, f in features.groupby("instrument_token")
    ]
    out = pd.concat(frames, ignore_index=True)
    return {
        (int(r.instrument_token), pd.Timestamp(r.time)): (
            int(r.direction),
            float(r.confidence),
            float(r.size),
        )
        for r in out.itertuples(index=False)
    }


def _live(signals: list[Any]) -> dict[tuple[int, Any], tuple[int, float, float]]:
    return {
        (s.signal.instrument_token, pd.Timestamp(s.signal.time)): (
            s.signal.direction,
            s.signal.confidence,
            s.signal.size,
        )
        for s in signals
    }


@pytest.mark.parametrize("filtered", [False, True])
def test_live_signals_with_a_regime_layer_equal_batch_signals_bit_for_bit(
    calc: FeatureCalculator,
    candles: dict[int, pd.DataFrame],
    features: pd.DataFrame,
    layer: RegimeLayer,
    filtered: bool,
) -> None:
    artifact = _artifact(calc, features, layer)
    generator = _generator(filtered)
    batch = _batch(artifact, features, generator)
    for restart in RESTARTS:
        out: dict[str, list[Any]] = {}
        engine = _engine(calc, SignalStep(Predictor(artifact), generator, calc.names), out)
        for t, c in candles.items():
            engine.open_instrument(t, c.iloc[:restart].assign(time=lambda f: f["time"].dt.tz_convert("UTC")))
        bars = {t: frame_bars(t, c.iloc[restart:]) for t, c in candles.items()}
        for minute in range(END - restart):
            engine.process_many([bars[t][minute] for t in TOKENS], 0.0)
        live = _live(out["signals"])
        assert len(live) > 200
        assert live == {k: v for k, v in batch.items() if k in live}
        later = {k for k in batch if k[1] >= candles[TOKENS[0]]["time"].iloc[restart]}
        assert set(live) == later
        assert {d for d, _, _ in live.values()} >= ({0, 1, -1} if not filtered else {0})


def test_the_regime_filter_suppresses_signals_in_the_chosen_state(
    calc: FeatureCalculator, features: pd.DataFrame, layer: RegimeLayer
) -> None:
    artifact = _artifact(calc, features, layer)
    plain = _batch(artifact, features, _generator(False))
    filtered = _batch(artifact, features, _generator(True))
    regime = layer.with_columns(features).set_index(["instrument_token", "time"])
    turbulent = [k for k in plain if regime.loc[k, "regime_state"] == 2 and plain[k][0] != 0]
    assert turbulent
    assert all(filtered[k][0] == 0 for k in turbulent)
    kept = [k for k in plain if regime.loc[k, "regime_state"] != 2 and regime.loc[k, "cp_prob"] <= 0.5]
    assert all(filtered[k] == plain[k] for k in kept)


def test_a_rewound_session_rebuilds_the_regime_state_and_ends_with_the_same_signals(
    calc: FeatureCalculator, candles: dict[int, pd.DataFrame], features: pd.DataFrame, layer: RegimeLayer
) -> None:
    artifact = _artifact(calc, features, layer)
    generator = _generator()
    batch = _batch(artifact, features, generator)
    out: dict[str, list[Any]] = {}
    engine = _engine(calc, SignalStep(Predictor(artifact), generator, calc.names), out)
    token = TOKENS[0]
    c = candles[token]
    engine.open_instrument(token, c.iloc[: HIST - 20].assign(time=lambda f: f["time"].dt.tz_convert("UTC")))
    bars = frame_bars(token, c.iloc[HIST - 20 : END])
    for bar in bars:
        engine.process(bar, 0.0)
    # The same bars again from the 40th of the new session: its state is rebuilt from the 39 before.
    engine.rewind(token, bars[60:], 0.0)
    assert engine.rewinds == 1
    live = _live(out["signals"])  # later writes of a key overwrite earlier ones, as upserts do
    assert live == {k: v for k, v in batch.items() if k in live}
    assert len(live) > 80


def test_a_regime_filter_on_a_model_without_a_regime_layer_is_a_model_error(
    calc: FeatureCalculator, features: pd.DataFrame, layer: RegimeLayer
) -> None:
    artifact = _artifact(calc, features, layer)
    plain = ModelArtifact("m-plain", artifact.boosters, artifact.feature_names, calc.feature_set)
    with pytest.raises(ModelError, match="regime layer"):
        SignalStep(Predictor(plain), _generator(True), calc.names)
