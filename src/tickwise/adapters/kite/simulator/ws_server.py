"""The simulator's Kite ticker WebSocket (kite-protocol.md sections 2 and 7.1), on ``websockets``.

* Upgrade: ``?api_key=&access_token=`` validated in ``process_request``: 403 when invalid or expired,
  429 when the api_key already holds ``max_connections_per_key`` connections; scripted ``reject``
  faults answer first.
* Client messages ``{"a": "subscribe"|"unsubscribe"|"mode", "v": ...}``; integer tokens only;
  idempotent; default mode ``quote``; ``mode`` for an unsubscribed token subscribes it (lenient).
  More than ``max_tokens_per_connection`` tokens -> text error, the first ones are kept.
* On subscribe / mode: one frame at once with the last-value-cache packets of those tokens.
* Streaming: every ``stream_interval`` real seconds, every snapshot whose exchange second lies after the
  connection's last covered second for that token (the subscribe instant, then the previous cycle) is
  sent, so no snapshot after the last-value-cache packet is skipped and candles rebuilt from the ticks
  equal the REST candles at any speed; a ``mode`` message for a subscribed token changes only the mode.
  Batched into frames of at most 3,000 packets; in ``ltp`` mode only when the price moved.
  Idle connections get a 1-byte ``0x00`` heartbeat every ``heartbeat_interval`` real seconds.
* Faults (see :mod:`faults`) act on every open connection when they fire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tickwise.adapters.kite.codec import encode_packet, encode_raw_frame
from tickwise.adapters.kite.simulator.faults import Fault
from tickwise.adapters.kite.simulator.state import SimState
from tickwise.domain.tick import Tick
from tickwise.domain.time import IST

MODES = ("ltp", "quote", "full")
MAX_PACKETS_PER_FRAME = 3000
MAX_CATCH_UP_S = 900
TOO_MANY = "Can't subscribe to more than 3000 instruments."


@dataclass(eq=False)
class Client:
    """One ticker connection: its subscriptions and the fault state acting on it."""

    ws: ServerConnection
    api_key: str
    modes: dict[int, str] = field(default_factory=dict)  # token -> mode
    since: dict[int, int] = field(default_factory=dict)  # token -> last exchange second already covered
    last_ltp: dict[int, float] = field(default_factory=dict)
    last_send: float = 0.0  # loop time of the last frame (data or heartbeat)
    stall_until: float = 0.0
    delay_until: float = 0.0
    held: list[bytes] = field(default_factory=list)
    next_frame_faults: list[str] = field(default_factory=list)
    reorder_pending: bool = False
    reorder_slot: bytes | None = None
    sent_frames: int = 0


class TickerServer:
    """Kite-compatible ticker server over a :class:`SimState`."""

    def __init__(self, state: SimState) -> None:
        self.state = state
        self.clients: set[Client] = set()
        self._by_key: dict[str, set[ServerConnection]] = {}
        self._server: Server | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._refuse_until = 0.0

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> int:
        self._server = await serve(
            self._handler,
            host,
            port,
            process_request=self._process_request,
            max_size=2**20,
            ping_interval=None,
        )
        self._loop_task = asyncio.create_task(self._stream_loop(), name="kite-sim-stream")
        sock = next(iter(self._server.sockets))
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        if self._loop_task:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    # -- handshake ---------------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        loop = asyncio.get_running_loop()
        state = self.state
        state.faults.due(state.clock.now())
        if loop.time() < self._refuse_until:
            return _respond(connection, HTTPStatus.SERVICE_UNAVAILABLE, "Service restarting")
        status = state.faults.next_handshake_reject()
        if status is not None:
            return _respond(connection, HTTPStatus(status), "Simulated handshake rejection")
        query = parse_qs(urlsplit(request.path).query)
        api_key = (query.get("api_key") or [""])[0]
        access_token = (query.get("access_token") or [""])[0]
        if not state.sessions.validate(api_key, access_token):
            return _respond(connection, HTTPStatus.FORBIDDEN, "Invalid api_key or access_token")
        holders = self._by_key.setdefault(api_key, set())
        if len(holders) >= state.config.max_connections_per_key:
            return _respond(connection, HTTPStatus.TOO_MANY_REQUESTS, "Too many connections")
        holders.add(connection)
        # Release the slot however the connection ends (even if the handshake fails after this point).
        asyncio.get_running_loop().create_task(self._release(api_key, connection))
        return None

    async def _release(self, api_key: str, connection: ServerConnection) -> None:
        await connection.wait_closed()
        self._by_key.get(api_key, set()).discard(connection)

    # -- connection --------------------------------------------------------------------------------

    async def _handler(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path if ws.request else "/").query)
        client = Client(ws=ws, api_key=(query.get("api_key") or [""])[0])
        client.last_send = asyncio.get_running_loop().time()
        self.clients.add(client)
        try:
            async for message in ws:
                if isinstance(message, str):
                    await self._on_message(client, message)
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(client)

    async def _on_message(self, client: Client, text: str) -> None:
        try:
            msg = json.loads(text)
            action, value = msg["a"], msg.get("v")
        except (ValueError, TypeError, KeyError):
            return  # malformed: ignored, as Kite does
        if action == "subscribe" and isinstance(value, list):
            added = self._subscribe(client, [t for t in value if _is_token(t)], None)
            await self._send_lvc(client, added)
        elif action == "unsubscribe" and isinstance(value, list):
            for t in value:
                if _is_token(t):
                    client.modes.pop(t, None)
                    client.since.pop(t, None)
                    client.last_ltp.pop(t, None)
        elif action == "mode" and isinstance(value, list) and len(value) == 2 and value[0] in MODES:
            tokens = [t for t in (value[1] if isinstance(value[1], list) else []) if _is_token(t)]
            changed = self._subscribe(client, tokens, value[0])
            await self._send_lvc(client, changed)

    def _subscribe(self, client: Client, tokens: list[int], mode: str | None) -> list[int]:
        limit = self.state.config.max_tokens_per_connection
        accepted: list[int] = []
        refused = False
        now_second = int(self.state.clock.now().timestamp())
        for t in tokens:
            if t not in client.modes:
                if len(client.modes) >= limit:
                    refused = True
                    continue
                client.modes[t] = mode or "quote"
                client.since[t] = now_second
            elif mode:
                client.modes[t] = mode
            if self.state.universe.get(t) is not None:
                accepted.append(t)
        if refused:
            asyncio.get_running_loop().create_task(
                self._send_text(client, {"type": "error", "data": TOO_MANY})
            )
        return accepted

    async def _send_text(self, client: Client, payload: dict[str, object]) -> None:
        with contextlib.suppress(ConnectionClosed):
            await client.ws.send(json.dumps(payload))

    async def _send_lvc(self, client: Client, tokens: list[int]) -> None:
        if not tokens:
            return
        now = self.state.clock.now()
        packets = []
        for t in dict.fromkeys(tokens):
            # The snapshot at the token's stream position (the subscribe instant, or the last second
            # streamed): a ``mode`` message re-sends it in the new mode without jumping ahead of the
            # stream, so the client sees neither a hole nor an older tick after this packet.
            since = client.since.get(t)
            at = now if since is None else min(now, datetime.fromtimestamp(since, IST))
            tick = self.state.market.last_snapshot(t, at)
            client.last_ltp[t] = tick.last_price
            packets.append(encode_packet(tick, client.modes[t]))
        await self._send_data(client, packets)

    # -- sending -----------------------------------------------------------------------------------

    async def _send_data(self, client: Client, packets: list[bytes]) -> None:
        for i in range(0, len(packets), MAX_PACKETS_PER_FRAME):
            chunk = packets[i : i + MAX_PACKETS_PER_FRAME]
            count = None
            while client.next_frame_faults:
                fault = client.next_frame_faults.pop(0)
                if fault == "malformed":
                    count = len(chunk) + 1
                elif fault == "unknown_length":
                    chunk = [*chunk, b"\xee" * 20]
                elif fault == "duplicate":
                    chunk = [p for p in chunk for _ in (0, 1)]
                elif fault == "negative":
                    token = chunk[0][:4] if chunk else (408065).to_bytes(4, "big")
                    chunk = [*chunk, token + (-100).to_bytes(4, "big", signed=True)]
                elif fault == "reorder":
                    client.reorder_pending = True
            frame = encode_raw_frame(chunk, count)
            if client.reorder_pending:  # hold this frame back and send it after the next one
                client.reorder_pending = False
                client.reorder_slot = frame
                continue
            await self._send_frame(client, frame)
            if client.reorder_slot is not None:
                held, client.reorder_slot = client.reorder_slot, None
                await self._send_frame(client, held)

    async def _send_frame(self, client: Client, frame: bytes) -> None:
        loop_time = asyncio.get_running_loop().time()
        if loop_time < client.stall_until:
            return
        if loop_time < client.delay_until:
            client.held.append(frame)
            return
        client.last_send = loop_time
        client.sent_frames += 1
        with contextlib.suppress(ConnectionClosed):
            await client.ws.send(frame)

    async def _stream_loop(self) -> None:
        cfg = self.state.config
        while True:
            await asyncio.sleep(cfg.stream_interval)
            try:
                await self._cycle()
            except Exception as exc:  # keep streaming: one bad cycle must not kill the server
                print(f"kite simulator: stream cycle failed: {type(exc).__name__}: {exc}")

    async def _cycle(self) -> None:
        state = self.state
        now = state.clock.now()
        loop_time = asyncio.get_running_loop().time()
        for fault in state.faults.take_ws_faults(now):
            await self._apply(fault, loop_time)
        second = int(now.timestamp())
        clients = list(self.clients)
        # Each token streams from the oldest point any client still needs (its ``since``), not from
        # the previous cycle: a client that subscribed before the first cycle, or between two cycles,
        # must get every snapshot after its last-value-cache packet.
        oldest: dict[int, int] = {}
        for c in clients:
            for t in c.modes:
                if state.universe.get(t) is not None:
                    s = c.since.get(t, second)
                    oldest[t] = min(oldest.get(t, s), s)
        snapshots: dict[int, list[Tick]] = {}
        until = datetime.fromtimestamp(second, IST)
        for t, s in oldest.items():
            if second > s:
                # A jump of the clock streams at most MAX_CATCH_UP_S simulated seconds (the rest is skipped).
                after = datetime.fromtimestamp(max(s, second - MAX_CATCH_UP_S), IST)
                snapshots[t] = state.market.snapshots_between(t, after, until)
        for client in clients:
            if client.held and loop_time >= client.delay_until:
                held, client.held = client.held, []
                for frame in held:
                    await self._send_frame(client, frame)
            packets: list[bytes] = []
            for t, mode in list(client.modes.items()):
                since = client.since.get(t, second)
                for tick in snapshots.get(t, ()):
                    ts = tick.exchange_timestamp
                    if ts is None or int(ts.timestamp()) <= since:
                        continue
                    if mode == "ltp" and client.last_ltp.get(t) == tick.last_price:
                        continue
                    client.last_ltp[t] = tick.last_price
                    packets.append(encode_packet(tick, mode))
                if t in oldest:
                    client.since[t] = max(client.since.get(t, second), second)
            if packets:
                await self._send_data(client, packets)
            idle = loop_time - client.last_send >= state.config.heartbeat_interval
            if idle and loop_time >= max(client.stall_until, client.delay_until):
                client.last_send = loop_time
                with contextlib.suppress(ConnectionClosed):
                    await client.ws.send(b"\x00")

    async def _apply(self, fault: Fault, loop_time: float) -> None:
        for client in list(self.clients):
            action = fault.action
            if action == "abort":
                transport = client.ws.transport
                transport.abort()
            elif action == "close":
                asyncio.get_running_loop().create_task(client.ws.close(int(fault.arg(0, 1000))))
            elif action == "restart":
                asyncio.get_running_loop().create_task(client.ws.close(1012))
            elif action == "stall":
                client.stall_until = loop_time + fault.arg(0, 8.0)
            elif action == "delay":
                client.delay_until = loop_time + fault.arg(0, 2.0)
            else:
                client.next_frame_faults.append(action)
        if fault.action == "restart":
            self._refuse_until = loop_time + fault.arg(0, 2.0)


def _is_token(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**32


def _respond(connection: ServerConnection, status: HTTPStatus, text: str) -> Response:
    response = connection.respond(status, text + "\n")
    return response
