"""The spill: a checksummed non-pickle format, bad files set aside, a bounded directory, a full disk."""

from __future__ import annotations

import asyncio
import errno
import math
import pickle
import random
from datetime import datetime
from pathlib import Path

import asyncpg
import numpy as np
import pytest

from tickwise.domain.bar import Bar
from tickwise.domain.candle import Candle
from tickwise.domain.errors import StorageError
from tickwise.domain.signal import Signal
from tickwise.domain.tick import OHLC, Depth, DepthLevel, Tick
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.observability.hooks import RecordingHooks
from tickwise.pipelines.live.breaker import CircuitBreaker
from tickwise.pipelines.live.engine import FeatureRow, PendingSignal
from tickwise.pipelines.live.spill import SpillFormatError, decode_batch, encode_batch
from tickwise.pipelines.live.writer import BufferedWriter, write_durably

T0 = datetime(2025, 1, 6, 9, 15, tzinfo=IST)


class RecordingAlerts:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def notify(self, priority: str, key: str, message: str) -> None:
        self.sent.append((priority, key, message))


class Table:
    """A fake table that refuses writes while ``down``."""

    def __init__(self) -> None:
        self.down = False
        self.rows: list[object] = []

    async def write(self, rows: list[object]) -> int:
        if self.down:
            raise StorageError("connection refused")
        self.rows.extend(rows)
        return len(rows)


def make_writer(table: Table, spill: Path, **kw: object) -> BufferedWriter:
    return BufferedWriter(
        {"t": table.write},
        batch_size=10,
        interval_s=0.01,
        max_memory_rows=kw.pop("max_memory_rows", 50),  # type: ignore[arg-type]
        spill_dir=spill,
        breaker=CircuitBreaker("db", failure_threshold=2, cooldown_s=0.01),
        backoff_base_s=0.001,
        backoff_cap_s=0.01,
        **kw,  # type: ignore[arg-type]
    )


def live_rows() -> list[object]:
    candle = Candle(408065, Timeframe.M1, T0, 100.0, 101.0, 99.5, 100.5, 1200, None, "live")
    depth = Depth(buy=(DepthLevel(10, 100.0, 2),), sell=(DepthLevel(5, 100.1, 1),))
    tick = Tick(
        instrument_token=408065,
        mode="full",
        tradable=True,
        last_price=100.25,
        volume_traded=1200,
        ohlc=OHLC(99.0, 101.0, 98.0, 100.0),
        exchange_timestamp=T0,
        depth=depth,
    )
    signal = Signal(408065, Timeframe.M1, T0, T0, "v1", 1, 0.75, "live", "fs1")
    return [
        tick,
        Bar(candle, 0.25),
        Bar(candle),  # obi_5 NaN
        FeatureRow(408065, T0, np.array([1.5, math.nan, -math.inf])),
        PendingSignal(signal, 1.7e9),
    ]


def test_every_live_row_type_round_trips_through_the_spill_format() -> None:
    rows = live_rows()
    back = decode_batch(encode_batch("t", rows), "t")
    assert back[0] == rows[0] and back[4] == rows[4]
    assert isinstance(back[1], Bar) and back[1].candle == rows[1].candle and back[1].obi_5 == 0.25  # type: ignore[union-attr]
    assert isinstance(back[2], Bar) and math.isnan(back[2].obi_5)
    assert isinstance(back[3], FeatureRow)
    np.testing.assert_array_equal(back[3].values, np.array([1.5, math.nan, -math.inf]))


def test_a_spill_file_is_not_pickle_and_names_its_format_version_table_and_row_count() -> None:
    data = encode_batch("candles", [1, 2, 3])
    header = data.split(b"\n", 1)[0]
    assert b'"magic":"tickwise-spill"' in header and b'"version":1' in header
    assert b'"table":"candles"' in header and b'"rows":3' in header and b'"crc32":' in header
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(data)  # nosec B301 - proving the file is not a pickle


