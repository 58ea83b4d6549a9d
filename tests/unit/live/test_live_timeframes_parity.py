"""Live == batch for the 5m and 15m signals and for the ensemble: the live engine's roll-ups, feature
banks, models and stacked layer give, bar for bar, exactly the rows the batch path computes from the
same 1m candles (direction, confidence and size bit-equal; the same member bars and probabilities)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from tickwise.core.aggregation import aggregate_candles
from tickwise.core.ensemble import StackedLogistic, ensemble_generator, member_inputs
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.model import ModelArtifact, fit_booster, lgb_params
from tickwise.core.predictor import Predictor
from tickwise.core.signals import SignalGenerator
from tickwise.core.timeframe_features import calculator_for
from tickwise.domain.bar import Bar
from tickwise.domain.calendar import NSE
from tickwise.domain.candle import Candle
from tickwise.domain.signal import Signal
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.ensemble import ensemble_signals
from tickwise.pipelines.historical.oos import member_scores
from tickwise.pipelines.historical.predict import signals_frame
from tickwise.pipelines.live.engine import LiveEngine, SignalStep
from tickwise.pipelines.live.timeframes import (
    EnsembleStep,
    MemberModel,
    MemberRow,
    TimeframeScorer,
    stored_history,
)

FEATURES = ("rsi_14", "ret_1", "bop", "cci_20", "mom_10", "stoch_k_14_3_3")
TOKENS = (101, 202)
SESSIONS = 13  # the 15m calculator is warm after 281 bars: 11.2 sessions
GENERATOR = SignalGenerator(threshold=0.3)


def _days() -> list[pd.Timestamp]:
    days = pd.bdate_range("2026-01-05", periods=30)
    return [d for d in days if NSE.is_trading_day(d.date())][:SESSIONS]


def _candles(token: int) -> pd.DataFrame:
    rng = np.random.default_rng(token)
    opens = [pd.Timestamp(f"{d.date()} 09:15", tz="Asia/Kolkata") for d in _days()]
    times = pd.DatetimeIndex([o + pd.Timedelta(minutes=m) for o in opens for m in range(375)]).tz_convert(
        "UTC"
    )
    # a few minutes without trades: roll-ups close on a later bar, members go stale
    times = times.delete(rng.choice(np.arange(375 * (SESSIONS - 1), len(times)), 8, replace=False))
    n = len(times)
    close = 1000.0 * np.exp(np.cumsum(rng.normal(0.0, 6e-4, n)))
    opn = np.r_[close[0], close[:-1]]
    return pd.DataFrame(
        {
            "instrument_token": token,
            "timeframe": "1m",
            "time": times,
            "open": opn,
            "high": np.maximum(opn, close) * np.exp(np.abs(rng.normal(0.0, 3e-4, n))),
            "low": np.minimum(opn, close) * np.exp(-np.abs(rng.normal(0.0, 3e-4, n))),
            "close": close,
            "volume": np.round(rng.gamma(2.0, 800.0, n)) + 1.0,
            "oi": 0,
            "source": "historical",
        }
    )


def _artifact(version: str, calc: FeatureCalculator, seed: int) -> ModelArtifact:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(1500, len(FEATURES))) * [20, 1e-3, 0.5, 100, 2, 30] + [50, 0, 0, 0, 0, 50]
    params = lgb_params({"learning_rate": 0.1, "num_leaves": 15}, 3)
    boosters = {
        s: fit_booster(
            x,
            (x[:, k] + rng.normal(size=len(x)) * x[:, k].std() > x[:, k].mean()).astype(np.int8),
            params=params,
            num_boost_round=40,
            feature_names=list(FEATURES),
        )
        for s, k in ((1, 0), (-1, 3))
    }
    return ModelArtifact(version, boosters, FEATURES, calc.feature_set)


def _bars(frame: pd.DataFrame) -> list[Bar]:
    return [
        Bar(
            Candle(
                int(r.instrument_token),
                Timeframe.M1,
                r.time.to_pydatetime(),
                r.open,
                r.high,
                r.low,
                r.close,
                int(r.volume),
                None,
                "live",
            )
        )
        for r in frame.itertuples(index=False)
    ]


def _utc(t: object) -> pd.Timestamp:
    return pd.Timestamp(t).tz_convert("UTC")  # type: ignore[arg-type]


def _key(s: Signal) -> tuple[object, ...]:
    return (
        s.instrument_token,
        str(s.timeframe),
        _utc(s.time),
        s.model_version,
        s.direction,
        s.confidence,
        s.size,
    )


def _sorted(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return sorted(rows, key=lambda r: tuple(str(v) for v in r))


@pytest.mark.parametrize(
    ("batched", "resume"),
    [(False, 0), (True, 0), (True, 102), (True, 105)],
    ids=["bar by bar", "one minute at a time", "restarted at 10:57 mid-bucket", "restarted at 11:00"],
)
def test_live_5m_15m_and_ensemble_signals_equal_the_batch_rows_of_the_same_bars(
    batched: bool, resume: int
) -> None:
    calcs = {tf: calculator_for(tf) for tf in (Timeframe.M1, Timeframe.M5, Timeframe.M15)}
    arts = {tf: _artifact(f"f-{tf}", calcs[tf], seed) for seed, tf in enumerate(calcs)}
    preds = {tf: Predictor(a) for tf, a in arts.items()}
    layer = StackedLogistic(
        ("1m", "5m", "15m"), (0.9, -0.2, 0.5, -0.1, 0.3, 0.0), 0.05, (-0.3, 0.8, 0.0, 0.4, -0.1, 0.6), -0.02
    )
    ens_gen = ensemble_generator(
        {"k_pt": 2.0, "k_sl": 1.5}, threshold=0.5, kelly_fraction=0.25, max_position=0.1
    )
    last_day = _days()[-1].date()

    # batch: roll-ups, each timeframe's calculator over its full history, the same scoring code
    expected: list[tuple[object, ...]] = []
    expected_members: list[tuple[object, ...]] = []
    for token in TOKENS:
        full = _candles(token)
        scored: dict[str, pd.DataFrame] = {}
        for tf, calc in calcs.items():
            bars = full if tf is Timeframe.M1 else aggregate_candles(full, tf, NSE)
            feats = calc.compute(
                bars.loc[:, ["time", "open", "high", "low", "close", "volume"]].reset_index(drop=True)
            )
            feats.insert(0, "instrument_token", token)
            scored[str(tf)] = member_scores(feats, preds[tf], tf)
            if tf is not Timeframe.M1:
                rows = signals_frame(feats, preds[tf], GENERATOR, tf, mode="live")
                rows = rows[pd.DatetimeIndex(rows["time"]).tz_convert("Asia/Kolkata").date == last_day]
                expected += [
                    (token, str(tf), _utc(t), r.model_version, r.direction, r.confidence, r.size)
                    for t, r in zip(pd.DatetimeIndex(rows["time"]), rows.itertuples(index=False), strict=True)
                ]
        inputs = member_inputs(scored["5m"].loc[:, ["instrument_token", "time", "available_at"]], scored)
        inputs = inputs[
            inputs["ready"] & (pd.DatetimeIndex(inputs["time"]).tz_convert("Asia/Kolkata").date == last_day)
        ]
        ens = ensemble_signals(inputs, layer, ens_gen, "e-test", Timeframe.M5)
        expected += [
            (token, "5m", _utc(t), "e-test", r.direction, r.confidence, r.size)
            for t, r in zip(pd.DatetimeIndex(ens["time"]), ens.itertuples(index=False), strict=True)
        ]
        for m in ("1m", "5m", "15m"):
            expected_members += [
                (token, _utc(t), m, v, _utc(mt), pl, ps)
                for t, v, mt, pl, ps in zip(
                    pd.DatetimeIndex(inputs["time"]),
                    inputs[f"{m}_version"],
                    pd.DatetimeIndex(inputs[f"{m}_time"]),
                    inputs[f"{m}_p_long"],
                    inputs[f"{m}_p_short"],
                    strict=True,
                )
            ]

    # live: the engine over the last session's 1m bars, opened on the stored history of each timeframe
    out: dict[str, list[Any]] = {}
    scorers = [
        TimeframeScorer(tf, calcs[tf], SignalStep(preds[tf], GENERATOR, calcs[tf].names, timeframe=tf))
        for tf in (Timeframe.M15, Timeframe.M5)  # any order: the engine scores 5m first
    ]
    members = {str(tf): MemberModel(preds[tf], calcs[tf].names) for tf in calcs}
    engine = LiveEngine(
        calcs[Timeframe.M1],
        SignalStep(preds[Timeframe.M1], GENERATOR, calcs[Timeframe.M1].names),
        lambda table, rows: out.setdefault(table, []).extend(rows),
        wall=lambda: 0.0,
        timeframes=scorers,
        ensemble=EnsembleStep("e-test", layer, ens_gen, Timeframe.M5, members),
    )
    session: list[Bar] = []
    restart = pd.Timestamp(f"{last_day} 09:15", tz="Asia/Kolkata") + pd.Timedelta(minutes=resume)
    for token in TOKENS:
        full = _candles(token)
        # stored: everything before the restart (the whole earlier history, or also the day's first bars)
        live = np.asarray(pd.DatetimeIndex(full["time"]) >= restart)
        history = full[~live].reset_index(drop=True)
        engine.open_instrument(token, history.loc[:, ["time", "open", "high", "low", "close", "volume"]])
        for scorer in scorers:
            stored = aggregate_candles(history, scorer.timeframe, NSE)
            last = history["time"].iloc[-1].to_pydatetime()
            engine.open_timeframe(
                scorer.timeframe, token, stored_history(stored, last, scorer.timeframe, NSE)
            )
        session += _bars(full[live])
    session.sort(key=lambda b: (b.time, b.instrument_token))
    if batched:
        for t in sorted({b.time for b in session}):
            engine.process_many([b for b in session if b.time == t], 0.0)
    else:
        for bar in session:
            engine.process(bar, 0.0)

    # a restart leaves the bars before it (and the bucket it falls in, re-formed from the stored
    # minutes) to the stored history: live writes the bars that close after the restart
    def after(bar: object, step: str) -> bool:
        return _utc(bar) + pd.Timedelta(step) > restart

    steps = {"5m": "5min", "15m": "15min"}
    expected = [r for r in expected if after(r[2], steps[str(r[1])])]
    expected_members = [r for r in expected_members if after(r[1], "5min")]
    got = [_key(p.signal) for p in out["signals"] if p.signal.timeframe is not Timeframe.M1]
    assert _sorted(got) == _sorted(expected)
    assert {k[1] for k in got} == {"5m", "15m"} and {k[3] for k in got} == {"f-5m", "f-15m", "e-test"}
    assert len([k for k in got if k[3] == "e-test"]) > 100
    assert {k[4] for k in got if k[3] == "e-test"} >= {1, -1}
    live_members = [
        (
            r.instrument_token,
            _utc(r.time),
            r.member_timeframe,
            r.member_version,
            _utc(r.member_time),
            r.p_long,
            r.p_short,
        )
        for r in out["signal_members"]
        if isinstance(r, MemberRow)
    ]
    assert _sorted(live_members) == _sorted(expected_members)
    if not resume:
        assert len(out["features:5m"]) == 2 * 75 and len(out["features:15m"]) == 2 * 25
    elif resume == 102:  # the 10:55 bucket re-formed from its stored minutes, then the rest of the day
        assert len(out["features:5m"]) == 2 * (75 - 20) and len(out["features:15m"]) == 2 * (25 - 6)
    else:
        # at 11:00 the newest 15m bar (10:45) is stored: the first ensemble bars take it as their 15m
        # member from the stored history (seeded at start-up), as batch does
        seeded = [r for r in live_members if r[2] == "15m" and _utc(r[4]) + pd.Timedelta("15min") <= restart]
        assert len(seeded) >= 2  # up to the 11:00, 11:05 and 11:10 bars of both (minutes are missing)


def test_a_scorer_opens_on_the_stored_bars_before_the_bucket_the_1m_history_leaves_open() -> None:
    day = pd.Timestamp("2026-01-05 09:15", tz="Asia/Kolkata")
    stored = pd.DataFrame({"time": [day + pd.Timedelta(minutes=m) for m in (0, 5, 10, 15)]})

    def kept(last_minute: int, tf: Timeframe = Timeframe.M5) -> int:
        last = (day + pd.Timedelta(minutes=last_minute)).to_pydatetime()
        return len(stored_history(stored, last, tf, NSE))

    assert kept(9) == 2  # 09:24 completes the 09:20 bucket: it is stored and kept
    assert kept(12) == 2  # 09:27 leaves the 09:25 bucket open: the roll-up hands it over later
    assert kept(15) == 3
    assert kept(14, Timeframe.M15) == 1 and kept(13, Timeframe.M15) == 0
    assert stored_history(stored, None, Timeframe.M5, NSE).empty
    close = pd.Timestamp("2026-01-05 15:15", tz="Asia/Kolkata")
    last_hour = pd.DataFrame({"time": [close - pd.Timedelta(hours=1), close]})
    # the day's last 60m bar is partial (15:15-15:30): its last minute completes it
    assert (
        len(stored_history(last_hour, (close + pd.Timedelta(minutes=14)).to_pydatetime(), Timeframe.M60, NSE))
        == 2
    )


def test_a_rewound_instrument_replays_its_5m_15m_and_ensemble_signals_to_the_same_rows() -> None:
    calcs = {tf: calculator_for(tf) for tf in (Timeframe.M1, Timeframe.M5, Timeframe.M15)}
    preds = {tf: Predictor(_artifact(f"f-{tf}", calcs[tf], seed)) for seed, tf in enumerate(calcs)}
    layer = StackedLogistic(("1m", "5m", "15m"), (0.5,) * 6, 0.0, (-0.5,) * 6, 0.0)
    gen = ensemble_generator({}, threshold=0.5, kelly_fraction=0.25, max_position=0.1)
    out: dict[str, list[Any]] = {}
    scorers = [
        TimeframeScorer(tf, calcs[tf], SignalStep(preds[tf], GENERATOR, calcs[tf].names, timeframe=tf))
        for tf in (Timeframe.M5, Timeframe.M15)
    ]
    engine = LiveEngine(
        calcs[Timeframe.M1],
        SignalStep(preds[Timeframe.M1], GENERATOR, calcs[Timeframe.M1].names),
        lambda table, rows: out.setdefault(table, []).extend(rows),
        wall=lambda: 0.0,
        timeframes=scorers,
        ensemble=EnsembleStep(
            "e-rw",
            layer,
            gen,
            Timeframe.M5,
            {str(tf): MemberModel(preds[tf], calcs[tf].names) for tf in calcs},
        ),
    )
    full = _candles(TOKENS[0])
    live_day = pd.DatetimeIndex(full["time"]).tz_convert("Asia/Kolkata").date == _days()[-1].date()
    history = full[~live_day].reset_index(drop=True)
    engine.open_instrument(TOKENS[0], history)
    last = history["time"].iloc[-1].to_pydatetime()
    for scorer in scorers:
        stored = aggregate_candles(history, scorer.timeframe, NSE)
        engine.open_timeframe(
            scorer.timeframe, TOKENS[0], stored_history(stored, last, scorer.timeframe, NSE)
        )
    bars = _bars(full[live_day])[:120]
    for bar in bars:
        engine.process(bar, 0.0)
    first = {_key(p.signal) for p in out["signals"] if p.signal.timeframe is not Timeframe.M1}
    out.clear()
    # a correction from the 63rd bar of the day (inside a 5m and a 15m bucket): replayed
    assert engine.rewind(TOKENS[0], bars[62:]) == len(bars) - 62
    again = {_key(p.signal) for p in out["signals"] if p.signal.timeframe is not Timeframe.M1}
    assert again and again <= first
    since = _utc(bars[62].time)
    # every bar whose bucket holds a corrected minute is scored again, and only those
    assert again == {k for k in first if _utc(k[2]) + pd.Timedelta(str(k[1]).replace("m", "min")) > since}


def test_an_instrument_without_stored_bars_of_a_timeframe_starts_its_stream_with_the_first_bar() -> None:
    calc = calculator_for(Timeframe.M5)
    scorer = TimeframeScorer(Timeframe.M5, calc)
    five = aggregate_candles(_candles(TOKENS[0]), Timeframe.M5, NSE).iloc[:40].reset_index(drop=True)
    assert scorer.open_instrument(TOKENS[0], five.iloc[:0]) is None
    bars = [
        Bar(
            Candle(
                TOKENS[0], Timeframe.M5, r.time.to_pydatetime(), r.open, r.high, r.low, r.close, int(r.volume)
            )
        )
        for r in five.itertuples(index=False)
    ]
    rows = [scorer.fold([b])[0][1] for b in bars]
    batch = calc.compute(five.loc[:, ["time", "open", "high", "low", "close", "volume"]])
    assert np.array_equal(np.stack(rows), batch.iloc[:, 1:].to_numpy(dtype=np.float64), equal_nan=True)
    assert scorer.fold([bars[-1]]) == []  # a bar already folded is ignored
    assert scorer.signals([(bars[0], rows[0])]) == [None]  # no model: features only


def test_a_member_with_a_regime_layer_scores_its_bars_as_the_batch_member_scores_do() -> None:
    """Fold models carry a regime layer by default: the live member extends its rows with the layer's
    recursion (restarted each session) as batch does over the whole history, bit for bit."""
    from tickwise.core.regime import RegimeSpec, fit_regime_layer

    tf = Timeframe.M5
    calc = calculator_for(tf)
    token = TOKENS[0]
    bars = aggregate_candles(_candles(token), tf, NSE)
    feats = calc.compute(
        bars.loc[:, ["time", "open", "high", "low", "close", "volume"]].reset_index(drop=True)
    )
    feats.insert(0, "instrument_token", token)
    layer = fit_regime_layer(feats, RegimeSpec(n_states=2, n_iter=5))
    names = (*FEATURES, *layer.columns)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(800, len(names)))
    params = lgb_params({"learning_rate": 0.1, "num_leaves": 7}, 3)
    boosters = {
        s: fit_booster(
            x, (x[:, k] > 0).astype(np.int8), params=params, num_boost_round=20, feature_names=list(names)
        )
        for s, k in ((1, len(FEATURES)), (-1, len(FEATURES) + 1))
    }
    predictor = Predictor(
        ModelArtifact("f-regime", boosters, names, calc.feature_set, regime=layer.to_dict())
    )
    want = member_scores(layer.with_columns(feats), predictor, tf)

    member = MemberModel(predictor, calc.names)
    rows = feats[list(calc.names)].to_numpy(dtype=np.float64)
    times = [t.to_pydatetime() for t in pd.DatetimeIndex(feats["time"])]
    got = [s for i in range(len(times)) if (s := member.scores([token], [times[i]], rows[i : i + 1], tf)[0])]
    assert len(got) == len(want) > 0
    assert [s.p_long for s in got] == want["p_long"].tolist()
    assert [s.p_short for s in got] == want["p_short"].tolist()
