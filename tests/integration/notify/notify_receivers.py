"""Real local receivers for the notification tests: an aiohttp HTTP server and an aiosmtpd SMTP server."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class HttpReceiver:
    """Records every POST by path; ``/fail/...`` answers 500 and ``/hang/...`` never answers in time."""

    base: str = ""
    posts: dict[str, list[Any]] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def got(self, path: str) -> list[Any]:
        return self.posts.get(path, [])

    async def wait_for(self, path: str, count: int = 1, timeout_s: float = 5.0) -> list[Any]:
        async with asyncio.timeout(timeout_s):
            while len(self.got(path)) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.got(path)


@asynccontextmanager
async def http_receiver() -> AsyncIterator[HttpReceiver]:
    receiver = HttpReceiver()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        if request.path.startswith("/hang/"):
            await asyncio.sleep(30)
        if request.path.startswith("/fail/"):
            return web.Response(status=500, text="down")
        receiver.posts.setdefault(request.path, []).append(json.loads(body))
        receiver.arrived.set()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.base = f"http://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        await runner.cleanup()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        parsed = message_from_bytes(content, policy=policy.default)  # unfolds long Subject lines
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 OK"


@dataclass
class SmtpServer:
    host: str
    port: int
    inbox: _Inbox

    @property
    def messages(self) -> list[EmailMessage]:
        return self.inbox.messages

    async def wait_for(self, count: int = 1, timeout_s: float = 5.0) -> list[EmailMessage]:
        async with asyncio.timeout(timeout_s):
            # The SMTP server runs in its own thread and event loop: poll rather than share an Event.
            while len(self.messages) < count:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        return self.messages


def self_signed_tls(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) TLS contexts for 127.0.0.1 from a throw-away self-signed certificate."""
    cert, key = directory / "smtp.crt", directory / "smtp.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


@contextmanager
def smtp_server(
    *, credentials: tuple[str, str] | None = None, tls: ssl.SSLContext | None = None
) -> Iterator[SmtpServer]:
    """An aiosmtpd server on 127.0.0.1 (in its own thread); with ``credentials`` it checks AUTH, with
    ``tls`` it offers STARTTLS and requires it before anything else."""
    inbox = _Inbox()
    kwargs: dict[str, Any] = {}
    if tls is not None:
        kwargs.update(tls_context=tls, require_starttls=True)
    if credentials is not None:

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            ok = (
                isinstance(data, LoginPassword)
                and (data.login.decode(), data.password.decode()) == credentials
            )
            if ok:
                inbox.logins.append(data.login.decode())
            return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

        # Plain-text AUTH is fine on loopback in a test; production servers use STARTTLS (see the docs).
        # AUTH is offered, not required (aiosmtpd warns about required AUTH without TLS): a client that
        # logs in with a wrong password is still refused, which is what the tests check.
        kwargs.update(authenticator=authenticate, auth_require_tls=tls is not None)
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, inbox)
    finally:
        controller.stop()
