"""Health of a live session: feed alive, tick age per instrument, database, model, queue depth.

:meth:`HealthMonitor.snapshot` is a plain dict (logged every ``log_every_s`` and written to
``status_path`` as JSON when given, so ``cat .data/live-status.json`` shows the state); state changes
(feed down/up, database unreachable/back) raise alerts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from loguru import logger

from tickwise.ports.alerts import Alerts

if TYPE_CHECKING:
    from tickwise.pipelines.live.session import LiveSession


class HealthSnapshot(TypedDict):
    at: float  # unix seconds
    market_time: str
    feed_alive: bool
    feed_state: str
    reconnects: int
    tick_age_max_s: float | None
    stale_instruments: list[int]
    db_reachable: bool
    db_pending_rows: int
    db_spilled_files: int
    db_last_error: str | None
    model_loaded: str
    queue_depth: int
    repair_windows: int
    bars: int
    signals: int


class HealthMonitor:
    def __init__(
        self,
        *,
        model_version: str,
        interval_s: float = 1.0,
        log_every_s: float = 30.0,
        stale_tick_s: float = 10.0,
        status_path: Path | None = None,
        alerts: Alerts | None = None,
    ) -> None:
        self.model_version = model_version
        self.interval_s = interval_s
        self.log_every_s = log_every_s
        self.stale_tick_s = stale_tick_s
        self.status_path = status_path
        self.alerts = alerts
        self._feed_ok = True
        self._db_ok = True
        self.last: HealthSnapshot | None = None

    def snapshot(self, session: LiveSession) -> HealthSnapshot:
        """The session's health now, as a JSON-ready dict."""
        now = time.time()
        feed = session.feed
        ages = {t: round(age, 3) for t, age in session.consumer.tick_ages(now).items()}
        stale = sorted(t for t, age in ages.items() if age > self.stale_tick_s)
        state = str(feed.state) if feed is not None else "idle"
        return {
            "at": now,
            "market_time": session.clock.now().isoformat(),
            "feed_alive": state == "connected",
            "feed_state": state,
            "reconnects": feed.stats.reconnects if feed is not None else 0,
            "tick_age_max_s": max(ages.values()) if ages else None,
            "stale_instruments": stale[:20],
            "db_reachable": session.writer.healthy,
            "db_pending_rows": session.writer.pending_rows(),
            "db_spilled_files": session.writer.spilled_files(),
            "db_last_error": session.writer.last_error,
            "model_loaded": self.model_version,
            "queue_depth": feed.queue.qsize() if feed is not None else 0,
            "repair_windows": len(session.repairs.windows),
            "bars": session.engine.bars,
            "signals": session.engine.signals,
        }

    async def run(self, session: LiveSession) -> None:
        last_log = 0.0
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                snap = self.snapshot(session)
            except Exception as exc:  # health reporting must never stop the pipeline
                logger.warning("health snapshot failed: {}", exc)
                continue
            self.last = snap
            self._transitions(snap)
            if self.status_path is not None:
                with contextlib.suppress(OSError):
                    self.status_path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = self.status_path.with_suffix(".tmp")
                    tmp.write_text(json.dumps(snap, default=str, indent=1))
                    tmp.replace(self.status_path)
            if snap["at"] - last_log >= self.log_every_s:
                last_log = snap["at"]
                logger.info(
                    "live {market_time}: feed {feed_state}, bars {bars}, signals {signals}, queue {queue_depth}, "
                    "db {db_reachable} (pending {db_pending_rows}), repairs pending {repair_windows}",
                    **snap,
                )

    def _transitions(self, snap: HealthSnapshot) -> None:
        if self.alerts is None:
            return
        if snap["feed_alive"] != self._feed_ok:
            self._feed_ok = snap["feed_alive"]
            self.alerts.notify(
                "warning" if not self._feed_ok else "info",
                "feed",
                f"feed {'up' if self._feed_ok else 'down'} ({snap['feed_state']})",
            )
        if snap["db_reachable"] != self._db_ok:
            self._db_ok = snap["db_reachable"]
            self.alerts.notify(
                "critical" if not self._db_ok else "info",
                "database",
                "database reachable again"
                if self._db_ok
                else f"database unreachable: {snap['db_last_error']}",
            )
