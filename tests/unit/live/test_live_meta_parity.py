"""Live == batch for meta-labeling: a model bundle with a meta model gives every live signal the very
meta probability and meta size (bit for bit) that batch prediction gives the same bar."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from live_models import FEATURES, PARAMS, frame_bars, side_boosters
from test_live_engine_one_predict import _engine

from tickwise.bench.features import synthetic_candles
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.meta_model import META_INPUTS, MetaModel
from tickwise.core.model import ModelArtifact, fit_booster
from tickwise.core.predictor import Predictor
from tickwise.core.signals import SignalGenerator
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.predict import signals_frame
from tickwise.pipelines.live.engine import SignalStep


def _artifact(calc: FeatureCalculator) -> ModelArtifact:
    rng = np.random.default_rng(9)
    x, boosters = side_boosters(rng, rounds=40)
    params = PARAMS
    meta_x = np.hstack(
        [x, rng.uniform(0.3, 0.9, size=(len(x), 1)), rng.choice([-1.0, 1.0], size=(len(x), 1))]
    )
    meta = MetaModel(
        booster=fit_booster(
            meta_x,
            (meta_x[:, 2] + rng.normal(size=len(x)) > 0).astype(np.int8),
            params=params,
            num_boost_round=40,
            feature_names=[*FEATURES, *META_INPUTS],
        ),
        feature_names=FEATURES,
    )
    return ModelArtifact("m-meta", boosters, FEATURES, calc.feature_set, meta=meta)


def test_live_meta_probability_and_size_equal_batch_prediction_bit_for_bit() -> None:
    calc = FeatureCalculator()
    artifact = _artifact(calc)
    generator = SignalGenerator(threshold=0.3, meta_step=0.1)
    step = SignalStep(Predictor(artifact), generator, calc.names)
    out: dict[str, list[Any]] = {}
    engine = _engine(calc, step, out)
    hist, live = 600, 40
    frames = {t: synthetic_candles(hist + live, seed=t) for t in (201, 202, 203)}
    for token, frame in frames.items():
        engine.open_instrument(token, frame.iloc[:hist])
    for minute in range(live):
        engine.process_many([frame_bars(t, f.iloc[hist:])[minute] for t, f in frames.items()], 0.0)
    live_signals = pd.DataFrame(
        [
            (
                s.signal.instrument_token,
                pd.Timestamp(s.signal.time),
                s.signal.direction,
                s.signal.meta_prob,
                s.signal.meta_size,
            )
            for s in out["signals"]
        ],
        columns=["instrument_token", "time", "direction", "meta_prob", "meta_size"],
    )
    batch = []
    for token, frame in frames.items():
        features = calc.compute(frame)
        features.insert(0, "instrument_token", token)
        batch.append(signals_frame(features.iloc[hist:], Predictor(artifact), generator, Timeframe.M1))
    merged = live_signals.merge(pd.concat(batch), on=["instrument_token", "time"], suffixes=("", "_batch"))
    assert len(merged) == len(live_signals) == live * len(frames)
    fired = merged["direction"] != 0
    assert fired.sum() > 30 and (merged["direction"] == merged["direction_batch"]).all()
    # Live carries None where batch has NaN (flat bars); every fired bar has both, bit-identical.
    assert merged.loc[~fired, "meta_prob"].isna().all() and merged.loc[~fired, "meta_prob_batch"].isna().all()
    for col in ("meta_prob", "meta_size"):
        live_values = merged.loc[fired, col].to_numpy(dtype=np.float64)
        batch_values = merged.loc[fired, f"{col}_batch"].to_numpy(dtype=np.float64)
        assert np.isfinite(live_values).all()
        assert np.array_equal(live_values.view(np.int64), batch_values.view(np.int64))
    assert merged.loc[fired, "meta_size"].nunique() > 1  # real sizes, not one constant
