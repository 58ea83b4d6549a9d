"""BufferedWriter: a database outage buffers, spills to disk and retries; nothing accepted is lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tickwise.domain.errors import DataValidationError, StorageError
from tickwise.pipelines.live.breaker import CircuitBreaker
from tickwise.pipelines.live.spill import decode_batch
from tickwise.pipelines.live.writer import BufferedWriter


class FlakyTable:
    """A fake table: refuses writes while ``down``; rows equal to 'bad' are invalid."""

    def __init__(self) -> None:
        self.down = False
        self.rows: list[int | str] = []

    async def write(self, rows: list[int | str]) -> int:
        if self.down:
            raise StorageError("connection refused")
        if "bad" in rows:
            raise DataValidationError("invalid row")
        self.rows.extend(rows)
        return len(rows)


def writer(table: FlakyTable, tmp_path: Path, **kw: object) -> BufferedWriter:
    return BufferedWriter(
        {"t": table.write},
        batch_size=10,
        interval_s=0.01,
        max_memory_rows=kw.pop("max_memory_rows", 50),  # type: ignore[arg-type]
        spill_dir=tmp_path / "spill",
        breaker=CircuitBreaker("db", failure_threshold=2, cooldown_s=0.01),
        backoff_base_s=0.001,
        backoff_cap_s=0.01,
        **kw,  # type: ignore[arg-type]
    )


async def test_an_outage_spills_to_disk_and_every_row_arrives_in_order_after_recovery(tmp_path: Path) -> None:
    table = FlakyTable()
    w = writer(table, tmp_path)
    w.start()
    table.down = True
    for i in range(200):
        w.put("t", [i])
    await asyncio.sleep(0.05)
    assert table.rows == []
    assert w.spilled_files() > 0  # over the memory bound: the oldest rows went to disk
    assert w.pending_rows() <= 50
    assert w.breaker.state in ("open", "half_open")
    table.down = False
    assert await w.close(timeout_s=5.0)
    assert table.rows == list(range(200))
    assert w.spilled_files() == 0
    assert not list((tmp_path / "spill").glob("spill-*"))


async def test_rows_left_at_shutdown_are_spilled_and_loaded_by_the_next_run(tmp_path: Path) -> None:
    table = FlakyTable()
    table.down = True
    first = writer(table, tmp_path)
    first.put("t", list(range(25)))
    assert not await first.close(timeout_s=0.1)
    assert first.spilled_files() >= 1
    table.down = False
    second = writer(table, tmp_path)
    assert second.load_spilled() >= 1
    second.put("t", [99])
    assert await second.close(timeout_s=5.0)
    assert table.rows == [*range(25), 99]


async def test_an_invalid_row_is_set_aside_and_the_rest_of_its_batch_is_written(tmp_path: Path) -> None:
    table = FlakyTable()
    w = writer(table, tmp_path)
    w.put("t", [1, 2, "bad", 3])
    assert await w.close(timeout_s=5.0)
    assert table.rows == [1, 2, 3]
    assert w.stats("t").rejected == 1
    (kept,) = (tmp_path / "spill" / "rejected").glob("rows-t-*.spill")
    assert decode_batch(kept.read_bytes(), "t") == ["bad"]


def test_the_breaker_opens_after_consecutive_failures_and_half_opens_after_the_cooldown() -> None:
    now = [0.0]
    seen: list[str] = []
    b = CircuitBreaker(
        "db", failure_threshold=2, cooldown_s=5.0, clock=lambda: now[0], on_change=lambda n, s: seen.append(s)
    )
    b.failure()
    assert b.allow()
    b.failure()
    assert not b.allow()
    now[0] = 5.0
    assert b.allow() and b.state == "half_open"
    b.failure()
    assert b.state == "open"
    now[0] = 10.0
    assert b.allow()
    b.success()
    assert seen == ["open", "half_open", "open", "half_open", "closed"]


class SlowTable:
    """A fake table whose writes take ``delay_s``; records (table, event) in a shared log."""

    def __init__(self, name: str, log: list[tuple[str, str]], delay_s: float = 0.02) -> None:
        self.name = name
        self.log = log
        self.delay_s = delay_s
        self.down = False
        self.rows: list[int] = []

    async def write(self, rows: list[int]) -> int:
        if self.down:
            raise StorageError("connection refused")
        self.log.append((self.name, "start"))
        await asyncio.sleep(self.delay_s)
        self.rows.extend(rows)
        self.log.append((self.name, "end"))
        return len(rows)


async def test_a_bulk_table_write_waits_until_the_urgent_signals_write_has_committed(tmp_path: Path) -> None:
    log: list[tuple[str, str]] = []
    signals, features = SlowTable("signals", log), SlowTable("features", log)
    w = BufferedWriter(
        {"features": features.write, "signals": signals.write},
        batch_size=10,
        interval_s=0.01,
        max_memory_rows=100,
        urgent=("signals",),
    )
    w.put("features", list(range(5)))
    w.put("signals", [1, 2])
    assert await w.flush()
    assert log[:2] == [("signals", "start"), ("signals", "end")]
    assert features.rows == list(range(5)) and signals.rows == [1, 2]


async def test_a_bulk_table_is_not_held_back_for_long_by_a_slow_urgent_write(tmp_path: Path) -> None:
    log: list[tuple[str, str]] = []
    signals, ticks = SlowTable("signals", log, 1.0), SlowTable("ticks", log, 0.0)
    w = BufferedWriter(
        {"ticks": ticks.write, "signals": signals.write},
        batch_size=10,
        interval_s=0.01,
        max_memory_rows=100,
        urgent=("signals",),
        urgent_wait_s=0.05,
    )
    w.start()
    w.put("signals", [1])
    w.put("ticks", list(range(20)))
    await asyncio.sleep(0.5)
    assert ticks.rows == list(range(20))  # written while the signal write is still in flight
    assert signals.rows == []
    assert await w.close(timeout_s=5.0)
    assert signals.rows == [1]
