"""`bench live`'s per-minute parts: each part's thread CPU, page faults, collections and kernel compiles
are charged to the bar minute whose window (its candle close to the end of its deferred rest) they ran in."""

from __future__ import annotations

import gc
import time
from datetime import UTC, datetime, timedelta

import numpy as np
from numba import njit

from tickwise.bench.minute_parts import MinuteParts

NINE_FIFTEEN = datetime(1989, 7, 10, 3, 45, tzinfo=UTC)  # 09:15 IST


def _close_of(minute: datetime | None) -> list[datetime]:
    return [] if minute is None else [minute]


def _burn(seconds: float) -> int:
    end, n = time.thread_time() + seconds, 0
    while time.thread_time() < end:
        n += 1
    return n


def _minute_parts() -> MinuteParts:
    return MinuteParts(rss_mb=lambda: 123.0)


def test_a_part_is_charged_to_the_minute_whose_close_opened_the_window() -> None:
    parts = _minute_parts()
    close = parts.timed_close(_close_of, lambda closed: max(closed) if closed else None)
    burn = parts.timed("bank", _burn)
    with parts:
        burn(0.01)  # before any close: no minute to charge
        parts.step_began()
        close(NINE_FIFTEEN)
        burn(0.02)
        parts.end_window()
        burn(0.01)  # between minutes: not charged
        parts.step_began()
        close(None)  # a close with no bar opens nothing
        burn(0.01)
        parts.step_began()
        burn(0.01)  # in the step that closes 09:16, before its bars: part of its window
        parts.open(NINE_FIFTEEN + timedelta(minutes=1))
        burn(0.005)
        parts.latency(NINE_FIFTEEN + timedelta(minutes=1), 7.5)
    report = parts.report()
    assert [m["minute"] for m in report] == ["09:15", "09:16"]
    first, second = report
    assert 19.0 <= first["parts_cpu_ms"]["bank"] <= 30.0
    assert first["cpu_ms"] >= first["parts_cpu_ms"]["bank"]
    assert first["cpu_ms"] < 30.0  # the burns outside the window are not in it
    assert 4.5 <= second["parts_cpu_ms"]["bank"] < 15.0
    assert second["cpu_ms"] >= 14.5 and "close" not in second["parts_cpu_ms"]
    assert second["latency_thread_ms"] == 7.5 and first["latency_thread_ms"] == 0.0
    assert first["rss_mb"] == second["rss_mb"] == 123.0
    assert set(first["parts_cpu_ms"]) == {"close", "bank"}
    assert first["new_signatures"] == second["new_signatures"] == 0


def test_a_first_touch_of_fresh_memory_shows_as_minor_faults_of_its_part() -> None:
    parts = _minute_parts()
    close = parts.timed_close(_close_of, lambda closed: max(closed) if closed else None)
    # 16 MiB: mmapped fresh and written once. Not a NumPy array: NumPy asks for huge pages for large
    # ones (madvise), and a 2 MiB page is one fault.
    fresh = parts.timed("bank", lambda: bytearray(b"\x01" * (16 * 2**20)))
    reuse = parts.timed("predict", lambda held: held.__setitem__(slice(0, 4096), b"\x02" * 4096))
    with parts:
        parts.step_began()
        close(NINE_FIFTEEN)
        held = fresh()
        reuse(held)
    minute = parts.report()[0]
    assert minute["parts_minflt"]["bank"] >= 4096  # 4,096 pages of 4 KiB, written (twice: bytes, copy)
    assert minute["parts_minflt"]["predict"] < 100
    assert minute["minflt"] >= minute["parts_minflt"]["bank"]
    assert minute["majflt"] == 0


def test_a_kernel_compiled_inside_a_minute_is_named_in_that_minute_only() -> None:
    @njit(cache=False)
    def doubled(x: float | np.int64) -> float:
        return 2.0 * x

    parts = _minute_parts()
    close = parts.timed_close(_close_of, lambda closed: max(closed) if closed else None)
    with parts:
        parts.step_began()
        close(NINE_FIFTEEN)
        doubled(1.0)  # a new signature: compiled here
        parts.end_window()
        parts.step_began()
        close(NINE_FIFTEEN + timedelta(minutes=1))
        doubled(2.0)  # the same signature: nothing compiled
        doubled(np.int64(3))  # a second signature: compiled in this minute
    first, second = parts.report()
    assert len(first["compiles"]) == 1 and first["compiles"][0].endswith("doubled")
    assert first["compile_ms"] > 0.0
    assert len(second["compiles"]) == 1
    assert parts.compiled_outside == []


def test_the_collectors_runs_inside_a_minute_are_counted() -> None:
    parts = _minute_parts()
    close = parts.timed_close(_close_of, lambda closed: max(closed) if closed else None)
    with parts:
        gc.collect()  # outside any window
        parts.step_began()
        close(NINE_FIFTEEN)
        gc.collect()
        gc.collect()
    minute = parts.report()[0]
    assert minute["gc_runs"] == 2 and minute["gc_ms"] > 0.0
    assert gc.callbacks.count(parts._on_gc) == 0  # removed on exit
