"""Asyncio Kite ticker client on ``websockets`` (kite-protocol.md sections 2 and 6.1).

    async with KiteTicker(api_key, access_token, root="ws://127.0.0.1:8766") as ticker:
        await ticker.subscribe([408065, 256265], mode="full")
        tick = await ticker.queue.get()

Design:

* **Shards.** Kite allows 3000 instruments per connection and 3 connections per api_key, so the
  subscription registry (token -> mode) is split over up to ``max_connections`` shards, each with
  its own socket and reconnect loop. More than ``max_connections * max_tokens_per_connection``
  tokens is refused with a :class:`BrokerError` before anything changes.
* **Replay.** After every (re)connect a shard sends its whole registry: one ``subscribe`` with every
  token, then one ``mode`` message per mode group. The server treats duplicates idempotently.
* **Receive loop** only classifies, decodes and enqueues, and never raises: 1-byte binary frames are
  heartbeats, other binary frames go through :func:`codec.decode_frame` (ticks stamped with
  ``received_at``), text frames are JSON ``order``/``error``/``message`` events routed to
  ``on_text`` and counted.
* **Queue.** Ticks go onto a bounded ``asyncio.Queue``. Overflow policy ``drop_newest`` (default)
  never blocks the socket: a tick that does not fit is dropped and counted in ``stats.dropped``.
  ``block`` waits for room instead (the server then buffers, and the watchdog clock only restarts
  once the frame is handled, so a slow consumer is not mistaken for a dead feed).
* **Liveness.** Any frame (heartbeats included) refreshes the shard's clock; ``watchdog_s`` of silence
  aborts the socket and reconnects.
* **Reconnect.** Jittered exponential backoff (1 s x 2^n capped at 60 s by default), reset by every
  successful handshake; ``max_attempts`` consecutive failures -> terminal state ``gave_up``. A 429
  handshake (too many connections) waits at least ``too_many_connections_delay_s``. A 403 handshake
  means the token is invalid or expired: ``token_reloader`` (if given) is asked once for a renewed
  token, otherwise (or if that fails too) the ticker stops in state ``auth_failed`` and :meth:`run`
  raises :class:`KiteTokenError`.
* **Gaps.** Every lost connection is recorded as a :class:`DisconnectInterval` from the last frame
  received to the next successful handshake, so the live pipeline can backfill it with candles;
  ``on_gap`` is called when an interval closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from types import TracebackType
from urllib.parse import urlencode

from loguru import logger

from tickwise.adapters.kite.errors import KiteError
from tickwise.adapters.kite.ticker_connection import ConnectionSettings, TickerConnection, TickerLink
from tickwise.adapters.kite.ticker_state import (
    MODES,
    DisconnectInterval,
    GapHandler,
    OverflowPolicy,
    TextHandler,
    TickerOptions,
    TickerState,
    TickerStats,
    TokenReloader,
)
from tickwise.domain.backoff import Backoff
from tickwise.domain.errors import BrokerError
from tickwise.domain.tick import Tick
from tickwise.domain.time import IST

__all__ = [
    "MODES",
    "DisconnectInterval",
    "KiteTicker",
    "OverflowPolicy",
    "TickerOptions",
    "TickerState",
    "TickerStats",
]

DEFAULT_ROOT = "wss://ws.kite.trade"
MAX_TOKENS_PER_CONNECTION = 3000
MAX_CONNECTIONS = 3


class KiteTicker:
    """Kite WebSocket ticker: subscriptions, reconnects, liveness, bounded tick queue, gap records."""

    def __init__(
        self,
        api_key: str,
        access_token: str,
        *,
        root: str = DEFAULT_ROOT,
        queue: asyncio.Queue[Tick] | None = None,
        queue_size: int = 100_000,
        overflow: OverflowPolicy = "drop_newest",
        watchdog_s: float = 5.0,
        backoff: Backoff | None = None,
        max_attempts: int | None = 50,
        too_many_connections_delay_s: float = 30.0,
        connect_timeout_s: float = 10.0,
        max_tokens_per_connection: int = MAX_TOKENS_PER_CONNECTION,
        max_connections: int = MAX_CONNECTIONS,
        on_text: TextHandler | None = None,
        on_gap: GapHandler | None = None,
        token_reloader: TokenReloader | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        if overflow not in ("drop_newest", "block"):
            raise ValueError(f"overflow must be 'drop_newest' or 'block', not {overflow!r}")
        if watchdog_s <= 0:
            raise ValueError("watchdog_s must be > 0")
        if max_connections < 1 or max_tokens_per_connection < 1:
            raise ValueError("max_connections and max_tokens_per_connection must be >= 1")
        self.api_key = api_key
        self._access_token = access_token
        self.root = root
        self.queue: asyncio.Queue[Tick] = queue if queue is not None else asyncio.Queue(maxsize=queue_size)
        self.overflow: OverflowPolicy = overflow
        self.watchdog_s = watchdog_s
        self.backoff = backoff or Backoff(base=1.0, factor=2.0, cap=60.0, jitter=0.2)
        self.max_attempts = max_attempts
        self.too_many_connections_delay_s = too_many_connections_delay_s
        self.connect_timeout_s = connect_timeout_s
        self.max_tokens_per_connection = max_tokens_per_connection
        self.max_connections = max_connections
        self.on_text = on_text
        self.on_gap = on_gap
        self.token_reloader = token_reloader
        self.now: Callable[[], datetime] = now or (lambda: datetime.now(IST))
        self.stats = TickerStats()
        self.gaps: list[DisconnectInterval] = []
        self.state = TickerState.IDLE
        self.error: KiteError | None = None
        self._stop = asyncio.Event()
        self._settings = ConnectionSettings(
            watchdog_s=watchdog_s,
            backoff_delay=self.backoff.delay,
            max_attempts=max_attempts,
            too_many_connections_delay_s=too_many_connections_delay_s,
            connect_timeout_s=connect_timeout_s,
            overflow=overflow,
        )
        self._link = TickerLink(
            stats=self.stats,
            gaps=self.gaps,
            queue=self.queue,
            stop=self._stop,
            now=self._now,
            url=self._url,
            redact=self._redact,
            reload_token=self._reload_token,
            fail=self._fail,
            state_changed=self._refresh_state,
            ticker_state=lambda: self.state,
            gap_closed=self._gap_closed,
            text_event=self._text_event,
        )
        self._shards: list[TickerConnection] = [self._new_shard(0)]
        self._running = False
        self._run_task: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def __aenter__(self) -> KiteTicker:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def start(self) -> asyncio.Task[None]:
        """Run :meth:`run` in a background task (what ``async with`` does)."""
        if self._run_task is None:
            self._run_task = asyncio.create_task(self._run_quietly(), name="kite-ticker")
        return self._run_task

    async def _run_quietly(self) -> None:
        with contextlib.suppress(KiteError):
            await self.run()

    async def run(self) -> None:
        """Stream until :meth:`close` (returns) or a terminal failure (raises KiteTokenError/KiteNetworkError)."""
        if self._running:
            raise RuntimeError("KiteTicker.run() is already running")
        self._running = True
        try:
            for shard in self._shards:
                shard.start()
            await self._stop.wait()
        finally:
            await asyncio.gather(*(s.stop() for s in self._shards), return_exceptions=True)
            self._running = False
            if not self.state.terminal:
                self.state = TickerState.CLOSED
        if self.error is not None:
            raise self.error

    async def close(self) -> None:
        """Stop every connection; pending ticks stay in the queue."""
        if not self.state.terminal:
            self.state = TickerState.CLOSED
        self._stop.set()
        task = self._run_task
        if task is not None and task is not asyncio.current_task():
            await asyncio.gather(task, return_exceptions=True)
        elif not self._running:
            await asyncio.gather(*(s.stop() for s in self._shards), return_exceptions=True)

    async def wait_connected(self, timeout_s: float | None = None) -> None:
        """Wait until every shard that has subscriptions (and shard 0) is connected and replayed.

        Raises the terminal error if the ticker fails first, TimeoutError on timeout.
        """

        async def _wait() -> None:
            while True:
                if self.error is not None:
                    raise self.error
                if self.state.terminal:
                    raise BrokerError(f"ticker is {self.state.value}")
                if all(s.ready.is_set() for s in self._active_shards()):
                    return
                await asyncio.sleep(0.02)

        await asyncio.wait_for(_wait(), timeout_s)

    @property
    def access_token(self) -> str:
        return self._access_token

    def set_access_token(self, access_token: str) -> None:
        """Use a renewed token for the next (re)connect."""
        self._access_token = access_token

    def __repr__(self) -> str:
        return f"KiteTicker(root={self.root!r}, api_key={self.api_key!r}, state={self.state.value})"

    # -- subscriptions -----------------------------------------------------------------------
    @property
    def subscriptions(self) -> dict[int, str]:
        """Every subscribed token and its mode, over all connections."""
        merged: dict[int, str] = {}
        for shard in self._shards:
            merged.update(shard.registry)
        return merged

    @property
    def connections(self) -> int:
        """Number of shards (connections) in use."""
        return len(self._active_shards())

    def shard_registries(self) -> list[dict[int, str]]:
        return [dict(s.registry) for s in self._shards]

    async def subscribe(self, tokens: Iterable[int], mode: str = "quote") -> None:
        """Subscribe ``tokens`` in ``mode`` (``ltp``, ``quote`` or ``full``); idempotent."""
        _check_mode(mode)
        wanted = _tokens(tokens)
        plan = self._assign(wanted)
        for shard, shard_tokens in plan.items():
            for token in shard_tokens:
                shard.registry[token] = mode
            await shard.send({"a": "subscribe", "v": shard_tokens})
            await shard.send({"a": "mode", "v": [mode, shard_tokens]})
            if self._running:
                shard.start()

    async def set_mode(self, tokens: Iterable[int], mode: str) -> None:
        """Change the mode of subscribed tokens (unknown tokens are subscribed in that mode)."""
        await self.subscribe(tokens, mode)

    async def unsubscribe(self, tokens: Iterable[int]) -> None:
        """Stop streaming ``tokens``; unknown tokens are ignored."""
        wanted = set(_tokens(tokens))
        for shard in self._shards:
            mine = [t for t in shard.registry if t in wanted]
            if not mine:
                continue
            for token in mine:
                del shard.registry[token]
            await shard.send({"a": "unsubscribe", "v": mine})

    def _assign(self, tokens: Sequence[int]) -> dict[TickerConnection, list[int]]:
        """Map tokens to shards (existing subscription first, then the first shard with room)."""
        owner = {t: s for s in self._shards for t in s.registry}
        room = [self.max_tokens_per_connection - len(s.registry) for s in self._shards]
        room += [self.max_tokens_per_connection] * (self.max_connections - len(self._shards))
        new = [t for t in dict.fromkeys(tokens) if t not in owner]
        if len(new) > sum(room):
            limit = self.max_connections * self.max_tokens_per_connection
            raise BrokerError(
                f"cannot subscribe {len(new)} more instruments: Kite allows {self.max_tokens_per_connection} "
                f"per connection and {self.max_connections} connections per api_key ({limit} in all); "
                f"{len(owner)} are already subscribed"
            )
        plan: dict[TickerConnection, list[int]] = {}
        for token in dict.fromkeys(tokens):
            if token in owner:
                plan.setdefault(owner[token], []).append(token)
        index = 0
        for token in new:
            while room[index] == 0:
                index += 1
            while index >= len(self._shards):
                self._shards.append(self._new_shard(len(self._shards)))
            shard = self._shards[index]
            plan.setdefault(shard, []).append(token)
            room[index] -= 1
        return plan

    def _new_shard(self, index: int) -> TickerConnection:
        return TickerConnection(index, self._settings, self._link)

    def _active_shards(self) -> list[TickerConnection]:
        return [s for s in self._shards if s.index == 0 or s.registry]

    # -- the TickerLink side: what the shards call back ------------------------------------------
    def _now(self) -> datetime:
        return self.now()

    async def _reload_token(self) -> bool:
        """After a 403: ask ``token_reloader`` for a renewed token; True if one is now in place."""
        if self.token_reloader is None:
            return False
        try:
            renewed = await self.token_reloader()
        except Exception as exc:
            logger.warning("kite ticker token reloader failed: {}: {}", type(exc).__name__, exc)
            return False
        if renewed and renewed != self._access_token:
            self.set_access_token(renewed)
            logger.info("kite ticker: retrying with a renewed access token")
            return True
        return False

    async def _gap_closed(self, gap: DisconnectInterval) -> None:
        handler = self.on_gap
        if handler is not None:
            await self._call(handler, lambda: handler(gap))

    async def _text_event(self, kind: str, data: object) -> None:
        handler = self.on_text
        if handler is not None:
            await self._call(handler, lambda: handler(kind, data))

    def _fail(self, state: TickerState, error: KiteError) -> None:
        if self.error is None:
            self.error = error
            self.state = state
            logger.error("kite ticker stopped ({}): {}", state.value, error)
        self._stop.set()

    def _refresh_state(self) -> None:
        if self.state.terminal:
            return
        states = {s.state for s in self._active_shards()}
        for candidate in (TickerState.BACKOFF, TickerState.CONNECTING, TickerState.CONNECTED):
            if candidate in states:
                self.state = candidate
                return

    async def _call(self, handler: object, invoke: Callable[[], Awaitable[None] | None]) -> None:
        """Run one user callback (sync or async); it must never break the receive loop."""
        try:
            result = invoke()
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            self.stats.handler_errors += 1
            logger.warning("kite ticker callback {} raised {}: {}", handler, type(exc).__name__, exc)

    def _redact(self, text: str) -> str:
        """Hide the access token in text that may quote the URL (exception messages)."""
        return text.replace(self._access_token, "***") if self._access_token else text

    def _url(self) -> str:
        separator = "&" if "?" in self.root else "?"
        return f"{self.root}{separator}{urlencode({'api_key': self.api_key, 'access_token': self._access_token})}"


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown tick mode {mode!r} (expected one of {', '.join(MODES)})")


def _tokens(tokens: Iterable[int]) -> list[int]:
    out: list[int] = []
    for token in tokens:
        if isinstance(token, bool) or not isinstance(token, int) or token <= 0:
            # Kite silently ignores string tokens; refuse them loudly instead.
            raise ValueError(f"instrument tokens must be positive integers, got {token!r}")
        out.append(token)
    return list(dict.fromkeys(out))