def test_every_single_byte_corruption_is_detected_or_harmless() -> None:
    rows = live_rows()
    data = encode_batch("t", rows)
    rng = random.Random(13)
    for _ in range(3000):
        damaged = bytearray(data)
        i = rng.randrange(len(damaged))
        damaged[i] ^= 1 << rng.randrange(8)
        try:
            back = decode_batch(bytes(damaged), "t")
        except SpillFormatError:
            continue
        # Only a flip in the header's insignificant parts can pass; the rows must then be unchanged.
        assert back[0] == rows[0] and back[4] == rows[4]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("corrupt", None),
        ("truncated", None),
        ("zero-length", b""),
        ("foreign", b"hello, I am not a spill file\n"),
        ("other table", encode_batch("u", [7])),
        ("newer version", encode_batch("t", [7]).replace(b'"version":1', b'"version":9', 1)),
    ],
)
async def test_a_bad_spill_file_is_set_aside_with_an_alert_while_the_writer_keeps_writing(
    tmp_path: Path, name: str, content: bytes | None
) -> None:
    spill = tmp_path / "spill"
    spill.mkdir()
    good = encode_batch("t", [1, 2])
    if content is None:
        content = good.replace(b"[1,2]", b"[1,3]") if name == "corrupt" else good[: len(good) // 2]
    (spill / "spill-t-1-00000001.spill").write_bytes(content)
    (spill / "spill-t-2-00000002.spill").write_bytes(good)
    table, alerts, hooks = Table(), RecordingAlerts(), RecordingHooks()
    w = make_writer(table, spill, alerts=alerts, hooks=hooks)
    assert w.load_spilled() == 2
    w.start()
    w.put("t", [3])
    assert await w.close(timeout_s=5.0)
    assert table.rows == [1, 2, 3]
    assert w.stats("t").rejected_files == 1
    assert [p.name for p in (spill / "rejected").iterdir()] == ["spill-t-1-00000001.spill"]
    assert hooks.of("on_spill_rejected") == [("corrupt",)]
    assert [key for _, key, _ in alerts.sent] == ["spill_file_rejected"]
    assert not list(spill.glob("spill-*"))


async def test_a_pickle_spill_file_of_an_older_build_is_set_aside_never_unpickled(tmp_path: Path) -> None:
    spill = tmp_path / "spill"
    spill.mkdir()
    (spill / "spill-t-1-00000001.pkl").write_bytes(pickle.dumps([1, 2]))
    table, alerts = Table(), RecordingAlerts()
    w = make_writer(table, spill, alerts=alerts)
    assert w.load_spilled() == 0
    w.put("t", [3])
    assert await w.close(timeout_s=5.0)
    assert table.rows == [3]
    assert (spill / "rejected" / "spill-t-1-00000001.pkl").exists()
    assert len(alerts.sent) == 1


async def test_tmp_files_of_an_interrupted_spill_are_removed_at_start(tmp_path: Path) -> None:
    spill = tmp_path / "spill"
    spill.mkdir()
    (spill / "spill-t-1-00000001.spill.tmp").write_bytes(b"half a fi")
    w = make_writer(Table(), spill)
    assert w.load_spilled() == 0
    assert list(spill.iterdir()) == []


def test_a_durable_write_leaves_no_tmp_file_when_it_fails(tmp_path: Path) -> None:
    target = tmp_path / "missing-dir" / "spill-t-1.spill"
    with pytest.raises(OSError):
        write_durably(target, b"x")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f.spill.tmp").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(FileExistsError):  # a planted link is never followed
        write_durably(tmp_path / "d" / "f.spill", b"secret rows")
    assert not (tmp_path / "elsewhere").exists()


class FullDisk:
    """A filesystem port that refuses every write with ENOSPC, counting the attempts."""

    def __init__(self) -> None:
        self.attempts = 0

    def __call__(self, path: Path, data: bytes) -> None:
        self.attempts += 1
        raise OSError(errno.ENOSPC, "No space left on device", str(path))


async def test_a_full_disk_drops_rows_only_past_the_memory_bound_counted_and_alerted(tmp_path: Path) -> None:
    table, alerts, hooks, disk = Table(), RecordingAlerts(), RecordingHooks(), FullDisk()
    table.down = True
    w = make_writer(table, tmp_path / "spill", alerts=alerts, hooks=hooks, write_file=disk)
    for i in range(500):
        w.put("t", [i])
        assert w.pending_rows() <= 50  # memory stays bounded
    dropped = w.stats("t").dropped
    assert dropped == 450
    assert disk.attempts < 10  # spill attempts back off instead of re-encoding on every put
    assert sum(n for _, n in hooks.of("on_spill_dropped")) == dropped
    assert any(p == "critical" and k == "rows_dropped_t" for p, k, _ in alerts.sent)
    table.down = False
    assert await w.close(timeout_s=5.0)
    assert table.rows == list(range(450, 500))  # every accepted row: written or counted as dropped
    assert not list((tmp_path / "spill").glob("*.tmp"))


async def test_the_spill_directory_cap_drops_by_the_explicit_policy_with_an_alert(tmp_path: Path) -> None:
    table, alerts = Table(), RecordingAlerts()
    table.down = True
    one_file = len(encode_batch("t", list(range(10))))
    w = make_writer(table, tmp_path / "spill", alerts=alerts, spill_max_bytes=3 * one_file)
    w.put("t", list(range(200)))
    stats = w.stats("t")
    assert 2 <= w.spilled_files() <= 3
    assert stats.spilled + stats.dropped + w.pending_rows() == 200
    assert stats.dropped > 0 and w.pending_rows() <= 50
    assert any(k == "rows_dropped_t" for _, k, _ in alerts.sent)
    assert sum(p.stat().st_size for p in (tmp_path / "spill").glob("spill-*")) <= 3 * one_file


async def test_rows_that_cannot_be_spilled_at_shutdown_are_counted_as_dropped(tmp_path: Path) -> None:
    table, alerts = Table(), RecordingAlerts()
    table.down = True
    w = make_writer(table, tmp_path / "spill", alerts=alerts, write_file=FullDisk())
    w.put("t", list(range(30)))
    assert not await w.close(timeout_s=0.05)
    assert w.stats("t").dropped == 30 and w.pending_rows() == 0
    assert alerts.sent


class ExplodingHooks(RecordingHooks):
    def on_db_write(self, table: str, latency_s: float, rows: int) -> None:
        raise RuntimeError("a bug in a hook")


async def test_the_writer_task_ending_before_close_is_an_error_not_a_silent_stop(tmp_path: Path) -> None:
    w = make_writer(Table(), tmp_path / "spill", hooks=ExplodingHooks())
    task = w.start()
    w.put("t", [1])
    with pytest.raises(RuntimeError, match="a bug in a hook"):
        await asyncio.wait_for(task, 5.0)


def test_status_counts_the_files_under_the_names_the_writer_uses() -> None:
    from tickwise.bootstrap import status
    from tickwise.pipelines.live import spill, writer

    assert (status.SPILL_SUFFIX, status.REJECTED_DIR) == (spill.SUFFIX, writer.REJECTED_DIR)


class CutConnection:
    """A sink whose connection is cut mid-protocol once: asyncpg's InternalClientError, then it works."""

    def __init__(self) -> None:
        self.failures = 1
        self.rows: list[object] = []

    async def write(self, rows: list[object]) -> int:
        if self.failures:
            self.failures -= 1
            raise asyncpg.exceptions.InternalClientError(
                "cannot switch to state 12; another operation is in progress"
            )
        self.rows.extend(rows)
        return len(rows)


async def test_asyncpgs_internal_client_error_is_a_connection_failure_retried_with_nothing_lost(
    tmp_path: Path,
) -> None:
    sink, hooks = CutConnection(), RecordingHooks()
    w = BufferedWriter(
        {"t": sink.write},
        batch_size=10,
        interval_s=0.01,
        max_memory_rows=50,
        hooks=hooks,
        spill_dir=tmp_path / "spill",
        backoff_base_s=0.001,
        backoff_cap_s=0.01,
    )
    w.put("t", list(range(25)))
    assert await w.close(timeout_s=5.0)
    assert sink.rows == list(range(25))
    assert hooks.of("on_db_write_failed") == [("t",)]
    assert w.stats("t").rejected == 0 and w.stats("t").dropped == 0
    assert w.last_error is not None and w.last_error.startswith("InternalClientError")
