"""Kite login: the access-token file, its 06:00 IST expiry, and the loopback request_token callback.

The daily flow (kite-protocol.md section 3.6): the user opens ``<login_url>?v=3&api_key=...`` in a
browser, Kite redirects to the app's redirect URL with ``request_token=...``, a loopback HTTP server
here captures it, and ``POST /session/token`` exchanges it (with the sha256 checksum) for an access
token, which is stored in a JSON file with mode 0600. The token expires at the next 06:00 IST after
login, so a token from yesterday is known to be dead before the market opens. Secrets never reach
the log: ``repr`` of every object holding one hides it.

The callback is hardened (issue #13, finding 5): the login URL carries a random one-time nonce in
Kite's ``redirect_params`` (Kite appends those parameters to the redirect), and the callback accepts
a request_token, or a failure status, only with that nonce, so another local process or a web page
cannot deliver its own token first or abort the login with a forged ``status=cancelled``. The first
valid redirect is the only one: the server stops listening as soon as it has it. Requests are read
with bounded line lengths and header counts; anything malformed gets a 4xx, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import secrets
from collections.abc import Awaitable, Callable, Mapping
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
NONCE_PARAM = "tickwise_state"
_MAX_LINE = 8192  # bytes of one request or header line
_MAX_HEADERS = 100


def next_expiry(login_time: datetime) -> datetime:
    """The first 06:00 IST strictly after ``login_time`` (when Kite invalidates every access token)."""
    if login_time.tzinfo is None:
        raise ValueError("login_time must be tz-aware")
    local = login_time.astimezone(IST)
    candidate = datetime.combine(local.date(), EXPIRY_TIME, tzinfo=IST)
    if candidate <= local:
        candidate += timedelta(days=1)
    return candidate


def login_url(base: str, api_key: str, redirect_params: Mapping[str, str] | None = None) -> str:
    """The browser login URL: ``<base>?v=3&api_key=<api_key>[&redirect_params=<urlencoded>]``.

    Kite appends ``redirect_params`` (itself a URL-encoded query string) to the redirect URL.
    """
    query: dict[str, str | int] = {"v": 3, "api_key": api_key}
    if redirect_params:
        query["redirect_params"] = urlencode(dict(redirect_params))
    return f"{base}?{urlencode(query)}"


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
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        # Create with 0600 from the start: the token must never be readable by others, even briefly.
        # O_EXCL|O_NOFOLLOW: a file or symlink planted at the temporary name never receives the token.
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise BrokerError(
                f"cannot write the Kite token file next to {self.path}: {exc.strerror}"
            ) from None
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(token.to_json(), handle, indent=2)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
            _fsync_dir(self.path.parent)
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


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (best effort: not every filesystem allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class _BadRequest(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class LoginCallbackServer:
    """A one-shot loopback HTTP server that captures ``request_token`` from Kite's login redirect.

    ``async with LoginCallbackServer(port) as cb: ...; token = await cb.wait(timeout_s)``. Port 0
    picks a free port (see ``.port`` / ``.redirect_url``). ``nonce`` must reach Kite through
    ``login_url(..., redirect_params=cb.redirect_params)``; redirects without it are refused (403).
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.host = host
        self._requested_port = port
        self.port = port
        self._server: asyncio.Server | None = None
        self._result: asyncio.Future[str] | None = None
        self.nonce = secrets.token_urlsafe(24)
        self.rejected = 0  # redirects refused (no or wrong nonce, malformed)

    @property
    def redirect_params(self) -> dict[str, str]:
        """What the login URL passes to Kite to be echoed back on the redirect."""
        return {NONCE_PARAM: self.nonce}

    @property
    def redirect_url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    async def __aenter__(self) -> LoginCallbackServer:
        self._result = asyncio.get_running_loop().create_future()
        try:
            self._server = await asyncio.start_server(
                self._handle, self.host, self._requested_port, limit=_MAX_LINE
            )
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

    async def _read_line(self, reader: asyncio.StreamReader) -> bytes:
        try:
            return await asyncio.wait_for(reader.readuntil(b"\n"), 5.0)
        except asyncio.LimitOverrunError:
            raise _BadRequest("414 URI Too Long") from None
        except asyncio.IncompleteReadError as exc:
            if len(exc.partial) >= _MAX_LINE:
                raise _BadRequest("414 URI Too Long") from None
            return exc.partial

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                body, code = self._respond(await self._read_request(reader))
            except _BadRequest as bad:
                self.rejected += 1
                body, code = "Bad request.", bad.code
            payload = body.encode()
            writer.write(
                f"HTTP/1.1 {code}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (TimeoutError, OSError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _read_request(self, reader: asyncio.StreamReader) -> str:
        """The request target (path and query); headers are drained, bounded in length and number."""
        request_line = await self._read_line(reader)
        for _ in range(_MAX_HEADERS):
            line = await self._read_line(reader)
            if line in (b"\r\n", b"\n", b""):
                break
        else:
            raise _BadRequest("431 Request Header Fields Too Large")
        parts = request_line.decode("latin-1").split()
        if len(parts) != 3 or parts[0] != "GET" or not parts[2].startswith("HTTP/"):
            raise _BadRequest("400 Bad Request")
        return parts[1]

    def _respond(self, target: str) -> tuple[str, str]:
        query = parse_qs(urlsplit(target).query)
        if self._result is None or self._result.done():
            return "This login callback has already been used.", "410 Gone"
        nonce = (query.get(NONCE_PARAM) or [""])[0]
        if not hmac.compare_digest(nonce.encode(), self.nonce.encode()):
            if "request_token" in query or "status" in query:
                # Someone else's redirect (another process, a web page): refused, and the login goes on.
                self.rejected += 1
                logger.warning("refused a login redirect without this login's nonce")
                return "This redirect does not belong to the login in progress.", "403 Forbidden"
            return "Waiting for the Kite login redirect.", "404 Not Found"
        token = (query.get("request_token") or [""])[0]
        status = (query.get("status") or ["success"])[0]
        if token and status == "success":
            self._result.set_result(token)
            # Single use: stop listening now; nothing can be delivered after the real redirect.
            if self._server is not None:
                self._server.close()
            return "Login complete: you can close this window and return to tickwise.", "200 OK"
        self._result.set_exception(BrokerError(f"Kite login failed: status={status[:40]!r}"))
        if self._server is not None:
            self._server.close()
        return "Login failed.", "400 Bad Request"


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
    url = login_url(login_base_url, rest.api_key, callback.redirect_params)
    result = open_login(url)
    if asyncio.iscoroutine(result) or isinstance(result, Awaitable):
        await result
    request_token = await callback.wait(timeout_s)
    session = await rest.generate_session(request_token, api_secret)
    logger.info("kite login complete for user {!r}", session.user_id)
    return session
