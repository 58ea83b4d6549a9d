"""The engine's columns gate (``columns_gate.py``) is a cache of its state: kept between minutes, it always
holds what a gate built afresh from the engine's instruments holds, and it admits a minute exactly when the
per-instrument checks would: no token twice, every instrument open with its banked stream, every bar newer
than its instrument's newest. Minutes through it give the rows the object path gives (compared exactly)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from live_models import frame_bars, small_step
from test_live_engine_columns import _row

from tickwise.bench.features import synthetic_candles
from tickwise.core.candles import ClosedBars
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.domain.time import IST
from tickwise.pipelines.live.columns_gate import NO_BAR, ColumnsGate, epoch_us
from tickwise.pipelines.live.engine import LiveEngine, SignalStep

HIST, LIVE = 600, 10
TOKENS = (301, 302, 303, 304, 305)
NEW = 399  # an instrument opened by a minute's bar, mid-run


@pytest.fixture(scope="module")
def calc() -> FeatureCalculator:
    return FeatureCalculator()


@pytest.fixture(scope="module")
def step(calc: FeatureCalculator) -> SignalStep:
    return small_step(calc, seed=13, rounds=30, version="m-gate")


@pytest.fixture(scope="module")
def frames() -> dict[int, pd.DataFrame]:
    return {t: synthetic_candles(HIST + LIVE, seed=t) for t in (*TOKENS, NEW)}


def _engine(
    calc: FeatureCalculator, step: SignalStep, frames: dict[int, pd.DataFrame], out: list[Any]
) -> LiveEngine:
    engine = LiveEngine(
        calc, step, lambda table, rows: out.extend((table, r) for r in rows), wall=lambda: 0.0
    )
    for t in TOKENS:
        engine.open_instrument(t, frames[t].iloc[:HIST])
    return engine


def _assert_gate_is_current(engine: LiveEngine) -> None:
    """The kept gate holds what one built afresh from the engine's instruments holds."""
    fresh: ColumnsGate[Any] = ColumnsGate()
    for token, state in engine._states.items():
        banked = state.stream is not None and engine.bank.stream(token) is state.stream
        fresh.put(token, state, engine.bank.row(token), banked, state.last_time)
    kept = engine._gate
    assert [a.tobytes() for a in kept.arrays()] == [a.tobytes() for a in fresh.arrays()]
    assert all(a is b for a, b in zip(kept.states, fresh.states, strict=True))


