"""KiteTicker state machine against a small scripted WebSocket server on loopback."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from tickwise.adapters.kite.errors import KiteNetworkError, KiteTokenError
from tickwise.adapters.kite.ticker import KiteTicker, TickerState
from tickwise.domain.backoff import Backoff
from tickwise.domain.errors import BrokerError
from tickwise.domain.tick import Tick
from tickwise.domain.time import IST

sys.path.insert(0, str(Path(__file__).parent))
from fake_kite_ws import eventually, fake_kite_ws

FAST = Backoff(base=0.02, factor=2.0, cap=0.2, jitter=0.1)


def _ticker(url: str, **kwargs: object) -> KiteTicker:
    kwargs.setdefault("backoff", FAST)
    kwargs.setdefault("watchdog_s", 5.0)
    return KiteTicker("key", "tok", root=url, **kwargs)  # type: ignore[arg-type]


def _ltp(token: int, price: float) -> Tick:
    return Tick(instrument_token=token, mode="ltp", tradable=True, last_price=price)


async def test_subscribe_sends_numbers_and_modes_and_ticks_arrive_stamped() -> None:
    async with fake_kite_ws() as server, _ticker(server.url) as ticker:
        await ticker.wait_connected(5)
        await ticker.subscribe([408065, 256265], mode="full")
        await ticker.subscribe([412675], mode="ltp")
        await eventually(lambda: len(server.conns[0].registry) == 3, what="subscriptions")
        assert server.conns[0].registry == {408065: "full", 256265: "full", 412675: "ltp"}
        assert server.conns[0].messages[0] == {"a": "subscribe", "v": [408065, 256265]}
        assert server.headers[0]["X-Kite-Version"] == "3"
        await server.send_ticks([_ltp(408065, 1500.0), _ltp(412675, 72.755)])
        first = await asyncio.wait_for(ticker.queue.get(), 2)
        second = await asyncio.wait_for(ticker.queue.get(), 2)
        assert (first.instrument_token, first.last_price) == (408065, 1500.0)
        assert second.last_price == pytest.approx(72.755)
        assert first.received_at is not None and first.received_at.tzinfo is not None
        assert ticker.stats.frames == 1 and ticker.stats.ticks == 2


async def test_registry_is_replayed_after_the_server_drops_the_connection() -> None:
    gaps = []
    async with fake_kite_ws() as server, _ticker(server.url, on_gap=gaps.append) as ticker:
        await ticker.subscribe([1, 2, 3], mode="quote")
        await ticker.subscribe([4], mode="full")
        await ticker.subscribe([5], mode="ltp")
        await ticker.wait_connected(5)
        await eventually(lambda: len(server.conns[0].registry) == 5)
        await server.conns[0].ws.close(1011, "boom")
        await eventually(lambda: len(server.conns) == 2 and len(server.conns[1].registry) == 5, what="replay")
        msgs = server.conns[1].messages
        assert msgs[0] == {"a": "subscribe", "v": [1, 2, 3, 4, 5]}
        assert {"a": "mode", "v": ["full", [4]]} in msgs and {"a": "mode", "v": ["ltp", [5]]} in msgs
        assert {"a": "mode", "v": ["quote", [1, 2, 3]]} in msgs
        assert server.conns[1].registry == ticker.subscriptions
        await eventually(lambda: len(gaps) == 1, what="gap callback")
        assert ticker.stats.reconnects == 1 and ticker.stats.disconnects == 1
        gap = ticker.gaps[0]
        assert gap.reconnected_at is not None and gap.disconnected_at <= gap.reconnected_at
        assert gap.disconnected_at.utcoffset() is not None and "1011" in gap.reason


async def test_silent_connection_is_declared_dead_by_the_watchdog() -> None:
    # Generous margins: on a loaded CI machine a heartbeat can be late, so stall whichever connection
    # is live now and give the watchdog and the reconnect time to happen.
    async with fake_kite_ws(heartbeat_s=0.1) as server, _ticker(server.url, watchdog_s=1.0) as ticker:
        await ticker.subscribe([7])
        await ticker.wait_connected(5)
        await asyncio.sleep(0.3)
        server.live[-1].stalled = True
        await eventually(lambda: ticker.stats.watchdog_timeouts >= 1, 10, "watchdog")
        await eventually(
            lambda: len(server.live) == 1 and server.live[0].registry == {7: "quote"}, 10, "reconnect"
        )
        # The gap is recorded once the dead session has wound down (just after the counter moved).
        await eventually(lambda: any("watchdog" in gap.reason for gap in ticker.gaps), 5, "watchdog gap")
        assert ticker.stats.heartbeats >= 2


async def test_a_stall_of_the_clients_own_event_loop_is_not_taken_for_a_silent_server() -> None:
    # CPU-bound work blocking the loop for longer than the watchdog: the frames wait in the socket,
    # the server did nothing wrong, so there must be no watchdog disconnect (and no gap to repair).
    async with fake_kite_ws(heartbeat_s=0.1) as server, _ticker(server.url, watchdog_s=1.0) as ticker:
        await ticker.subscribe([7])
        await ticker.wait_connected(5)
        await asyncio.sleep(0.3)
        time.sleep(2.5)  # noqa: ASYNC251 - the point: a blocked event loop
        beats = ticker.stats.heartbeats
        await eventually(lambda: ticker.stats.heartbeats >= beats + 3, 5, "heartbeats after the stall")
        assert ticker.stats.watchdog_timeouts == 0 and ticker.stats.disconnects == 0
        assert ticker.stats.client_stalls >= 1
        assert len(server.conns) == 1 and not ticker.gaps


async def test_forbidden_handshake_stops_the_ticker_with_a_token_error() -> None:
    async with fake_kite_ws(valid_tokens={"other"}) as server:
        ticker = _ticker(server.url)
        with pytest.raises(KiteTokenError, match="403"):
            await asyncio.wait_for(ticker.run(), 5)
        assert ticker.state is TickerState.AUTH_FAILED
        assert server.handshakes == 1
        with pytest.raises(KiteTokenError):
            await ticker.wait_connected(1)


async def test_forbidden_handshake_retries_once_with_a_reloaded_token() -> None:
    async def reload() -> str:
        return "tok"

    async with fake_kite_ws() as server:
        server.reject = [403]
        async with KiteTicker("key", "stale", root=server.url, backoff=FAST, token_reloader=reload) as ticker:
            await ticker.wait_connected(5)
            assert ticker.access_token == "tok"
            assert server.handshakes == 2


async def test_rejected_handshakes_back_off_and_too_many_connections_waits_longer() -> None:
    async with fake_kite_ws() as server:
        server.reject = [500, 429, 500]
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with _ticker(server.url, too_many_connections_delay_s=0.4) as ticker:
            await ticker.subscribe([9])
            await ticker.wait_connected(5)
            assert loop.time() - start >= 0.4
            assert ticker.stats.failed_connects == 3
            assert server.live[0].registry == {9: "quote"}


async def test_ticker_gives_up_after_max_attempts_with_an_explicit_state() -> None:
    async with fake_kite_ws() as server:
        server.reject = [503] * 10
        ticker = _ticker(server.url, max_attempts=3)
        with pytest.raises(KiteNetworkError, match="3 attempts"):
            await asyncio.wait_for(ticker.run(), 5)
        assert ticker.state is TickerState.GAVE_UP


async def test_full_queue_drops_newest_and_counts_it() -> None:
    async with fake_kite_ws() as server, _ticker(server.url, queue_size=2) as ticker:
        await ticker.wait_connected(5)
        await server.send_ticks([_ltp(1, 1.0), _ltp(2, 2.0), _ltp(3, 3.0), _ltp(4, 4.0)])
        await eventually(lambda: ticker.stats.ticks == 4)
        assert ticker.stats.dropped == 2 and ticker.queue.qsize() == 2
        assert [ticker.queue.get_nowait().instrument_token for _ in range(2)] == [1, 2]


async def test_text_messages_and_garbage_never_break_the_receive_loop() -> None:
    seen: list[tuple[str, object]] = []

    def on_text(kind: str, data: object) -> None:
        seen.append((kind, data))
        raise RuntimeError("callback bug")

    async with fake_kite_ws() as server, _ticker(server.url, on_text=on_text) as ticker:
        await ticker.wait_connected(5)
        await server.send_text('{"type": "error", "data": "Can\'t subscribe to more than 3000 instruments."}')
        await server.send_text('{"type": "order", "data": {"order_id": "1"}}')
        await server.send_text("not json")
        await server.send_raw(
            bytes.fromhex("0002 0008 00063a01 000249f0".replace(" ", ""))
        )  # count > packets
        await server.send_raw(bytes.fromhex("0001 0005 0102030405".replace(" ", "")))  # unknown length
        await server.send_ticks([_ltp(408065, 1500.0)])
        await eventually(lambda: ticker.queue.qsize() == 2, what="ticks after garbage")
        assert seen == [
            ("error", "Can't subscribe to more than 3000 instruments."),
            ("order", {"order_id": "1"}),
        ]
        assert ticker.stats.text_messages == 3 and ticker.stats.text_unparsed == 1
        assert ticker.stats.text_by_type == {"error": 1, "order": 1}
        assert ticker.stats.handler_errors == 2
        assert ticker.stats.decode_errors >= 2
        assert ticker.stats.connects == 1 and ticker.state is TickerState.CONNECTED


async def test_large_universes_are_sharded_over_connections() -> None:
    async with (
        fake_kite_ws() as server,
        _ticker(server.url, max_tokens_per_connection=3, max_connections=3) as ticker,
    ):
        await ticker.subscribe(range(1, 8), mode="ltp")
        await ticker.wait_connected(5)
        assert ticker.connections == 3
        await eventually(lambda: sum(len(c.registry) for c in server.live) == 7, what="sharded subscriptions")
        assert sorted(len(c.registry) for c in server.live) == [1, 3, 3]
        with pytest.raises(BrokerError, match="3 per connection"):
            await ticker.subscribe(range(100, 103))
        assert len(ticker.subscriptions) == 7
        await ticker.unsubscribe([1, 2, 3])
        await eventually(lambda: sum(len(c.registry) for c in server.live) == 4, what="unsubscribe")


async def test_invalid_tokens_and_modes_are_refused() -> None:
    ticker = KiteTicker("key", "tok", root="ws://127.0.0.1:9")
    with pytest.raises(ValueError, match="positive integers"):
        await ticker.subscribe(["408065"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="unknown tick mode"):
        await ticker.subscribe([1], mode="fast")
    assert ticker.subscriptions == {}
    assert "tok" not in repr(ticker)


async def test_close_ends_run_cleanly() -> None:
    async with fake_kite_ws() as server:
        ticker = _ticker(server.url, now=lambda: datetime(2026, 1, 1, 9, 15, tzinfo=IST))
        task = asyncio.create_task(ticker.run())
        await ticker.wait_connected(5)
        await ticker.close()
        await asyncio.wait_for(task, 5)
        assert ticker.state is TickerState.CLOSED and ticker.gaps == []
