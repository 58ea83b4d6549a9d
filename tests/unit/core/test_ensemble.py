"""core.ensemble: the point-in-time member rule (batch and live agree), the stacked layer's bits, and
the timeframe calculators."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from tickwise.core.ensemble import (
    MEMBER_COLUMNS,
    LatestProbabilities,
    MemberScore,
    StackedLogistic,
    fit_stacked,
    input_names,
    member_inputs,
)
from tickwise.core.timeframe_features import calculator_for, feature_spec_for
from tickwise.domain.calendar import NSE
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.build_labels import flags_on

TOKEN = 408065
DAY1 = pd.date_range("2026-01-05 03:45", periods=375, freq="1min", tz="UTC")  # 09:15-15:29 IST
DAY2 = pd.date_range("2026-01-06 03:45", periods=375, freq="1min", tz="UTC")


def _scores(times: pd.DatetimeIndex, step: pd.Timedelta, version: str, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "instrument_token": TOKEN,
            "time": times,
            "available_at": times + step,
            "model_version": version,
            "p_long": rng.uniform(0.2, 0.8, len(times)),
            "p_short": rng.uniform(0.2, 0.8, len(times)),
        },
        columns=list(MEMBER_COLUMNS),
    )


def _members(drop_minutes: int = 0) -> dict[str, pd.DataFrame]:
    minutes = DAY1.append(DAY2)
    rng = np.random.default_rng(9)
    kept = minutes.delete(rng.choice(len(minutes), drop_minutes, replace=False)) if drop_minutes else minutes
    fives = minutes[(minutes.minute % 5) == 0]
    fifteens = minutes[((minutes - pd.Timedelta(minutes=45)).minute % 15) == 0]
    return {
        "1m": _scores(kept, pd.Timedelta(minutes=1), "f1", 1),
        "5m": _scores(fives, pd.Timedelta(minutes=5), "f5", 2),
        "15m": _scores(fifteens, pd.Timedelta(minutes=15), "f15", 3),
    }


def _bars(members: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return members["5m"].loc[:, ["instrument_token", "time", "available_at"]]


def test_each_member_gives_its_latest_bar_closed_by_the_ensemble_bars_close_in_the_same_session() -> None:
    members = _members()
    got = member_inputs(_bars(members), members)
    ready = got[got["ready"]]
    t = pd.to_datetime(ready["time"], utc=True)
    assert (pd.to_datetime(ready["1m_time"], utc=True) == t + pd.Timedelta(minutes=4)).all()
    assert (pd.to_datetime(ready["5m_time"], utc=True) == t).all()
    # the 15m member: the 15m bar that had closed by t + 5m, never the one still forming
    m15 = pd.to_datetime(ready["15m_time"], utc=True)
    assert ((m15 + pd.Timedelta(minutes=15)) <= t + pd.Timedelta(minutes=5)).all()
    assert ((t + pd.Timedelta(minutes=5)) - (m15 + pd.Timedelta(minutes=15)) < pd.Timedelta(minutes=15)).all()
    # the first two 5m bars of a session have no 15m bar of that session yet: not ready
    first = got[pd.to_datetime(got["time"], utc=True).isin([DAY2[0], DAY2[5], DAY2[10]])]
    assert first["ready"].tolist() == [False, False, True]
    assert first["15m_version"].tolist()[:2] == [None, None]


def test_live_latest_probabilities_apply_the_batch_rule_bar_by_bar_with_missing_minutes() -> None:
    members = _members(drop_minutes=60)
    batch = member_inputs(_bars(members), members)
    live = LatestProbabilities(["1m", "5m", "15m"])
    events = sorted(
        (row.available_at, name, row)
        for name, frame in members.items()
        for row in frame.itertuples(index=False)
    )
    # feed members in the order their bars close; ask at each 5m bar's close after every member of
    # that instant was added (the live engine scores the closing bars before the ensemble)
    asked: dict[datetime, list[MemberScore] | None] = {}
    pending = sorted(_bars(members)["time"])
    i = 0
    for at, name, row in events:
        while i < len(pending) and pending[i] + pd.Timedelta(minutes=5) < at:
            t = pending[i]
            asked[t] = live.at(TOKEN, t.to_pydatetime(), (t + pd.Timedelta(minutes=5)).to_pydatetime())
            i += 1
        score = MemberScore(
            row.time.to_pydatetime(), at.to_pydatetime(), row.model_version, row.p_long, row.p_short
        )
        live.add(name, TOKEN, score)
    for t in pending[i:]:
        asked[t] = live.at(TOKEN, t.to_pydatetime(), (t + pd.Timedelta(minutes=5)).to_pydatetime())
    assert batch["ready"].sum() > 100 and (~batch["ready"]).sum() > 0
    for k, t in enumerate(batch["time"]):
        got = asked[t]
        assert (got is not None) == bool(batch["ready"].iloc[k])
        if got is not None:
            for score, m in zip(got, ("1m", "5m", "15m"), strict=True):
                assert score.model_version == batch[f"{m}_version"].iloc[k]
                assert score.time == batch[f"{m}_time"].iloc[k]
                assert (score.p_long, score.p_short) == (
                    batch[f"{m}_p_long"].iloc[k],
                    batch[f"{m}_p_short"].iloc[k],
                )


def test_the_stacked_layer_scores_one_row_with_the_bits_of_the_whole_batch_and_survives_json() -> None:
    rng = np.random.default_rng(4)
    probs = rng.uniform(0.05, 0.95, (500, 4))
    y_long = (probs[:, 0] + rng.normal(0, 0.2, 500) > 0.5).astype(np.int8)
    y_short = (probs[:, 3] + rng.normal(0, 0.2, 500) > 0.5).astype(np.int8)
    layer = fit_stacked(["1m", "5m"], probs, y_long, y_short, 1.0)
    assert layer is not None and layer.inputs == input_names(["1m", "5m"])
    whole = layer.predict(probs)
    for i in (0, 17, 499):
        assert np.array_equal(layer.predict(probs[i]), whole[i : i + 1])
    restored = StackedLogistic.from_dict(json.loads(json.dumps(layer.to_dict())))
    assert np.array_equal(restored.predict(probs), whole)
    # the layer learns which member carries the edge
    assert abs(layer.long_coef[0]) > abs(layer.long_coef[2]) and abs(layer.short_coef[3]) > abs(
        layer.short_coef[1]
    )


def test_a_side_with_one_class_of_outcomes_fits_no_layer_and_bad_parameters_are_refused() -> None:
    probs = np.full((10, 2), 0.5)
    assert fit_stacked(["1m"], probs, np.ones(10), np.zeros(10), 1.0) is None
    with pytest.raises(ValueError, match="coefficients"):
        StackedLogistic(("1m",), (1.0,), 0.0, (1.0, 2.0), 0.0)
    with pytest.raises(ValueError, match="member list"):
        StackedLogistic.from_dict({"long_coef": []})


def test_longer_timeframes_compute_features_without_context_bars() -> None:
    assert feature_spec_for(Timeframe.M1).timeframes == (5, 15, 60)
    five = calculator_for(Timeframe.M5)
    assert not [n for n in five.names if n.endswith(("_5m", "_15m", "_60m"))]
    assert five.feature_set != calculator_for(Timeframe.M1).feature_set
    assert five.warmup < calculator_for(Timeframe.M1).warmup
    with pytest.raises(ValueError, match="intraday"):
        calculator_for(Timeframe.D1)


def test_a_flagged_minute_moves_to_the_open_of_the_bar_that_holds_it() -> None:
    flags = pd.DataFrame(
        {"time": [DAY1[7], DAY1[44], DAY1[374]], "check": "spike", "score": 9.0, "action": "excluded"}
    )
    five = flags_on(flags, Timeframe.M5, NSE)
    fifteen = flags_on(flags, Timeframe.M15, NSE)
    assert five is not None and fifteen is not None
    assert list(five["time"]) == [DAY1[5], DAY1[40], DAY1[370]]
    assert list(fifteen["time"]) == [DAY1[0], DAY1[30], DAY1[360]]
    assert flags_on(flags, Timeframe.M1, NSE) is flags and flags_on(None, Timeframe.M5, NSE) is None
