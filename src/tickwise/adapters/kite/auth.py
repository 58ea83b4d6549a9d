"""Kite login: the access-token file, its 06:00 IST expiry, and the loopback request_token callback.

The daily flow (kite-protocol.md section 3.6): the user opens ``<login_url>?v=3&api_key=...`` in a
browser, Kite redirects to the app's redirect URL with ``request_token=...``, a loopback HTTP server
here captures it, and ``POST /session/token`` exchanges it (with the sha256 checksum) for an access
token, which is stored in a JSON file with mode 0600. The token expires at the next 06:00 IST after
login, so a token from yesterday is known to be dead before the market opens. Secrets never reach
the log: ``repr`` of every object holding one hides it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from loguru import logger

from tickwise.adapters.kite.rest import KiteRestClient, KiteSession
from tickwise.domain.errors import BrokerError
from tickwise.domain.time import IST
from tickwise.observability import logging as observability_logging

EXPIRY_TIME = time(6, 0)


def next_expiry(login_time: datetime) -> datetime:
    """The first 06:00 IST strictly after ``login_time`` (when Kite invalidates every access token)."""
    if login_time.tzinfo is None:
        raise ValueError("login_time must be tz-aware")
    local = login_time.astimezone(IST)
    candidate = datetime.combine(local.date(), EXPIRY_TIME, tzinfo=IST)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate


def login_url(base: str, api_key: str) -> str:
    """The browser login URL: ``<base>?v=3&api_key=<api_key>``."""
    return f"{base}?{urlencode({'v': 3, 'api_key': api_key})}"


@dataclass(frozen=True, slots=True)
class StoredToken:
    """An access token as kept on disk."""

    api_key: str
    access_token: str
    login_time: datetime  # tz-aware IST
    expires_at: datetime  # tz-aware IST, next 06:00 after login
    user_id: str = ""
    simulated: bool = False  # obtained from the local simulator, never valid against real Kite

    @classmethod
    def from_session(cls, session: KiteSession, *, simulated: bool = False) -> StoredToken:
        return cls(
            api_key=session.api_key,
            access_token=session.access_token,
            login_time=session.login_time,
            expires_at=next_expiry(session.login_time),
            user_id=session.user_id,
            simulated=simulated,
        )

    def is_valid(self, now: datetime | None = None) -> bool:
        return (now or datetime.now(IST)) < self.expires_at

    def __repr__(self) -> str:
        return (
            f"StoredToken(api_key={self.api_key!r}, user_id={self.user_id!r}, "
            f"login_time={self.login_time.isoformat()}, expires_at={self.expires_at.isoformat()}, "
            f"simulated={self.simulated})"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "api_key": self.api_key,
            "access_token": self.access_token,
            "user_id": self.user_id,
            "login_time": self.login_time.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "simulated": self.simulated,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoredToken:
        login_time = datetime.fromisoformat(str(data["login_time"]))
        if login_time.tzinfo is None:
            login_time = login_time.replace(tzinfo=IST)
        expires_raw = data.get("expires_at")
        expires_at = datetime.fromisoformat(str(expires_raw)) if expires_raw else next_expiry(login_time)
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=IST)
        return cls(
            api_key=str(data["api_key"]),
            access_token=str(data["access_token"]),
            login_time=login_time.astimezone(IST),
            expires_at=expires_at.astimezone(IST),
            user_id=str(data.get("user_id", "")),
            simulated=bool(data.get("simulated", False)),
        )


class TokenStore:
    """The JSON token file (mode 0600, written atomically)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> StoredToken | None:
        """The stored token, or None when there is no file; a corrupt file is a BrokerError."""
        try:
            raw = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise BrokerError(f"cannot read the Kite token file {self.path}: {exc}") from None
        try:
            token = StoredToken.from_json(json.loads(raw))
        except (ValueError, KeyError, TypeError) as exc:
            raise BrokerError(
                f"the Kite token file {self.path} is unreadable ({type(exc).__name__}); "
                "delete it and run `tickwise auth login`"
            ) from None
        # From now on the token is masked in every log line and error message, whatever prints it.
        observability_logging.masker.add(token.access_token)
        return token

    def save(self, token: StoredToken) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        # Create with 0600 from the start: the token must never be readable by others, even briefly.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(token.to_json(), handle, indent=2)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def clear(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True


class LoginCallbackServer:
    """A one-shot loopback HTTP server that captures ``request_token`` from Kite's login redirect.

    ``async with LoginCallbackServer(port) as cb: ...; token = await cb.wait(timeout_s)``. Port 0
    picks a free port (see ``.port`` / ``.redirect_url``).
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.host = host
        self._requested_port = port
        self.port = port
        self._server: asyncio.Server | None = None
        self._result: asyncio.Future[str] | None = None

    @property
    def redirect_url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    async def __aenter__(self) -> LoginCallbackServer:
        self._result = asyncio.get_running_loop().create_future()
        try:
            self._server = await asyncio.start_server(self._handle, self.host, self._requested_port)
        except OSError as exc:
            raise BrokerError(
                f"cannot listen for the Kite login redirect on {self.host}:{self._requested_port} ({exc}); "
                "free the port or set broker.redirect_port"
            ) from None
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def wait(self, timeout_s: float) -> str:
        """The captured request_token (BrokerError on a failed login or after ``timeout_s``)."""
        assert self._result is not None, "use `async with`"
        try:
            return await asyncio.wait_for(asyncio.shield(self._result), timeout_s)
        except TimeoutError:
            raise BrokerError(f"no Kite login redirect arrived within {timeout_s:g}s") from None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), 5.0)
            # Drain the headers; the request has no body we care about.
            while True:
                line = await asyncio.wait_for(reader.readline(), 5.0)
                if line in (b"\r\n", b"\n", b""):
                    break
            parts = request_line.decode("latin-1").split()
            target = parts[1] if len(parts) >= 2 else "/"
            query = parse_qs(urlsplit(target).query)
            token = (query.get("request_token") or [""])[0]
            status = (query.get("status") or ["success"])[0]
            if token and status == "success":
                body, code = "Login complete: you can close this window and return to tickwise.", "200 OK"
                if self._result is not None and not self._result.done():
                    self._result.set_result(token)
            elif "request_token" in query or "status" in query:
                body, code = f"Login failed (status={status}).", "400 Bad Request"
                if self._result is not None and not self._result.done():
                    self._result.set_exception(BrokerError(f"Kite login failed: status={status!r}"))
            else:
                body, code = "Waiting for the Kite login redirect.", "404 Not Found"
            payload = body.encode()
            writer.write(
                f"HTTP/1.1 {code}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (TimeoutError, OSError, UnicodeDecodeError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


BrowserOpener = Callable[[str], Awaitable[None] | None]


async def login_flow(
    rest: KiteRestClient,
    api_secret: str,
    *,
    login_base_url: str,
    callback: LoginCallbackServer,
    open_login: BrowserOpener,
    timeout_s: float = 300.0,
) -> KiteSession:
    """Run one login: show/open the login URL, capture the request_token, exchange it for a session.

    ``callback`` must already be running (``async with``); the app's redirect URL registered with
    Kite must point at it. ``open_login`` receives the login URL (print it, open a browser, or, for
    the simulator, fetch it as a browser would).
    """
    url = login_url(login_base_url, rest.api_key)
    result = open_login(url)
    if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
        await result
    request_token = await callback.wait(timeout_s)
    session = await rest.generate_session(request_token, api_secret)
    logger.info("kite login complete for user {!r}", session.user_id)
    return session