def test_the_kept_gate_equals_a_fresh_one_and_its_minutes_equal_the_object_paths_rows(
    calc: FeatureCalculator,
    step: SignalStep,
    frames: dict[int, pd.DataFrame],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bars = {t: frame_bars(t, f.iloc[HIST:]) for t, f in frames.items()}
    objects: list[Any] = []
    columns: list[Any] = []
    e1, e2 = _engine(calc, step, frames, objects), _engine(calc, step, frames, columns)
    calls: list[bool] = []
    admit = ColumnsGate.admit

    def counted(self: ColumnsGate[Any], tokens: Any, instant: datetime) -> Any:
        got = admit(self, tokens, instant)
        calls.append(got is not None)
        return got

    monkeypatch.setattr(ColumnsGate, "admit", counted)

    def admitted(_: LiveEngine) -> int:
        return int(bool(calls) and calls.pop())

    gated = 0
    for m in range(LIVE):
        minute = [bars[t][m] for t in TOKENS]
        if m == 3:  # a bar that is not newer than its instrument's newest: a duplicate
            minute[1] = bars[TOKENS[1]][2]
        if m >= 4:  # an instrument the engine has not opened, then one it opened mid-run
            minute.append(bars[NEW][m])
        if m == 6:  # a correction: one instrument rewound and replayed before the minute
            for e in (e1, e2):
                e.rewind(TOKENS[2], bars[TOKENS[2]][4:6], 0.0)
        if m == 7:  # a minute of bar objects through the per-bar path between columns minutes
            got1, got2 = (
                e1.process_many(minute, 0.0, defer=True),
                e2.process_many(list(minute), 0.0, defer=True),
            )
        else:
            got1 = e1.process_many(minute, 0.0, defer=True)
            got2 = e2.process_many(ClosedBars.of(minute), 0.0, defer=True)
        assert got1 == got2, m
        e1.settle()
        e2.settle()
        _assert_gate_is_current(e2)
        gated += admitted(e2)
    assert gated >= LIVE - 3  # the gate served the usual minutes
    assert [_row(*r) for r in objects] == [_row(*r) for r in columns]
    assert (e1.bars, e1.signals, e1.errors, e1.rewinds) == (e2.bars, e2.signals, e2.errors, e2.rewinds)
    for t in (*TOKENS, NEW):
        assert e1.last_time(t) == e2.last_time(t)
        assert e1.session_bars(t) == e2.session_bars(t)


@dataclass
class _State:
    stream: object | None
    last_time: datetime | None


T0 = datetime(2025, 1, 6, 9, 20, tzinfo=IST)


def _gate() -> ColumnsGate[_State]:
    gate: ColumnsGate[_State] = ColumnsGate(capacity=2)  # grown as instruments are put
    gate.put(30, _State(object(), T0 - timedelta(minutes=5)), 1, True, T0 - timedelta(minutes=5))
    gate.put(10, _State(object(), T0 - timedelta(minutes=1)), 2, True, T0 - timedelta(minutes=1))
    gate.put(20, _State(object(), None), 0, True, None)
    gate.put(40, _State(object(), T0 - timedelta(minutes=1)), 3, False, T0)  # its row holds another stream
    gate.put(50, _State(None, None), None, True, None)  # no bank row
    return gate


def test_the_gate_admits_a_minute_of_open_banked_instruments_each_bar_newer_with_their_bank_rows() -> None:
    gate = _gate()
    admitted = gate.admit([30, 10, 20], T0)
    assert admitted is not None
    assert admitted.rows.tolist() == [1, 2, 0]
    assert [gate.states.index(s) for s in gate.held(admitted)] == [0, 1, 2]
    assert gate.arrays()[2].tolist()[2] == NO_BAR


def test_the_gate_refuses_a_token_twice_an_unknown_or_unbanked_instrument_and_a_duplicate_bar() -> None:
    gate = _gate()
    assert gate.admit([10, 10], T0) is None
    assert gate.admit([10, 50], T0) is None
    assert gate.admit([99], T0) is None  # past every token
    assert gate.admit([10, 40], T0) is None
    assert gate.admit([10, 30], T0 - timedelta(minutes=1)) is None  # 10's newest opened then
    assert gate.admit([30], T0 - timedelta(minutes=1)) is not None
    assert gate.admit([], T0) is None


def test_an_instrument_put_again_replaces_its_slot_and_a_new_one_is_found_after_it_sorts() -> None:
    gate = _gate()
    gate.put(40, _State(object(), None), 3, True, None)  # its stream re-opened and banked
    assert gate.admit([10, 40], T0) is not None
    gate.put(5, _State(object(), None), 4, True, None)
    admitted = gate.admit([5, 10], T0)
    assert admitted is not None and admitted.rows.tolist() == [4, 2]
    assert len(gate) == 6


def test_recorded_bars_become_the_newest_a_later_minute_is_checked_against() -> None:
    gate = _gate()
    admitted = gate.admit([10, 20], T0)
    assert admitted is not None
    gate.record(admitted, T0)
    assert gate.admit([20], T0) is None
    gate.record_one(30, T0 + timedelta(minutes=1))
    gate.record_one(77, T0)  # not in the gate: nothing to record
    assert gate.admit([30], T0 + timedelta(minutes=1)) is None
    assert gate.admit([10, 20, 30], T0 + timedelta(minutes=2)) is not None
    assert epoch_us(T0) == np.int64(T0.timestamp() * 1_000_000)
