"""Buffered, batched, retrying database writes for the live pipeline.

The hot path only calls :meth:`BufferedWriter.put` (never blocks, never raises); a background task
flushes each table in batches of ``batch_size`` rows every ``interval_s`` (or as soon as a batch is
full). A failed write keeps its rows and is retried with exponential backoff behind a circuit breaker,
so during a database outage the pipeline keeps computing and nothing accepted is lost:

* rows wait in memory up to ``max_memory_rows`` per table; beyond that the oldest rows are **spilled**
  to ``spill_dir`` (:mod:`~tickwise.pipelines.live.spill` files: versioned, checksummed JSON, never
  pickle; one per chunk, written to a ``.tmp`` file, fsynced, renamed, and the directory fsynced) and
  written back first once the database returns;
* spill files left by a crashed or stopped process are loaded by the next run (:meth:`load_spilled`,
  which also deletes ``.tmp`` leftovers of an interrupted spill); a file that is corrupt, truncated,
  empty or foreign (another format, an older pickle spill) is moved to ``spill_dir/rejected/``, alerted
  and counted, and the writer goes on with the next one;
* the spill directory is bounded (``spill_max_bytes``) and the disk may be full: a chunk that cannot be
  spilled is kept in memory only up to ``max_memory_rows`` (spill attempts back off meanwhile); the
  rows over that bound are **dropped, oldest first**, and every drop is counted (``stats.dropped``,
  ``on_spill_dropped``) and alerted, so memory stays bounded and no accepted row disappears silently;
* every write is an upsert or idempotent insert on the table's natural key, so a retried batch whose
  first attempt did commit does no harm (at-least-once delivery; ``ticks`` have no natural key, so a
  retry after a lost commit acknowledgement can store a tick twice); any exception of a sink (a refused
  connection, asyncpg's ``InternalClientError`` "cannot switch to state ..." on a cut connection) but
  ``DataValidationError`` is a connection failure: the batch is kept and retried;
* a batch the database refuses as invalid (``DataValidationError``) is bisected so the valid rows are
  written and only the bad ones are set aside, as ``rejected/rows-*.spill`` in ``spill_dir``, and counted.

``urgent`` tables (signals) are flushed as soon as rows arrive and go first: a write of another table
waits (bounded by ``urgent_wait_s``) while an urgent table has rows queued or a write in flight, so a
large features/ticks flush never competes with a signal commit for the event loop, the pool or the
database (the signal's candle-close -> commit latency is what the live pipeline is measured on).

:meth:`close` flushes everything it can within a timeout and spills the rest, so a graceful shutdown
loses nothing either.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from tickwise.domain.backoff import Backoff
from tickwise.domain.errors import DataValidationError, StorageError
from tickwise.observability.hooks import NullHooks
from tickwise.pipelines.live.breaker import CircuitBreaker
from tickwise.pipelines.live.spill import SUFFIX, SpillFormatError, decode_batch, encode_batch
from tickwise.ports.alerts import Alerts
from tickwise.ports.hooks import PipelineHooks

# One sink per table; a table's rows are all of one type (Tick, Bar, FeatureRow, PendingSignal), the
# buffer itself is indifferent to it.
WriteFn = Callable[[list[Any]], Awaitable[int]]
# How a spill file reaches the disk (injectable so a test can play a full disk without one).
WriteFileFn = Callable[[Path, bytes], None]

REJECTED_DIR = "rejected"
# Spill attempts after a failure (full disk, read-only directory): 0.5 s doubling up to 30 s.
SPILL_BACKOFF = Backoff(base=0.5, factor=2.0, cap=30.0, jitter=0.0)


def write_durably(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and durably: ``.tmp`` file, fsync, rename, fsync the directory.

    The temporary file is removed on any failure (a full disk leaves no ``.tmp`` behind), and it is
    created exclusively without following links, so a planted symlink cannot receive the rows.
    """
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _spill_order(path: Path) -> tuple[int, int, int]:
    """Oldest first: by the creation instant and sequence in the name (mtimes can tie within a tick)."""
    parts = path.name.split(".", 1)[0].rsplit("-", 2)
    try:
        return (0, int(parts[1]), int(parts[2]))
    except (IndexError, ValueError):
        return (1, path.stat().st_mtime_ns if path.exists() else 0, 0)


