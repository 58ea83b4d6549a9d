"""A full disk under the spill directory: no accepted row is lost without a counted, alerted drop.

Uses a REAL full filesystem: a 256 KiB tmpfs mounted for the test (needs root / CAP_SYS_ADMIN; the
test is skipped with the reason otherwise).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tickwise.domain.errors import StorageError
from tickwise.domain.tick import Depth, DepthLevel, Tick
from tickwise.domain.time import IST
from tickwise.observability.hooks import RecordingHooks
from tickwise.pipelines.live.breaker import CircuitBreaker
from tickwise.pipelines.live.writer import BufferedWriter

T0 = datetime(2025, 1, 6, 9, 15, tzinfo=IST)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tiny"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount(8) on this machine")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (not root?): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


class RecordingAlerts:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str]] = []

    def notify(self, priority: str, key: str, message: str) -> None:
        self.sent.append((priority, key, message))


class Ticks:
    def __init__(self) -> None:
        self.down = True
        self.rows: list[Tick] = []

    async def write(self, rows: list[Tick]) -> int:
        if self.down:
            raise StorageError("connection refused")
        self.rows.extend(rows)
        return len(rows)


def tick(i: int) -> Tick:
    levels = tuple(DepthLevel(100 + k, 100.0 + k / 20, k + 1) for k in range(5))
    return Tick(
        instrument_token=408065,
        mode="full",
        tradable=True,
        last_price=100.0 + (i % 50) / 20,
        volume_traded=1000 + i,
        exchange_timestamp=T0 + timedelta(milliseconds=i),
        depth=Depth(buy=levels, sell=levels),
    )


async def test_a_full_disk_loses_no_accepted_row_without_a_counted_alerted_drop(full_disk: Path) -> None:
    table, hooks, alerts = Ticks(), RecordingHooks(), RecordingAlerts()
    spill = full_disk / "spill"
    w = BufferedWriter(
        {"ticks": table.write},
        batch_size=50,
        interval_s=0.01,
        max_memory_rows=200,
        spill_dir=spill,
        breaker=CircuitBreaker("db", failure_threshold=2, cooldown_s=0.01),
        hooks=hooks,
        alerts=alerts,
        backoff_base_s=0.001,
        backoff_cap_s=0.01,
    )
    w.start()
    accepted = [tick(i) for i in range(3000)]  # ~1.5 MB as spill files: far more than the 256 KiB disk
    for i in range(0, len(accepted), 25):
        w.put("ticks", accepted[i : i + 25])
        assert w.pending_rows() <= 200  # never piles up in memory past the bound
        await asyncio.sleep(0)
    stats = w.stats("ticks")
    assert stats.spilled > 0, "the disk took some rows before it filled up"
    assert stats.dropped > 0 and w.spill_error is not None and "No space left" in w.spill_error
    assert not list(spill.glob("*.tmp")), "a failed spill leaves no .tmp file"
    assert sum(n for _, n in hooks.of("on_spill_dropped")) == stats.dropped
    assert any(p == "critical" and k == "rows_dropped_ticks" for p, k, _ in alerts.sent)
    table.down = False
    assert await w.close(timeout_s=20.0)
    # Every accepted row was written or counted as dropped; the written ones in order, none twice.
    assert len(table.rows) + stats.dropped == len(accepted)
    written = [t.volume_traded for t in table.rows]
    assert written == sorted(set(written))
    assert not list(spill.glob("spill-*")) and not list(spill.glob("*.tmp"))
