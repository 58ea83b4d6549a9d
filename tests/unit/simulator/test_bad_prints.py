"""Simulator bad prints: deterministic by seed, off by default, scriptable, with ground truth."""

from __future__ import annotations

from datetime import date, datetime, time

import numpy as np
import pytest

from tickwise.adapters.kite.simulator.faults import FaultController, FaultScriptError, parse_faults
from tickwise.adapters.kite.simulator.market import Market
from tickwise.adapters.kite.simulator.process import config_from_json, config_to_json
from tickwise.adapters.kite.simulator.state import SimState, SimulatorConfig
from tickwise.adapters.kite.simulator.universe import Universe
from tickwise.domain.calendar import NSE
from tickwise.domain.time import IST

DAY = date(2026, 10, 6)


def _universe() -> Universe:
    return Universe(3, NSE, today=date(2026, 11, 30))


def test_bad_prints_are_off_by_default_and_a_rate_only_changes_the_listed_minutes() -> None:
    universe = _universe()
    token = universe.equities[0].instrument.instrument_token
    clean = Market(universe, seed=5).minute_candles(token, DAY)
    market = Market(universe, seed=5, bad_prints=0.02)
    dirty = market.minute_candles(token, DAY)
    prints = market.bad_prints(token, DAY)
    assert Market(universe, seed=5).bad_prints(token, DAY) == []
    assert prints == Market(universe, seed=5, bad_prints=0.02).bad_prints(
        token, DAY
    )  # same seed, same prints
    assert {bp.kind for bp in prints} == {"spike", "zero_volume", "stale"}
    changed = np.flatnonzero(
        (clean.high != dirty.high)
        | (clean.low != dirty.low)
        | (clean.volume != dirty.volume)
        | (clean.close != dirty.close)
    )
    assert set(changed.tolist()) <= {bp.minute for bp in prints}
    for bp in prints:
        m = bp.minute
        if bp.kind == "zero_volume":
            assert dirty.volume[m] == 0 and dirty.high[m] == dirty.low[m] == dirty.close[m - 1]
        elif bp.kind == "stale":
            assert (dirty.open[m], dirty.close[m], dirty.volume[m]) == (
                dirty.open[m - 1],
                dirty.close[m - 1],
                dirty.volume[m - 1],
            )
        else:
            body_top, body_bottom = max(dirty.open[m], dirty.close[m]), min(dirty.open[m], dirty.close[m])
            assert dirty.high[m] >= body_top * 1.019 or dirty.low[m] <= body_bottom * 0.981


def test_the_index_never_gets_bad_prints() -> None:
    universe = _universe()
    index = next(m for m in universe.members if m.instrument.segment == "INDICES")
    assert Market(universe, seed=5, bad_prints=0.2).bad_prints(index.instrument.instrument_token, DAY) == []


def test_a_fault_script_puts_a_bad_print_at_a_minute_and_survives_the_child_process_config() -> None:
    start = datetime.combine(DAY, time(9, 0), tzinfo=IST)
    script = "10:05 badprint stale; 10:20 stall 8s; 2026-10-06T11:30 badprint spike"
    config = SimulatorConfig(start=start, faults=parse_faults(script), n_instruments=3)
    config = config_from_json(config_to_json(config))
    state = SimState(config)
    token = state.universe.equities[0].instrument.instrument_token
    prints = state.market.bad_prints(token, DAY)
    assert [(bp.minute, bp.kind) for bp in prints] == [(50, "stale"), (135, "spike")]
    candles = state.market.minute_candles(token, DAY)
    assert candles.close[50] == candles.close[49] and candles.volume[50] == candles.volume[49]
    controller = FaultController.from_script(script, start)
    controller.due(datetime.combine(DAY, time(12, 0), tzinfo=IST))
    assert [f.action for f in controller.ws_queue] == ["stall"]  # bad prints never reach the WebSocket


@pytest.mark.parametrize("entry", ["10:05 badprint fatfinger", "10:05 badprint", "10:05 badprint spike 2"])
def test_a_bad_badprint_entry_is_a_clear_error(entry: str) -> None:
    with pytest.raises(FaultScriptError, match=r"badprint|bad print"):
        parse_faults(entry)


def test_an_out_of_range_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="bad_prints"):
        Market(_universe(), bad_prints=0.5)
