"""``BufferedWriter.urgent_written``: the consumer's wait for a minute's signals before the rest of the
minute, which returns once they are written, and after its bound when the database is slow."""

from __future__ import annotations

import asyncio
import time

from tickwise.pipelines.live.writer import BufferedWriter


def test_it_returns_once_the_queued_signals_are_written() -> None:
    written: list[list[object]] = []

    async def signals(rows: list[object]) -> int:
        await asyncio.sleep(0.01)  # a commit's round trip
        written.append(list(rows))
        return len(rows)

    async def run() -> None:
        writer = BufferedWriter({"signals": signals}, interval_s=5.0, urgent=("signals",))
        writer.start()
        writer.put("signals", ["s1", "s2"])
        await writer.urgent_written()
        assert written == [["s1", "s2"]]
        await writer.close()

    asyncio.run(run())


def test_a_slow_commit_holds_it_back_only_up_to_its_bound() -> None:
    release = asyncio.Event()

    async def signals(rows: list[object]) -> int:
        await release.wait()  # a database that does not answer
        return len(rows)

    async def run() -> None:
        writer = BufferedWriter({"signals": signals}, interval_s=5.0, urgent=("signals",))
        writer.start()
        writer.put("signals", ["s1"])
        began = time.monotonic()
        await writer.urgent_written(timeout_s=0.05)
        assert 0.04 <= time.monotonic() - began < 0.5
        assert writer.pending_rows("signals") == 1  # still in flight, not dropped
        release.set()
        assert await writer.close(timeout_s=2.0)
        assert writer.stats("signals").written == 1

    asyncio.run(run())


def test_nothing_queued_returns_at_once() -> None:
    async def signals(rows: list[object]) -> int:
        return len(rows)

    async def run() -> None:
        writer = BufferedWriter({"signals": signals}, interval_s=5.0, urgent=("signals",))
        began = time.monotonic()
        await writer.urgent_written()
        assert time.monotonic() - began < 0.05

    asyncio.run(run())
