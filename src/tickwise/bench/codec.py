"""Codec benchmark: full-mode Kite frames decoded per second on one core.

Two workloads, both 100-packet frames of 184-byte full packets:

* ``market``: consecutive snapshots of the simulator's market (10 liquid equities), so prices and
  depth evolve as in a real stream (interned depth levels and datetimes get realistic hit rates);
* ``random``: every depth level and timestamp distinct (the decoder's caches never hit): a floor.

Side by side, in the same run, the official ``kiteconnect`` parser (``KiteTicker._parse_binary``) decodes
the same ``market`` frames in a child process (importing ``kiteconnect`` installs the Twisted reactor
process-wide, so it stays out of this one); both figures are ticks per CPU second of their process.
Our decoder builds each tick's ten depth levels only when the book is read; ``..._with_depth`` reads
every book, the figure for a consumer that looks at all ten levels of every tick.
"""

from __future__ import annotations

import random
import subprocess  # nosec B404: runs this interpreter on a fixed script, no user input
import sys
import time
from datetime import date, datetime, timedelta
from typing import Any

from tickwise.adapters.kite.codec import DecodeStats, decode_frame, encode_frame
from tickwise.domain.tick import OHLC, Depth, DepthLevel, Tick
from tickwise.domain.time import IST

FRAME_PACKETS = 100


def _market_ticks(n_ticks: int) -> list[Tick]:
    from tickwise.adapters.kite.simulator.market import Market
    from tickwise.adapters.kite.simulator.universe import Universe
    from tickwise.domain.calendar import NSE

    day = NSE.previous_trading_day(date(2026, 1, 2))
    universe = Universe(10, today=day)
    market = Market(universe, seed=7)
    start = datetime.combine(day, datetime.min.time(), tzinfo=IST).replace(hour=9, minute=15)
    ticks: list[Tick] = []
    span = timedelta(minutes=30)
    while len(ticks) < n_ticks:
        for m in universe.equities:
            ticks += market.snapshots_between(m.token, start, start + span, spikes=False)
        start += span
    ticks.sort(key=lambda t: t.exchange_timestamp or start)
    return ticks[:n_ticks]


def _random_ticks(n_ticks: int, seed: int = 1) -> list[Tick]:
    rng = random.Random(seed)  # nosec B311: synthetic benchmark data, not a security use of randomness
    out = []
    for i in range(n_ticks):
        p = 100 + rng.randrange(0, 200_000) * 0.05
        ts = datetime.fromtimestamp(1_700_000_000 + i, IST)

        def lv(k: int, p: float = p) -> DepthLevel:
            return DepthLevel(rng.randrange(1, 5000), round(p + k * 0.05, 2), rng.randrange(1, 50))

        depth = Depth(tuple(lv(-k) for k in range(1, 6)), tuple(lv(k) for k in range(5)))
        out.append(
            Tick(
                (1000 + i % 500) << 8 | 1,
                "full",
                True,
                p,
                7,
                p,
                i,
                5,
                6,
                OHLC(p, p, p, p),
                0.0,
                ts,
                0,
                0,
                0,
                ts,
                depth,
            )
        )
    return out


def _decode_rate(frames: list[bytes], n_ticks: int, repeats: int, clock: Any = time.perf_counter) -> float:
    """Best-of-``repeats`` ticks/s; ``clock=time.process_time`` measures CPU seconds of this process,
    which is steadier than wall time on a shared machine."""
    best = float("inf")
    stats = DecodeStats()
    for _ in range(repeats):
        t0 = clock()
        for frame in frames:
            decode_frame(frame, stats)
        best = min(best, clock() - t0)
    return n_ticks / max(best, 1e-9)


_OFFICIAL = r"""
import sys, time
from kiteconnect import KiteTicker

frames = [bytes.fromhex(line.strip()) for line in sys.stdin if line.strip()]
ticker = KiteTicker("k", "t")
repeats = int(sys.argv[1])
best = float("inf")
n = 0
for _ in range(repeats):
    t0 = time.process_time()
    n = 0
    for frame in frames:
        n += len(ticker._parse_binary(frame))
    best = min(best, time.process_time() - t0)
print(n / max(best, 1e-9))
"""


def _official_rate(frames: list[bytes], repeats: int) -> float | None:
    """Ticks per CPU second of the official parser over ``frames``; None when kiteconnect is missing."""
    try:
        done = subprocess.run(  # nosec B603: fixed arguments, this interpreter
            [sys.executable, "-c", _OFFICIAL, str(repeats)],
            input="\n".join(f.hex() for f in frames),
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
        return float(done.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        return None


def _decode_rate_reading_depth(frames: list[bytes], n_ticks: int, repeats: int) -> float:
    """Like :func:`_decode_rate` on CPU time, but every tick's book is read (all ten levels built)."""
    best = float("inf")
    stats = DecodeStats()
    for _ in range(repeats):
        t0 = time.process_time()
        for frame in frames:
            for tick in decode_frame(frame, stats):
                if tick.depth is not None:
                    tick.depth.buy  # noqa: B018 - reading the book is the work measured
        best = min(best, time.process_time() - t0)
    return n_ticks / max(best, 1e-9)


def run_codec_bench(n_ticks: int = 50_000, repeats: int = 3) -> dict[str, Any]:
    """Decode and encode throughput of full-mode ticks (best of ``repeats``)."""
    figures: dict[str, Any] = {"ticks": n_ticks, "frame_packets": FRAME_PACKETS}
    for name, ticks in (("market", _market_ticks(n_ticks)), ("random", _random_ticks(n_ticks))):
        frames = [encode_frame(ticks[i : i + FRAME_PACKETS]) for i in range(0, len(ticks), FRAME_PACKETS)]
        figures[f"decode_full_ticks_per_s_{name}"] = round(_decode_rate(frames, len(ticks), repeats))
        figures[f"decode_full_ticks_per_cpu_s_{name}"] = round(
            _decode_rate(frames, len(ticks), repeats, time.process_time)
        )
        if name == "market":
            figures["decode_full_ticks_per_cpu_s_market_with_depth"] = round(
                _decode_rate_reading_depth(frames, len(ticks), repeats)
            )
            official = _official_rate(frames, repeats)
            figures["official_kiteconnect_ticks_per_cpu_s_market"] = (
                round(official) if official is not None else None
            )
            if official:
                figures["speedup_vs_official"] = round(
                    figures["decode_full_ticks_per_cpu_s_market"] / official, 2
                )
            t0 = time.perf_counter()
            for i in range(0, len(ticks), FRAME_PACKETS):
                encode_frame(ticks[i : i + FRAME_PACKETS])
            figures["encode_full_ticks_per_s"] = round(len(ticks) / (time.perf_counter() - t0))
            figures["decode_mb_per_s_market"] = round(
                sum(map(len, frames)) / (len(ticks) / figures[f"decode_full_ticks_per_s_{name}"]) / 1e6, 1
            )
    return figures
