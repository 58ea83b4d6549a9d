"""Hypothesis properties of the barrier kernel (labeling.md §7): mirror symmetry, t1 bounds, ambiguity."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwise.core.labels import LabelSpec, label_events, triple_barrier
from tickwise.core.labels.spec import BOTH_SL_FIRST

TICK = 0.25  # every price, ATR and barrier offset below is a multiple of 1/8: exactly representable


@st.composite
def barrier_fixtures(draw: st.DrawFn) -> dict:
    horizon = draw(st.integers(1, 10))
    n = draw(st.integers(horizon + 1, horizon + 15))
    ticks = st.integers(360, 440)  # 90.00 … 110.00
    o = np.array(draw(st.lists(ticks, min_size=n, max_size=n)), dtype=np.float64) * TICK
    c = np.array(draw(st.lists(ticks, min_size=n, max_size=n)), dtype=np.float64) * TICK
    up = np.array(draw(st.lists(st.integers(0, 12), min_size=n, max_size=n)), dtype=np.float64) * TICK
    down = np.array(draw(st.lists(st.integers(0, 12), min_size=n, max_size=n)), dtype=np.float64) * TICK
    atr = np.array(draw(st.lists(st.integers(1, 12), min_size=n, max_size=n)), dtype=np.float64) * TICK
    return {
        "open": o,
        "high": np.maximum(o, c) + up,
        "low": np.minimum(o, c) - down,
        "close": c,
        "atr": atr,
        "t0": draw(st.integers(0, n - 1 - horizon)),
        "horizon": horizon,
        "k_pt": draw(st.sampled_from([1.0, 1.5, 2.0, 2.5])),
        "k_sl": draw(st.sampled_from([0.5, 1.0, 1.5, 2.0])),
        "zero": draw(st.booleans()),
    }


def run(f: dict, side: int, o, h, lo, c):
    return triple_barrier(
        o, h, lo, c, f["atr"], [f["t0"]], side, f["k_pt"], f["k_sl"], f["horizon"], f["zero"]
    )


@settings(max_examples=150, deadline=None)
@given(barrier_fixtures(), st.sampled_from([1, -1]))
def test_mirroring_prices_around_p0_and_flipping_the_side_gives_the_same_label(f: dict, side: int) -> None:
    p0 = f["close"][f["t0"]]
    mirror = lambda x: 2.0 * p0 - x  # noqa: E731
    a = run(f, side, f["open"], f["high"], f["low"], f["close"])
    b = run(f, -side, mirror(f["open"]), mirror(f["low"]), mirror(f["high"]), mirror(f["close"]))
    assert a.label[0] == b.label[0]
    assert a.t1_idx[0] == b.t1_idx[0]
    assert a.barrier_code[0] == b.barrier_code[0]
    assert a.ambiguous[0] == b.ambiguous[0]
    assert b.exit_price[0] == mirror(a.exit_price[0])
    assert abs(a.ret[0] - b.ret[0]) <= 1e-12


@settings(max_examples=150, deadline=None)
@given(barrier_fixtures(), st.sampled_from([1, -1]))
def test_first_touch_lies_after_t0_and_within_the_horizon(f: dict, side: int) -> None:
    res = run(f, side, f["open"], f["high"], f["low"], f["close"])
    assert f["t0"] < res.t1_idx[0] <= f["t0"] + f["horizon"]
    assert res.ret[0] == side * (res.exit_price[0] / f["close"][f["t0"]] - 1.0) or res.ret[0] == 0.0


@settings(max_examples=150, deadline=None)
@given(barrier_fixtures(), st.sampled_from([1, -1]))
def test_an_ambiguous_bar_is_always_a_stop_loss(f: dict, side: int) -> None:
    res = run(f, side, f["open"], f["high"], f["low"], f["close"])
    assert res.ambiguous[0] == (res.barrier_code[0] == BOTH_SL_FIRST)
    if res.ambiguous[0]:
        assert res.label[0] == -1


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([1, -1]))
def test_label_events_times_satisfy_t0_before_t1_before_t1_max(seed: int, side: int) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    close = 100.0 + np.cumsum(rng.normal(0.0, 0.1, n))
    open_ = np.concatenate(([close[0]], close[:-1]))
    candles = pd.DataFrame(
        {
            "time": pd.date_range("2025-01-06 09:15", periods=n, freq="1min", tz="Asia/Kolkata"),
            "open": open_,
            "high": np.maximum(open_, close) + 0.03,
            "low": np.minimum(open_, close) - 0.03,
            "close": close,
        }
    )
    frame, _ = label_events(candles, LabelSpec(), side, "1m")
    assert len(frame) > 0
    assert (frame["time"] < frame["t1"]).all()
    assert (frame["t1"] <= frame["t1_max"]).all()
    assert frame.loc[frame["ambiguous"], "label"].eq(-1).all()
    assert frame["t1_max"].is_monotonic_increasing
