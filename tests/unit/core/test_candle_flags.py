"""Causal candle checks (core.candle_flags) on simulator candles with injected bad prints."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import IsolationForest

from tickwise.adapters.kite.simulator.market import Market
from tickwise.adapters.kite.simulator.universe import Universe
from tickwise.core import candle_flags
from tickwise.core.candle_flags import (
    CHECKS,
    CandleCheckConfig,
    exclude_flagged,
    exclude_labels,
    flag_candles,
    with_actions,
)
from tickwise.domain.calendar import NSE
from tickwise.domain.time import IST

FAR_FUTURE = datetime(2030, 1, 1, tzinfo=IST)


def _market(rate: float, seed: int = 11) -> tuple[Market, list[int]]:
    universe = Universe(5, NSE, today=date(2026, 11, 30))
    return Market(universe, seed=seed, bad_prints=rate), [
        m.instrument.instrument_token for m in universe.equities
    ]


def _frame(market: Market, token: int, days: list[date]) -> pd.DataFrame:
    start = datetime.combine(days[0], time(0, 0), tzinfo=IST)
    end = datetime.combine(days[-1], time(23, 0), tzinfo=IST)
    rows = market.candles(token, 1, start, end, FAR_FUTURE)
    frame = pd.DataFrame(rows, columns=["time", "open", "high", "low", "close", "volume"])
    frame["time"] = pd.to_datetime(frame["time"]).dt.tz_convert("UTC")
    frame["instrument_token"] = token
    return frame


def _truth(market: Market, token: int, days: list[date]) -> dict[pd.Timestamp, str]:
    out = {}
    for day in days:
        open_at = datetime.combine(day, time(9, 15), tzinfo=IST)
        for bp in market.bad_prints(token, day):
            out[pd.Timestamp(open_at + timedelta(minutes=bp.minute)).tz_convert("UTC")] = bp.kind
    return out


DAYS = NSE.trading_days(date(2026, 10, 5), date(2026, 10, 30))


def test_appending_future_bars_never_changes_a_past_flag() -> None:
    market, tokens = _market(0.004)
    full = _frame(market, tokens[0], DAYS)
    cut = full["time"].iloc[len(full) * 2 // 3]
    past = flag_candles(full[full["time"] < cut])
    everything = flag_candles(full)
    pd.testing.assert_frame_equal(past, everything[everything["time"] < cut].reset_index(drop=True))
    assert len(past) > 0  # the comparison covers real flags, not two empty frames


def test_a_trailing_buffer_flags_the_last_bar_exactly_as_the_batch_run() -> None:
    market, tokens = _market(0.01)
    config = CandleCheckConfig(anomaly=False)
    frame = _frame(market, tokens[1], DAYS[:4])
    batch = flag_candles(frame, config)
    flagged_times = set(batch["time"])
    checked = 0
    for i in range(config.history_bars + 5, len(frame), 7):
        t = frame["time"].iloc[i]
        window = frame.iloc[i - config.history_bars : i + 1]
        live = flag_candles(window, config)
        live_last = live[live["time"] == t]
        expected = batch[batch["time"] == t]
        assert list(live_last.itertuples(index=False)) == list(expected.itertuples(index=False))
        checked += int(t in flagged_times)
    assert checked > 0


def test_the_anomaly_model_of_a_week_is_the_same_from_a_buffer_that_starts_later() -> None:
    market, tokens = _market(0.004)
    config = CandleCheckConfig()
    frame = _frame(market, tokens[2], DAYS)
    batch = flag_candles(frame, config)
    # A live buffer holds only the fit sessions before this week and the week so far.
    week_start = next(d for d in DAYS[config.anomaly_fit_sessions + 1 :] if d.weekday() == 0)
    first_fit = DAYS[DAYS.index(week_start) - config.anomaly_fit_sessions]
    local_days = frame["time"].dt.tz_convert(IST).dt.date
    buffer = frame[(local_days >= first_fit) & (local_days <= week_start)]
    live = flag_candles(buffer, config)
    on_day = (live["time"].dt.tz_convert(IST).dt.date == week_start) & (live["check"] == "anomaly")
    batch_day = (batch["time"].dt.tz_convert(IST).dt.date == week_start) & (batch["check"] == "anomaly")
    pd.testing.assert_frame_equal(
        live[on_day].reset_index(drop=True), batch[batch_day].reset_index(drop=True)
    )


@pytest.mark.parametrize(
    ("kind", "check"), [("spike", "wick_iqr"), ("zero_volume", "zero_volume"), ("stale", "stale")]
)
def test_each_kind_of_injected_bad_print_is_flagged_by_its_check(kind: str, check: str) -> None:
    market, tokens = _market(0.01)
    days = DAYS[:6]
    frame = _frame(market, tokens[0], days)
    flags = flag_candles(frame)
    truth = [
        t for t, k in _truth(market, tokens[0], days).items() if k == kind and t >= frame["time"].iloc[60]
    ]
    assert truth, f"the seed injects no {kind}"
    found = set(flags.loc[flags["check"] == check, "time"])
    assert sum(t in found for t in truth) >= 0.8 * len(truth)


def test_precision_and_recall_on_injected_bad_prints_meet_the_documented_floor() -> None:
    """The figures in docs/data-quality.md come from this measurement (per bar, any check)."""
    tp = fp = fn = 0
    for seed in (11, 12):
        market, tokens = _market(0.004, seed=seed)
        for token in tokens[:2]:
            frame = _frame(market, token, DAYS)
            truth = set(_truth(market, token, DAYS))
            flagged = set(flag_candles(frame)["time"])
            tp += len(flagged & truth)
            fp += len(flagged - truth)
            fn += len(truth - flagged)
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    assert tp + fn >= 100  # enough injected prints for the ratio to mean something
    assert precision >= 0.95, (precision, tp, fp)
    assert recall >= 0.85, (recall, tp, fn)


def test_clean_simulated_candles_are_rarely_flagged() -> None:
    market, tokens = _market(0.0)
    frame = _frame(market, tokens[0], DAYS)
    flags = flag_candles(frame)
    assert len(flags["time"].unique()) <= 0.001 * len(frame)


def test_bars_outside_the_session_and_broken_ohlc_are_flagged() -> None:
    market, tokens = _market(0.0)
    frame = _frame(market, tokens[0], DAYS[:1]).reset_index(drop=True)
    frame.loc[10, "high"] = frame.loc[10, "low"] - 1.0
    late = frame.iloc[[-1]].assign(time=frame["time"].iloc[-1] + pd.Timedelta(minutes=30))
    flags = flag_candles(pd.concat([frame, late], ignore_index=True))
    assert frame["time"].iloc[10] in set(flags.loc[flags["check"] == "ohlc_inconsistent", "time"])
    assert late["time"].iloc[0] in set(flags.loc[flags["check"] == "market_hours", "time"])
    assert set(flags["check"]) <= set(CHECKS)
    assert np.isfinite(flags["score"]).all()


def test_the_policy_marks_excluded_checks_and_the_filters_drop_their_bars() -> None:
    t = pd.date_range("2026-10-05 03:45", periods=5, freq="1min", tz="UTC")
    flags = with_actions(
        pd.DataFrame(
            {
                "instrument_token": 1,
                "timeframe": "1m",
                "time": [t[1], t[3]],
                "check": ["stale", "volume_spike"],
                "score": 1.0,
            }
        ),
        CandleCheckConfig(),
    )
    assert flags["action"].tolist() == ["excluded", "kept"]
    bars = pd.DataFrame({"time": t, "x": range(5)})
    assert exclude_flagged(bars, flags)["x"].tolist() == [0, 2, 3, 4]
    labels = pd.DataFrame({"time": [t[0], t[2], t[3]], "t1": [t[2], t[4], t[4]]})
    # t[0]'s barrier window [t0, t2] holds the excluded t1; the others do not.
    assert exclude_labels(labels, flags)["time"].tolist() == [t[2], t[3]]


def test_an_unknown_check_in_the_exclusion_policy_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown candle checks"):
        CandleCheckConfig(exclude=frozenset({"spikes"}))


def test_the_row_median_and_percentiles_equal_numpys_nan_aware_functions_bit_for_bit() -> None:
    from tickwise.core.candle_flags import _row_median, iqr_past

    rng = np.random.default_rng(3)
    rows = rng.standard_normal((4000, 120)) * rng.uniform(1e-5, 10.0, (4000, 1))
    rows[::2] = np.round(rows[::2], 2)  # ties
    rows[rng.random(rows.shape) < 0.2] = np.nan
    rows[:50, 0], rows[50:100, 1] = np.inf, -np.inf
    rows = rows[(~np.isnan(rows)).sum(axis=1) >= 2]
    assert np.array_equal(_row_median(rows), np.nanmedian(rows, axis=1), equal_nan=True)
    values = rng.standard_normal(len(rows))
    full = rows.copy()
    full[np.isnan(full)] = 0.5
    for past in (rows, full):  # rows with NaN (numpy's nan path) and without (the vectorized path)
        q1, q3 = np.nanpercentile(past, [25, 75], axis=1)
        want = (values - q3) / np.maximum(q3 - q1, 2e-4)
        got = iqr_past(values, past, 2, 2e-4)
        assert np.array_equal(got, want, equal_nan=True)


def _old_anomaly_scores(x: np.ndarray, days: np.ndarray, config: CandleCheckConfig) -> np.ndarray:
    """The anomaly scores as computed before issue 14's fourth session (the oracle): each ISO week's
    model found by scanning sessions, its fit rows by ``np.isin`` on session dates, fitted by
    scikit-learn's ``IsolationForest.fit`` and its bars scored by ``score_samples``."""

    def iso_week(day: date) -> tuple[int, int]:
        return day.isocalendar().year, day.isocalendar().week

    scores = np.full(len(x), np.nan)
    session_days = list(dict.fromkeys(days.tolist()))
    seen: set[tuple[int, int]] = set()
    for day in session_days:
        week = iso_week(day)
        if week in seen:
            continue
        seen.add(week)
        first = next(k for k, d in enumerate(session_days) if iso_week(d) == week)
        if first < config.anomaly_fit_sessions:
            continue
        train = np.isin(
            days, np.array(session_days[first - config.anomaly_fit_sessions : first], dtype=object)
        )
        if train.sum() < config.anomaly_min_bars:
            continue
        model = IsolationForest(
            n_estimators=config.anomaly_trees,
            max_samples=min(256, int(train.sum())),
            random_state=(config.seed * 1_000_003 + session_days[first].toordinal()) % (2**31),
        ).fit(x[train])
        mask = np.array([iso_week(d) == week for d in days], dtype=bool)
        scores[mask] = -model.score_samples(x[mask])
    return scores


def test_the_anomaly_scores_equal_per_week_scikit_learn_scoring_bit_for_bit() -> None:
    market, tokens = _market(0.004)
    config = CandleCheckConfig(anomaly_min_bars=300)
    days = NSE.trading_days(date(2026, 9, 1), date(2026, 10, 30))
    x, bar_days = candle_flags.anomaly_inputs(_frame(market, tokens[3], days), config)
    got = candle_flags._anomaly_scores(x, bar_days, config)
    expected = _old_anomaly_scores(x, bar_days, config)
    assert np.isfinite(got).sum() > 0.7 * len(got)  # most weeks have a model: the comparison covers them
    assert np.array_equal(got, expected, equal_nan=True)
    # fit_week_model (the bench's entry) still picks the same week's rows and seed.
    week_day = days[20]
    model = candle_flags.fit_week_model(x, bar_days, week_day, config)
    assert model is not None
    in_week = np.array([d.isocalendar()[:2] == week_day.isocalendar()[:2] for d in bar_days])
    assert np.array_equal(-model.score_samples(x[in_week]), expected[in_week])
    assert candle_flags.fit_week_model(x, bar_days, date(2027, 1, 4), config) is None
