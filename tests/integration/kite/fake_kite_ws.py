"""A minimal scriptable Kite-like WebSocket server for ticker tests (loopback, free port).

Not the simulator: just enough to exercise the client's state machine deterministically.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Request, Response, ServerConnection, serve

from tickwise.adapters.kite.codec import encode_frame
from tickwise.domain.tick import Tick


@dataclass
class Conn:
    ws: ServerConnection
    registry: dict[int, str] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    stalled: bool = False


class FakeKiteWs:
    def __init__(self, valid_tokens: set[str] | None = None, heartbeat_s: float = 0.2) -> None:
        self.valid_tokens = valid_tokens if valid_tokens is not None else {"tok"}
        self.heartbeat_s = heartbeat_s
        self.reject: list[int] = []  # statuses for the next handshakes
        self.conns: list[Conn] = []
        self.handshakes = 0
        self.headers: list[Any] = []
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def live(self) -> list[Conn]:
        return [c for c in self.conns if c.ws.state.name == "OPEN"]

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.handshakes += 1
        self.headers.append(request.headers)
        query = parse_qs(urlsplit(request.path).query)
        if self.reject:
            status = self.reject.pop(0)
            return connection.respond(HTTPStatus(status), "refused\n")
        if query.get("access_token", [""])[0] not in self.valid_tokens or query.get("api_key") != ["key"]:
            return connection.respond(HTTPStatus.FORBIDDEN, "bad token\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        conn = Conn(ws)
        self.conns.append(conn)
        beat = asyncio.create_task(self._heartbeat(conn))
        try:
            async for raw in ws:
                msg = json.loads(raw)
                conn.messages.append(msg)
                if msg["a"] == "subscribe":
                    for t in msg["v"]:
                        conn.registry.setdefault(t, "quote")
                elif msg["a"] == "unsubscribe":
                    for t in msg["v"]:
                        conn.registry.pop(t, None)
                elif msg["a"] == "mode":
                    for t in msg["v"][1]:
                        conn.registry[t] = msg["v"][0]
        except Exception:
            pass
        finally:
            beat.cancel()

    async def _heartbeat(self, conn: Conn) -> None:
        with contextlib.suppress(Exception):
            while True:
                await asyncio.sleep(self.heartbeat_s)
                if not conn.stalled:
                    await conn.ws.send(b"\x00")

    async def send_ticks(self, ticks: list[Tick], conn: Conn | None = None) -> None:
        for c in [conn] if conn else self.live:
            await c.ws.send(encode_frame(ticks))

    async def send_text(self, text: str) -> None:
        for c in self.live:
            await c.ws.send(text)

    async def send_raw(self, data: bytes) -> None:
        for c in self.live:
            await c.ws.send(data)


@contextlib.asynccontextmanager
async def fake_kite_ws(**kwargs: Any) -> AsyncIterator[FakeKiteWs]:
    fake = FakeKiteWs(**kwargs)
    async with serve(fake._handler, "127.0.0.1", 0, process_request=fake._process_request) as server:
        fake.port = next(iter(server.sockets)).getsockname()[1]
        yield fake


async def eventually(predicate: Any, timeout_s: float = 5.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