class WriterStopped(StorageError):
    """The writer's background task ended while the session was still running (a bug, never routine)."""


@dataclass
class TableStats:
    written: int = 0
    batches: int = 0
    failures: int = 0
    spilled: int = 0
    rejected: int = 0  # rows the database refused as invalid (set aside)
    dropped: int = 0  # accepted rows lost because neither memory nor disk could hold them (alerted)
    rejected_files: int = 0  # spill files set aside as unreadable


@dataclass
class _Table:
    name: str
    write: WriteFn
    rows: deque[object] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    spill_files: deque[Path] = field(default_factory=deque)
    stats: TableStats = field(default_factory=TableStats)
    urgent: bool = False
    in_flight: bool = False


class BufferedWriter:
    """Per-table write buffers with batching, retry/backoff, circuit breaker and disk spill."""

    def __init__(
        self,
        tables: dict[str, WriteFn],
        *,
        batch_size: int = 5000,
        interval_s: float = 1.0,
        max_memory_rows: int = 200_000,
        spill_dir: Path | None = None,
        breaker: CircuitBreaker | None = None,
        hooks: PipelineHooks | None = None,
        backoff_base_s: float = 0.25,
        backoff_cap_s: float = 10.0,
        urgent: Sequence[str] = (),
        urgent_wait_s: float = 1.0,
        spill_max_bytes: int | None = None,
        alerts: Alerts | None = None,
        write_file: WriteFileFn = write_durably,
    ) -> None:
        if batch_size < 1 or interval_s <= 0 or max_memory_rows < batch_size:
            raise ValueError("need batch_size >= 1, interval_s > 0 and max_memory_rows >= batch_size")
        self.urgent = frozenset(urgent)  # tables whose rows are flushed at once and first (signals)
        self._tables = {name: _Table(name, fn, urgent=name in self.urgent) for name, fn in tables.items()}
        self._urgent_tables = [t for t in self._tables.values() if t.urgent]
        self.urgent_wait_s = urgent_wait_s
        self._urgent_changed = asyncio.Event()
        self.batch_size = batch_size
        self.interval_s = interval_s
        self.max_memory_rows = max_memory_rows
        self.spill_dir = spill_dir
        self.hooks: PipelineHooks = hooks if hooks is not None else NullHooks()
        self.breaker = breaker or CircuitBreaker("database")
        # Retries of a failed write: the shared schedule, without jitter (one writer per process).
        self.backoff = Backoff(base=backoff_base_s, factor=2.0, cap=backoff_cap_s, jitter=0.0)
        self._attempt = 0
        self._retry_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._seq = itertools.count()
        self.last_error: str | None = None
        self.last_success: float | None = None
        self.spill_max_bytes = spill_max_bytes
        self.alerts = alerts
        self._write_file = write_file
        self._spill_bytes = 0  # bytes of the pending spill files this writer knows of
        self._spill_attempt = 0
        self._spill_retry_at = 0.0
        self.spill_error: str | None = None

    # -- the hot path ----------------------------------------------------------------------------
    def put(self, table: str, rows: Sequence[object]) -> None:
        """Queue rows for ``table`` (never blocks or raises; spills the oldest rows when over the bound)."""
        if not rows:
            return
        t = self._tables[table]
        t.rows.extend(rows)
        self.hooks.on_buffered(self.pending_rows())
        if len(t.rows) > self.max_memory_rows:
            self._spill(t, len(t.rows) - self.max_memory_rows + self.batch_size)
        if len(t.rows) >= self.batch_size or table in self.urgent:
            t.wake.set()

    # -- state -----------------------------------------------------------------------------------
    def pending_rows(self, table: str | None = None) -> int:
        """Rows accepted but not yet written (memory; spill files are counted in :meth:`spilled_files`)."""
        tables = [self._tables[table]] if table else self._tables.values()
        return sum(len(t.rows) for t in tables)

    def spilled_files(self) -> int:
        return sum(len(t.spill_files) for t in self._tables.values())

    async def urgent_written(self, timeout_s: float = 0.25) -> None:
        """Wait (at most ``timeout_s``, and ``urgent_wait_s``) until the urgent tables' queued rows are
        written, or cannot be now (backing off, breaker open): the engine's deferred rest of a minute
        runs after its signals' commit (``LiveEngine.process_many(defer=True)``). Bounded, so a slow
        database holds the consumer back by that much at most (the commit goes on meanwhile)."""
        await self._yield_to_urgent(timeout_s)

    def stats(self, table: str) -> TableStats:
        return self._tables[table].stats

    @property
    def healthy(self) -> bool:
        return self.breaker.state == "closed"

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> asyncio.Task[None]:
        """Start the background flush loops (one per table, so a slow table never delays another).

        The returned task ends only after :meth:`close`; if it ends before (an unexpected error), the
        owner must treat that as fatal (:class:`~tickwise.pipelines.live.session.LiveSession` does):
        rows would be accepted and never written.
        """
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="live-writer")
        return self._task

    async def _run(self) -> None:
        await asyncio.gather(*(self._run_table(t) for t in self._tables.values()))
        if not self._closing:
            raise WriterStopped("the live writer's flush loops ended before close()")

    async def _run_table(self, t: _Table) -> None:
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(t.wake.wait(), self.interval_s)
            t.wake.clear()
            async with t.lock:
                await self._flush_table(t)

    async def flush(self) -> bool:
        """Write everything pending now (respecting backoff/breaker); True when nothing is left."""

        async def locked(t: _Table) -> bool:
            async with t.lock:
                return await self._flush_table(t)

        # Urgent tables are listed (and so started) first; the others yield to them in _write_next.

        ordered = sorted(self._tables.values(), key=lambda t: not t.urgent)
        return all(await asyncio.gather(*(locked(t) for t in ordered)))

    async def _flush_table(self, t: _Table) -> bool:
        while t.spill_files or t.rows:
            if not await self._write_next(t):
                return False
        return True

    async def close(self, timeout_s: float = 10.0) -> bool:
        """Stop the flush loop, write what can be written within ``timeout_s``, spill the rest."""
        self._closing = True
        for t in self._tables.values():
            t.wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        deadline = time.monotonic() + timeout_s
        done = False
        while time.monotonic() < deadline:
            self._retry_at = min(self._retry_at, time.monotonic())
            if not self.breaker.allow():
                await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
                continue
            try:
                if await self.flush():
                    done = True
                    break
            except Exception as exc:  # a broken sink or hook: spill what is left instead of losing it
                logger.opt(exception=exc).error("live writer: flush at shutdown failed: {}", exc)
                break
            await asyncio.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        if not done:
            for t in self._tables.values():
                if t.rows:
                    self._spill(t, len(t.rows), final=True)
            left = self.spilled_files()
            if left:
                logger.warning(
                    "live writer: database unavailable at shutdown; {} batch file(s) kept in {}",
                    left,
                    self.spill_dir,
                )
        return done

    def load_spilled(self) -> int:
        """Queue the spill files a previous run left (oldest first); returns their number.

        Leftover ``.tmp`` files (a spill interrupted by a crash) are deleted: their rows were never
        acknowledged as spilled, the renamed file is the only commit point. Spill files of another
        format (e.g. the pickle files of older builds) are moved aside, not loaded.
        """
        if self.spill_dir is None or not self.spill_dir.is_dir():
            return 0
        for tmp in self.spill_dir.glob("*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()
                logger.warning("live writer: removed {} (an interrupted spill)", tmp.name)
        n = 0
        for path in sorted(self.spill_dir.glob("spill-*"), key=_spill_order):
            if not path.is_file():
                continue
            if path.suffix != SUFFIX:
                self._reject_file(path, "foreign", f"not a {SUFFIX} file (an older build's format?)")
                continue
            table = path.name.split("-", 2)[1]
            if table in self._tables:
                self._tables[table].spill_files.append(path)
                with contextlib.suppress(OSError):
                    self._spill_bytes += path.stat().st_size
                n += 1
        for t in self._tables.values():
            if t.spill_files:
                t.wake.set()
        return n

    def rejected_dir(self) -> Path | None:
        return None if self.spill_dir is None else self.spill_dir / REJECTED_DIR

    # -- internals -------------------------------------------------------------------------------
    def _urgent_busy(self) -> bool:
        """An urgent table has a write in flight, or rows it can write now (not backing off)."""
        for u in self._urgent_tables:
            if u.in_flight:
                return True
            if (
                (u.rows or u.spill_files)
                and time.monotonic() >= self._retry_at
                and self.breaker.state == "closed"
            ):
                return True
        return False

    async def _yield_to_urgent(self, timeout_s: float | None = None) -> None:
        """Wait (at most ``urgent_wait_s`` or ``timeout_s``) until no urgent write is pending or in flight."""
        wait = self.urgent_wait_s if timeout_s is None else min(timeout_s, self.urgent_wait_s)
        deadline = time.monotonic() + wait
        while self._urgent_busy():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._urgent_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._urgent_changed.wait(), remaining)

    async def _write_next(self, t: _Table) -> bool:
        if not t.urgent and self._urgent_tables:
            await self._yield_to_urgent()
        now = time.monotonic()
        if now < self._retry_at or not self.breaker.allow():
            return False
        if t.urgent:
            t.in_flight = True
            try:
                return await self._write_one(t)
            finally:
                t.in_flight = False
                self._urgent_changed.set()
        return await self._write_one(t)

    async def _write_one(self, t: _Table) -> bool:
        from_file = bool(t.spill_files)
        if from_file:
            path = t.spill_files[0]
            try:
                batch = decode_batch(path.read_bytes(), t.name)
            except SpillFormatError as exc:
                t.spill_files.popleft()
                self._reject_file(path, "corrupt", str(exc), t)
                return True
            except Exception as exc:  # unreadable for any other reason: never stop the writer on it
                t.spill_files.popleft()
                self._reject_file(path, "unreadable", f"{type(exc).__name__}: {exc}", t)
                return True
        else:
            # islice walks the deque once; indexing it per row walks its blocks again for each row
            # (a minute's 3,000 signals: 0.7 -> 0.1 ms before their write).
            batch = list(itertools.islice(t.rows, min(self.batch_size, len(t.rows))))
        began = time.perf_counter()
        try:
            written = await self._write_checked(t, batch)
        except Exception as exc:  # transient: keep the rows, back off
            t.stats.failures += 1
            self.breaker.failure()
            self._retry_at = time.monotonic() + self.backoff.delay(self._attempt)
            self._attempt += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            self.hooks.on_db_write_failed(t.name)
            if self._attempt in (1, 5) or self._attempt % 20 == 0:
                logger.warning(
                    "live writer: {} write failed (attempt {}): {}", t.name, self._attempt, self.last_error
                )
            return False
        self.breaker.success()
        self._attempt = 0
        self.last_success = time.time()
        if from_file:
            t.spill_files.popleft()
            with contextlib.suppress(OSError):
                size = path.stat().st_size
                path.unlink()
                self._spill_bytes = max(0, self._spill_bytes - size)
        else:
            for _ in range(len(batch)):
                t.rows.popleft()
        t.stats.written += written
        t.stats.batches += 1
        self.hooks.on_db_write(t.name, time.perf_counter() - began, len(batch))
        self.hooks.on_buffered(self.pending_rows())
        return True

    async def _write_checked(self, t: _Table, batch: list[object]) -> int:
        """Write ``batch``; an invalid batch is bisected and its bad rows set aside (not retried)."""
        try:
            await t.write(batch)
            return len(batch)
        except DataValidationError as exc:
            if len(batch) == 1:
                t.stats.rejected += 1
                logger.error("live writer: {} row rejected and set aside: {}", t.name, exc)
                self._dead_letter(t, batch)
                return 0
        mid = len(batch) // 2
        return await self._write_checked(t, batch[:mid]) + await self._write_checked(t, batch[mid:])

    def _spill(self, t: _Table, n: int, *, final: bool = False) -> None:
        """Move the ``n`` oldest rows of ``t`` to spill files; what cannot be spilled is bounded.

        Rows leave memory only once their file is on disk. When spilling fails (a full disk, the byte
        cap) the rows stay in memory up to ``max_memory_rows`` and the oldest rows beyond it are dropped,
        counted and alerted; ``final`` (shutdown) drops everything that could not be spilled.
        """
        n = min(n, len(t.rows))
        if n <= 0:
            return
        if self.spill_dir is None:
            # No disk configured: keep them in memory rather than lose them (the bound is then soft).
            if final:
                self._drop(t, len(t.rows), "no spill directory at shutdown")
            return
        if not final and time.monotonic() < self._spill_retry_at:
            self._bound_memory(t)
            return
        spilled = 0
        try:
            self.spill_dir.mkdir(parents=True, exist_ok=True)
            while spilled < n:
                size = min(self.batch_size, n - spilled)
                chunk = [t.rows[i] for i in range(size)]
                data = encode_batch(t.name, chunk)
                if self.spill_max_bytes is not None and self._spill_bytes + len(data) > self.spill_max_bytes:
                    raise OSError(
                        errno.ENOSPC,
                        f"live.spill_max_bytes ({self.spill_max_bytes}) reached: "
                        f"{self._spill_bytes} bytes of spill files pending",
                    )
                path = self.spill_dir / f"spill-{t.name}-{time.time_ns()}-{next(self._seq):08d}{SUFFIX}"
                self._write_file(path, data)
                for _ in range(size):
                    t.rows.popleft()
                t.spill_files.append(path)
                t.stats.spilled += size
                self._spill_bytes += len(data)
                spilled += size
            self._spill_attempt = 0
            self.spill_error = None
        except (OSError, TypeError) as exc:
            # TypeError: a row of a type the spill format does not know (a bug): as unspillable as ENOSPC.
            self.spill_error = f"{type(exc).__name__}: {exc}"
            self._spill_retry_at = time.monotonic() + SPILL_BACKOFF.delay(self._spill_attempt)
            self._spill_attempt += 1
            if self._spill_attempt in (1, 5) or self._spill_attempt % 20 == 0:
                logger.error(
                    "live writer: cannot spill {} rows to {} ({}); attempt {}",
                    t.name,
                    self.spill_dir,
                    self.spill_error,
                    self._spill_attempt,
                )
            if final:
                self._drop(t, len(t.rows), f"cannot spill at shutdown: {self.spill_error}")
            else:
                self._bound_memory(t)
        if spilled:
            self.hooks.on_spilled(spilled)

    def _bound_memory(self, t: _Table) -> None:
        """Drop the oldest rows of ``t`` beyond ``max_memory_rows`` (the explicit drop policy)."""
        excess = len(t.rows) - self.max_memory_rows
        if excess > 0:
            self._drop(t, excess, f"cannot spill: {self.spill_error or 'spill directory unavailable'}")

    def _drop(self, t: _Table, n: int, why: str) -> None:
        n = min(n, len(t.rows))
        if n <= 0:
            return
        for _ in range(n):
            t.rows.popleft()
        t.stats.dropped += n
        self.hooks.on_spill_dropped(t.name, n)
        message = f"live writer: dropped {n} {t.name} row(s) ({t.stats.dropped} in all): {why}"
        logger.error(message)
        if self.alerts is not None:
            self.alerts.notify("critical", f"rows_dropped_{t.name}", message)

    def _reject_file(self, path: Path, reason: str, detail: str, t: _Table | None = None) -> None:
        """Move an unloadable spill file to ``rejected/`` (kept for inspection), count and alert it."""
        target = None
        size = 0
        with contextlib.suppress(OSError):
            size = path.stat().st_size
        if self.spill_dir is not None:
            with contextlib.suppress(OSError):
                rejected = self.spill_dir / REJECTED_DIR
                rejected.mkdir(parents=True, exist_ok=True)
                target = rejected / path.name
                os.replace(path, target)
        if target is None:  # could not move it: at least never load it again
            with contextlib.suppress(OSError):
                path.unlink()
        if t is not None:
            t.stats.rejected_files += 1
            self._spill_bytes = max(0, self._spill_bytes - size)
        self.hooks.on_spill_rejected(reason)
        message = f"live writer: spill file {path.name} set aside in {target or '(deleted)'}: {detail}"
        logger.error(message)
        if self.alerts is not None:
            self.alerts.notify("warning", "spill_file_rejected", message)

    def _dead_letter(self, t: _Table, rows: list[object]) -> None:
        if self.spill_dir is None:
            return
        path = self.spill_dir / REJECTED_DIR / f"rows-{t.name}-{time.time_ns()}-{next(self._seq):08d}{SUFFIX}"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._write_file(path, encode_batch(t.name, rows))
        except (OSError, TypeError) as exc:
            logger.error(
                "live writer: cannot keep the rejected {} row(s) in {}: {}", t.name, path.parent, exc
            )
