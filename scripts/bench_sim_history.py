"""CPU seconds of the simulator's REST history, old build (one step per candle) against the column build.

Serves the embedded defaults' backfill (the simulator's 10 equities and its index, 60 sessions of 1m
candles, the requests ``tickwise historical`` makes) through both builds in one process, asserts the
JSON bodies equal, then times each build ``--repeat`` times alternating (``time.process_time``). The
day paths are built once first (their cost is the market model's, shared by both builds) and reported
apart. Run: ``PYTHONPATH=src .venv/bin/python scripts/bench_sim_history.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit" / "simulator"))

from test_history_columns import old_candles, old_rows

from tickwise.adapters.kite.simulator.market import Market
from tickwise.adapters.kite.simulator.rest_app import _candle_rows
from tickwise.adapters.kite.simulator.universe import Universe
from tickwise.domain.calendar import NSE
from tickwise.domain.time import IST


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    today = date(2026, 12, 4)
    market = Market(Universe(10, today=today), seed=42)
    days = NSE.trading_days(today - timedelta(days=3 * args.sessions), today)[-args.sessions :]
    start = datetime.combine(days[0], datetime.min.time(), tzinfo=IST)
    end = datetime.combine(days[-1], datetime.max.time().replace(microsecond=0), tzinfo=IST)
    now = end + timedelta(hours=1)
    tokens = [t for t in market.universe.tokens if market.universe.future(t) is None]  # equities, index
    began = time.process_time()
    for token in tokens:
        for day in days:
            market.minute_candles(token, day)
    paths = time.process_time() - began

    def old() -> list[str]:
        return [
            json.dumps({"candles": old_rows(old_candles(market, t, 1, start, end, now), False)})
            for t in tokens
        ]

    def new() -> list[str]:
        return [
            json.dumps({"candles": _candle_rows(market.candle_days(t, 1, start, end, now), False)})
            for t in tokens
        ]

    assert old() == new(), "the two builds differ"
    times: dict[str, list[float]] = {"old": [], "new": []}
    for _ in range(args.repeat):
        for name, build in (("old", old), ("new", new)):
            began = time.process_time()
            build()
            times[name].append(time.process_time() - began)
    candles = sum(len(json.loads(body)["candles"]) for body in new())
    print(
        json.dumps(
            {
                "instruments": len(tokens),
                "sessions": len(days),
                "candles": candles,
                "day_paths_cpu_s": round(paths, 3),
                "old_cpu_s": [round(t, 3) for t in times["old"]],
                "new_cpu_s": [round(t, 3) for t in times["new"]],
            }
        )
    )


if __name__ == "__main__":
    main()
