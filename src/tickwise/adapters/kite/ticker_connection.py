"""One ticker WebSocket connection (a shard of the subscription registry) and its reconnect loop.

Owned and driven by :class:`tickwise.adapters.kite.ticker.KiteTicker`; see that module for the design.
The ticker hands each connection its settings and a :class:`TickerLink` (the state and callbacks the
two share), so this module never imports the ticker and never reaches into its private members.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from loguru import logger
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from tickwise.adapters.kite.codec import decode_frame
from tickwise.adapters.kite.errors import KiteError, KiteNetworkError, KiteTokenError
from tickwise.adapters.kite.ticker_state import (
    MODES,
    DisconnectInterval,
    OverflowPolicy,
    TickerState,
    TickerStats,
)
from tickwise.domain.tick import Tick


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """How every connection of one ticker behaves; fixed when the ticker is built."""

    watchdog_s: float
    backoff_delay: Callable[[int], float]  # seconds before reconnect attempt n (0-based)
    max_attempts: int | None
    too_many_connections_delay_s: float
    connect_timeout_s: float
    overflow: OverflowPolicy


@dataclass(frozen=True, slots=True)
class TickerLink:
    """What a connection shares with the ticker that owns it: counters, queue, gaps and callbacks."""

    stats: TickerStats
    gaps: list[DisconnectInterval]
    queue: asyncio.Queue[Tick]
    stop: asyncio.Event  # set when the ticker closes or fails: every connection winds down
    now: Callable[[], datetime]  # wall clock that stamps ticks and gaps
    url: Callable[[], str]  # handshake URL with the current access token
    redact: Callable[[str], str]  # hides the access token in text that may quote the URL
    reload_token: Callable[[], Awaitable[bool]]  # after a 403: True when a renewed token is in place
    fail: Callable[[TickerState, KiteError], None]  # stop the whole ticker in a terminal state
    state_changed: Callable[[], None]  # a connection changed state: recompute the ticker's
    ticker_state: Callable[[], TickerState]
    gap_closed: Callable[[DisconnectInterval], Awaitable[None]]  # never raises
    text_event: Callable[[str, object], Awaitable[None]]  # never raises


class TickerConnection:
    """One WebSocket connection and its share of the registry."""

    def __init__(self, index: int, settings: ConnectionSettings, link: TickerLink) -> None:
        self.index = index
        self.settings = settings
        self.link = link
        self.registry: dict[int, str] = {}
        self.state = TickerState.IDLE
        self.ready = asyncio.Event()  # connected and replayed
        self.ws: ClientConnection | None = None
        self.task: asyncio.Task[None] | None = None
        self.last_frame_at: datetime | None = None  # wall clock (link.now) of the last frame
        self._last_frame_mono = 0.0
        self._open_gap: DisconnectInterval | None = None
        self._watchdog_fired = False

    def start(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._loop(), name=f"kite-ticker-shard-{self.index}")

    async def stop(self) -> None:
        ws = self.ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2.0)
        task = self.task
        if task is not None and not task.done():
            try:
                await asyncio.wait_for(asyncio.shield(task), 3.0)
            except (TimeoutError, asyncio.CancelledError, Exception):
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def send(self, message: dict[str, object]) -> None:
        """Send a control message if connected; otherwise the next replay carries it."""
        ws = self.ws
        if ws is None:
            return
        with contextlib.suppress(ConnectionClosed):  # the reconnect replays the registry
            await ws.send(json.dumps(message))

    def _set_state(self, state: TickerState) -> None:
        self.state = state
        self.link.state_changed()

    # -- connection loop ----------------------------------------------------------------------
    async def _loop(self) -> None:
        t, cfg = self.link, self.settings
        attempt = 0
        reloaded = False
        try:
            while not t.stop.is_set():
                self._set_state(TickerState.CONNECTING)
                delay: float | None = None
                try:
                    ws = await connect(
                        t.url(),
                        additional_headers={"X-Kite-Version": "3"},
                        open_timeout=cfg.connect_timeout_s,
                        close_timeout=2.0,
                        compression=None,
                        max_size=2**20,
                    )
                except InvalidStatus as exc:
                    status = exc.response.status_code
                    t.stats.failed_connects += 1
                    if status == 403:
                        if not reloaded:
                            reloaded = True
                            if await t.reload_token():
                                continue
                        t.fail(
                            TickerState.AUTH_FAILED,
                            KiteTokenError(
                                "the ticker WebSocket refused the access token (HTTP 403): it is invalid or "
                                "expired (tokens expire at 06:00 IST)",
                                status=403,
                            ),
                        )
                        return
                    delay = cfg.backoff_delay(attempt)
                    if status == 429:
                        # Too many connections for this api_key: others hold them; wait longer.
                        delay = max(delay, cfg.too_many_connections_delay_s)
                    reason = f"handshake refused with HTTP {status}"
                except (OSError, TimeoutError, InvalidHandshake, asyncio.IncompleteReadError) as exc:
                    t.stats.failed_connects += 1
                    delay = cfg.backoff_delay(attempt)
                    reason = t.redact(f"connect failed: {type(exc).__name__}: {exc}")
                else:
                    attempt = 0
                    reloaded = False
                    reason = await self._session(ws)
                    if t.stop.is_set():
                        return
                    delay = cfg.backoff_delay(0)
                    logger.info("kite ticker shard {} disconnected ({}); reconnecting", self.index, reason)
                    self._set_state(TickerState.BACKOFF)
                    await self._sleep(delay)
                    continue
                # A failed attempt.
                attempt += 1
                if cfg.max_attempts is not None and attempt >= cfg.max_attempts:
                    t.fail(
                        TickerState.GAVE_UP,
                        KiteNetworkError(
                            f"the ticker could not connect after {attempt} attempts (last: {reason})"
                        ),
                    )
                    return
                logger.info(
                    "kite ticker shard {}: {}; attempt {} in {:.2f}s", self.index, reason, attempt + 1, delay
                )
                self._set_state(TickerState.BACKOFF)
                await self._sleep(delay)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never let a shard die silently
            logger.exception("kite ticker shard {} crashed", self.index)
            t.fail(
                TickerState.GAVE_UP, KiteNetworkError(f"ticker shard crashed: {type(exc).__name__}: {exc}")
            )
        finally:
            self.ready.clear()
            self.ws = None
            final = t.ticker_state()
            if final.terminal:
                self.state = final

    async def _sleep(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.link.stop.wait(), delay)

    async def _session(self, ws: ClientConnection) -> str:
        """Serve one connection until it is lost; return why it ended."""
        t = self.link
        loop = asyncio.get_running_loop()
        self.ws = ws
        t.stats.connects += 1
        now = t.now()
        if self._open_gap is not None:
            t.stats.reconnects += 1
            self._open_gap.reconnected_at = now
            gap, self._open_gap = self._open_gap, None
            await t.gap_closed(gap)
        self.last_frame_at = now
        self._last_frame_mono = loop.time()
        self._watchdog_fired = False
        self._set_state(TickerState.CONNECTED)
        watchdog = asyncio.create_task(self._watchdog(ws), name=f"kite-ticker-watchdog-{self.index}")
        reason = "closed"
        try:
            await self._replay(ws)
            self.ready.set()
            reason = await self._receive(ws)
        finally:
            self.ready.clear()
            self.ws = None
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
            if self._watchdog_fired:
                reason = f"no frame for {self.settings.watchdog_s:g}s (watchdog)"
                ws.transport.abort()
            else:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 1.0)
        if not t.stop.is_set():
            t.stats.disconnects += 1
            gap = DisconnectInterval(
                shard=self.index, disconnected_at=self.last_frame_at or t.now(), reason=reason
            )
            self._open_gap = gap
            t.gaps.append(gap)
        return reason

    async def _replay(self, ws: ClientConnection) -> None:
        """Send the registry: one subscribe with every token, then one mode message per mode group."""
        registry = dict(self.registry)
        if not registry:
            return
        with contextlib.suppress(ConnectionClosed):
            await ws.send(json.dumps({"a": "subscribe", "v": list(registry)}))
            for mode in MODES:
                group = [token for token, m in registry.items() if m == mode]
                if group:
                    await ws.send(json.dumps({"a": "mode", "v": [mode, group]}))

    async def _watchdog(self, ws: ClientConnection) -> None:
        t = self.link
        watchdog_s = self.settings.watchdog_s
        loop = asyncio.get_running_loop()
        # Silence is counted only while this event loop was free to receive: if our own loop was blocked
        # (CPU-bound work in the same process), frames sit unread in the socket and the time we
        # oversleep is ours, not the server's. Without this, every long stall of the client would read
        # as a dead feed and cost a reconnect and a repair.
        tick = min(0.25, watchdog_s / 4)
        while True:
            silent = loop.time() - self._last_frame_mono
            if silent >= watchdog_s:
                t.stats.watchdog_timeouts += 1
                self._watchdog_fired = True
                # A stalled peer never completes a closing handshake: drop the TCP connection.
                ws.transport.abort()
                return
            nap = min(tick, watchdog_s - silent + 0.01)
            woke_due = loop.time() + nap
            await asyncio.sleep(nap)
            late = loop.time() - woke_due
            if late > tick:
                self._last_frame_mono += late
                t.stats.client_stalls += 1

    async def _receive(self, ws: ClientConnection) -> str:
        t = self.link
        stats = t.stats
        loop = asyncio.get_running_loop()
        while True:
            try:
                message = await ws.recv()
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else 1006
                return f"connection closed (code {code})"
            except Exception as exc:  # e.g. a protocol error surfaced by the library
                return t.redact(f"receive failed: {type(exc).__name__}: {exc}")
            self._last_frame_mono = loop.time()
            self.last_frame_at = now = t.now()
            try:
                if isinstance(message, str):
                    await self._text(message)
                elif len(message) == 1:
                    stats.heartbeats += 1
                else:
                    stats.frames += 1
                    ticks = decode_frame(message, stats.decode, received_at=now)
                    stats.ticks += len(ticks)
                    await self._enqueue(ticks)
            except Exception as exc:  # the receive loop never raises
                stats.handler_errors += 1
                logger.warning("kite ticker: failed to handle a frame: {}: {}", type(exc).__name__, exc)
            # A blocking put may have taken a while: that was us, not the server.
            self._last_frame_mono = loop.time()

    async def _enqueue(self, ticks: list[Tick]) -> None:
        t = self.link
        queue = t.queue
        if self.settings.overflow == "block":
            for tick in ticks:
                await queue.put(tick)
            t.stats.enqueued += len(ticks)
            return
        for tick in ticks:
            try:
                queue.put_nowait(tick)
            except asyncio.QueueFull:
                t.stats.dropped += 1
            else:
                t.stats.enqueued += 1

    async def _text(self, message: str) -> None:
        t = self.link
        t.stats.text_messages += 1
        try:
            payload = json.loads(message)
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
            t.stats.text_unparsed += 1
            return
        kind: str = payload["type"]
        data = payload.get("data")
        t.stats.text_by_type[kind] = t.stats.text_by_type.get(kind, 0) + 1
        if kind == "error":
            t.stats.server_errors.append(str(data))
            del t.stats.server_errors[:-100]
            logger.warning("kite ticker server error: {}", data)
        await t.text_event(kind, data)
