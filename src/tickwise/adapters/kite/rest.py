"""Async REST client for Kite Connect v3 (and the local simulator): session, instruments, candles, quotes.

    async with KiteRestClient(api_key, access_token=token, root="http://127.0.0.1:8765") as kite:
        instruments = await kite.instruments("NSE")
        candles = await kite.historical(408065, Timeframe.M1, start, end)

Every request carries ``X-Kite-Version: 3`` and, once authenticated, ``Authorization: token k:t``.
Requests are paced by a per-class + shared rate limiter, and 429/5xx/timeouts/transport errors are
retried with jittered exponential backoff (never sooner than a ``Retry-After`` header asks, up to
60 s); 400 and 403 never are, nor is any other 4xx whose body is not Kite's JSON envelope (a proxy's
HTML error page will not change on a retry). The first 403 TokenException fires
``on_session_expired`` once (e.g. to stop streams and ask the user to log in again).
"""

from __future__ import annotations

import email.utils
import hashlib
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import Any

import httpx
import pandas as pd
from loguru import logger

from tickwise.adapters.kite.errors import (
    KiteDataError,
    KiteError,
    KiteNetworkError,
    KiteRateLimitError,
    KiteTokenError,
    error_from_response,
)
from tickwise.adapters.kite.mapping import (
    MAX_SPAN_DAYS,
    CandleRow,
    as_ist,
    candle_row,
    interval_name,
    maybe_gunzip,
    parse_instruments_csv,
    timeframe_for,
    to_candle,
)
from tickwise.adapters.kite.rate_limit import Clock, RateLimiter, SystemClock, endpoint_class
from tickwise.domain.backoff import Backoff
from tickwise.domain.candle import CANDLE_FRAME_COLUMNS, Candle
from tickwise.domain.instrument import Instrument
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe

KITE_VERSION = "3"
DEFAULT_ROOT = "https://api.kite.trade"
CANDLE_COLUMNS = list(CANDLE_FRAME_COLUMNS)

SessionExpiredHook = Callable[[KiteTokenError], Awaitable[None] | None]


def checksum(api_key: str, request_token: str, api_secret: str) -> str:
    """``sha256(api_key + request_token + api_secret)`` as lowercase hex (kite-protocol.md section 3.6)."""
    return hashlib.sha256(f"{api_key}{request_token}{api_secret}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class KiteSession:
    """What ``POST /session/token`` returns that tickwise keeps."""

    api_key: str
    access_token: str
    user_id: str
    login_time: datetime  # tz-aware IST
    public_token: str = ""

    def __repr__(self) -> str:  # never print the token
        return (
            f"KiteSession(api_key={self.api_key!r}, user_id={self.user_id!r}, login_time={self.login_time})"
        )


def historical_chunks(start: datetime, end: datetime, interval: str) -> list[tuple[datetime, datetime]]:
    """Split the inclusive IST range ``[start, end]`` into request windows of at most N-1 days.

    Windows are contiguous and do not overlap: each starts one second after the previous one ends
    (Kite's ``from``/``to`` have one-second resolution and are both inclusive), so no candle falls
    between two windows. The merge still dedupes by timestamp in case the server is looser.
    """
    if interval not in MAX_SPAN_DAYS:
        raise ValueError(f"unknown historical interval {interval!r}")
    if end < start:
        raise ValueError(f"historical range ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    span = timedelta(days=MAX_SPAN_DAYS[interval] - 1)
    chunks: list[tuple[datetime, datetime]] = []
    cursor = start
    while cursor <= end:
        chunk_end = min(end, cursor + span)
        chunks.append((cursor, chunk_end))
        cursor = chunk_end + timedelta(seconds=1)
    return chunks


def merge_candle_rows(chunks: Sequence[Sequence[CandleRow]]) -> list[CandleRow]:
    """Merge chunked responses: one row per timestamp (the later chunk wins), sorted by time."""
    by_time: dict[datetime, CandleRow] = {}
    for rows in chunks:
        for row in rows:
            by_time[row.time] = row
    return [by_time[t] for t in sorted(by_time)]


class KiteRestClient:
    """httpx-based Kite Connect REST client. Use as an async context manager."""

    def __init__(
        self,
        api_key: str,
        access_token: str | None = None,
        *,
        root: str = DEFAULT_ROOT,
        timeout_s: float = 7.0,
        max_retries: int = 5,
        backoff: Backoff | None = None,
        rate_limiter: RateLimiter | None = None,
        clock: Clock | None = None,
        on_session_expired: SessionExpiredHook | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_key = api_key
        self._access_token = access_token
        self.root = root.rstrip("/")
        self.max_retries = max_retries
        self.backoff = backoff or Backoff(base=0.5, factor=2.0, cap=10.0, jitter=0.2)
        self.clock: Clock = clock or SystemClock()
        self.rate_limiter = rate_limiter or RateLimiter(clock=self.clock)
        self.on_session_expired = on_session_expired
        self._expired_fired = False
        self.retries = 0  # retried requests, for observability
        self._http = httpx.AsyncClient(
            base_url=self.root,
            timeout=httpx.Timeout(timeout_s),
            headers={"X-Kite-Version": KITE_VERSION, "Accept-Encoding": "gzip"},
            transport=transport,
        )

    # -- lifecycle ---------------------------------------------------------------------------
    async def __aenter__(self) -> KiteRestClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def access_token(self) -> str | None:
        return self._access_token

    def set_access_token(self, access_token: str | None) -> None:
        """Use a new access token (after a re-login); re-arms the session-expiry hook."""
        self._access_token = access_token
        self._expired_fired = False

    def __repr__(self) -> str:
        return f"KiteRestClient(root={self.root!r}, api_key={self.api_key!r}, authenticated={bool(self._access_token)})"

    # -- session -----------------------------------------------------------------------------
    async def generate_session(self, request_token: str, api_secret: str) -> KiteSession:
        """Exchange a login ``request_token`` for an access token (and start using it)."""
        data = await self._request(
            "POST",
            "/session/token",
            data={
                "api_key": self.api_key,
                "request_token": request_token,
                "checksum": checksum(self.api_key, request_token, api_secret),
            },
            authenticated=False,
        )
        if not isinstance(data, dict) or not data.get("access_token"):
            raise KiteDataError("session response has no access_token", status=200)
        login_raw = data.get("login_time")
        login_time = (
            datetime.strptime(str(login_raw), "%Y-%m-%d %H:%M:%S").replace(tzinfo=IST)
            if login_raw
            else datetime.now(IST)
        )
        session = KiteSession(
            api_key=str(data.get("api_key") or self.api_key),
            access_token=str(data["access_token"]),
            user_id=str(data.get("user_id", "")),
            login_time=login_time,
            public_token=str(data.get("public_token", "")),
        )
        self.set_access_token(session.access_token)
        return session

    async def invalidate_session(self) -> bool:
        """Log out: ``DELETE /session/token``."""
        data = await self._request(
            "DELETE",
            "/session/token",
            params={"api_key": self.api_key, "access_token": self._access_token or ""},
        )
        return bool(data)

    async def profile(self) -> dict[str, Any]:
        """``GET /user/profile`` (a cheap check that the token is valid)."""
        data = await self._request("GET", "/user/profile")
        if not isinstance(data, dict):
            raise KiteDataError("profile response is not an object", status=200)
        return data

    # -- instruments -------------------------------------------------------------------------
    async def instruments(self, exchange: str | None = None) -> list[Instrument]:
        """The day's instrument dump (all exchanges, or one), parsed and typed."""
        path = f"/instruments/{exchange}" if exchange else "/instruments"
        body = await self._request("GET", path, raw=True)
        assert isinstance(body, bytes)
        try:
            dump = parse_instruments_csv(maybe_gunzip(body).decode("utf-8"))
        except (ValueError, UnicodeDecodeError, OSError) as exc:
            raise KiteDataError(f"unreadable instrument dump from {path}: {exc}", status=200) from None
        if dump.rejected:
            logger.warning(
                "instrument dump {}: {} malformed rows skipped (first: {})",
                path,
                len(dump.rejected),
                dump.rejected[0],
            )
        return dump.instruments

    # -- historical candles ------------------------------------------------------------------
    async def historical_rows(
        self,
        instrument_token: int,
        interval: Timeframe | str,
        start: datetime | date,
        end: datetime | date,
        *,
        oi: bool = False,
        continuous: bool = False,
    ) -> list[CandleRow]:
        """Candles whose open lies in the inclusive range ``[start, end]``, for any Kite interval.

        Tz-aware bounds are converted to IST; a bare ``end`` date means the end of that day. Long
        ranges are fetched in chunks of N-1 days (N = Kite's span limit for the interval) and merged,
        deduplicated and sorted by time.
        """
        name = interval_name(interval)
        first = as_ist(start)
        last = as_ist(end, end_of_day=True)
        chunks: list[list[CandleRow]] = []
        for chunk_start, chunk_end in historical_chunks(first, last, name):
            chunks.append(
                await self._historical_chunk(instrument_token, name, chunk_start, chunk_end, oi, continuous)
            )
        return merge_candle_rows(chunks)

    async def historical(
        self,
        instrument_token: int,
        interval: Timeframe | str,
        start: datetime | date,
        end: datetime | date,
        *,
        oi: bool = False,
        continuous: bool = False,
    ) -> list[Candle]:
        """Like :meth:`historical_rows`, as domain Candles (interval must map to a Timeframe)."""
        name = interval_name(interval)
        timeframe = timeframe_for(name)
        if timeframe is None:
            raise ValueError(f"interval {name!r} has no tickwise Timeframe; use historical_rows()")
        rows = await self.historical_rows(instrument_token, name, start, end, oi=oi, continuous=continuous)
        return [to_candle(r, instrument_token, timeframe) for r in rows]

    async def historical_frame(
        self,
        instrument_token: int,
        interval: Timeframe | str,
        start: datetime | date,
        end: datetime | date,
        *,
        oi: bool = False,
    ) -> pd.DataFrame:
        """Like :meth:`historical`, as a candle frame with the ``candles`` table's column names."""
        candles = await self.historical(instrument_token, interval, start, end, oi=oi)
        return candles_frame(candles)

    async def _historical_chunk(
        self, token: int, interval: str, start: datetime, end: datetime, oi: bool, continuous: bool
    ) -> list[CandleRow]:
        data = await self._request(
            "GET",
            f"/instruments/historical/{int(token)}/{interval}",
            params={
                "from": start.strftime("%Y-%m-%d %H:%M:%S"),
                "to": end.strftime("%Y-%m-%d %H:%M:%S"),
                "continuous": int(continuous),
                "oi": int(oi),
            },
        )
        raw = data.get("candles") if isinstance(data, dict) else None
        if not isinstance(raw, list):
            raise KiteDataError(f"historical response for {token} has no candles list", status=200)
        try:
            return [candle_row(r) for r in raw]
        except (ValueError, TypeError) as exc:
            raise KiteDataError(f"malformed candle for {token}: {exc}", status=200) from None

    # -- quotes ------------------------------------------------------------------------------
    async def quote(self, instruments: Sequence[str]) -> dict[str, Any]:
        """Full quotes for ``EXCHANGE:TRADINGSYMBOL`` keys (<= 500); missing instruments are absent."""
        return await self._quote("/quote", instruments)

    async def ohlc(self, instruments: Sequence[str]) -> dict[str, Any]:
        return await self._quote("/quote/ohlc", instruments)

    async def ltp(self, instruments: Sequence[str]) -> dict[str, Any]:
        return await self._quote("/quote/ltp", instruments)

    async def _quote(self, path: str, instruments: Sequence[str]) -> dict[str, Any]:
        data = await self._request("GET", path, params=[("i", i) for i in instruments])
        if not isinstance(data, dict):
            raise KiteDataError(f"{path} response is not an object", status=200)
        return data

    # -- transport ---------------------------------------------------------------------------
    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        data: dict[str, Any] | None = None,
        authenticated: bool = True,
        raw: bool = False,
    ) -> Any:
        headers: dict[str, str] = {}
        if authenticated:
            if not self._access_token:
                raise KiteTokenError("no access token: log in first (`tickwise auth login`)", status=0)
            headers["Authorization"] = f"token {self.api_key}:{self._access_token}"
        cls = endpoint_class(path)
        attempt = 0
        while True:
            await self.rate_limiter.acquire(cls)
            response: httpx.Response | None = None
            try:
                response = await self._http.request(method, path, params=params, data=data, headers=headers)
                result = self._unwrap(response, raw)
            except httpx.TimeoutException as exc:
                error: KiteError = KiteNetworkError(f"{method} {path} timed out ({type(exc).__name__})")
            except httpx.TransportError as exc:
                error = KiteNetworkError(f"{method} {path} failed: {type(exc).__name__}: {exc}")
            except KiteTokenError as exc:
                await self._fire_session_expired(exc)
                raise
            except KiteError as exc:
                error = exc
            else:
                return result
            if not _worth_retrying(error) or attempt >= self.max_retries:
                raise error
            delay = self.backoff.delay(attempt + (1 if isinstance(error, KiteRateLimitError) else 0))
            wait = _retry_after_s(response)
            if wait is not None:
                delay = max(delay, wait)
            attempt += 1
            self.retries += 1
            logger.debug("{} {} failed ({}); retry {} in {:.2f}s", method, path, error, attempt, delay)
            await self.clock.sleep(delay)

    @staticmethod
    def _unwrap(response: httpx.Response, raw: bool) -> Any:
        content_type = response.headers.get("content-type", "")
        if response.status_code >= 400:
            raise error_from_response(response.status_code, response.content, content_type)
        if raw:
            return response.content
        try:
            payload = response.json()
        except ValueError:
            raise KiteDataError(
                f"expected a JSON envelope, got {content_type or 'no content type'}",
                status=response.status_code,
            ) from None
        if not isinstance(payload, dict) or payload.get("status") != "success" or "data" not in payload:
            raise error_from_response(response.status_code, response.content, content_type)
        return payload["data"]

    async def _fire_session_expired(self, exc: KiteTokenError) -> None:
        if self._expired_fired or self.on_session_expired is None or exc.status != 403:
            return
        self._expired_fired = True
        result = self.on_session_expired(exc)
        if inspect.isawaitable(result):
            await result


_MAX_RETRY_AFTER_S = 60.0


def _worth_retrying(error: KiteError) -> bool:
    """``error.retryable``, except a non-envelope 4xx other than 429 (an HTML error page, a proxy's
    refusal): the same request gets the same answer, so retrying only wastes the rate limit."""
    if isinstance(error, KiteDataError) and error.error_type is None and 400 <= error.status < 500:
        return error.status == 429
    return error.retryable


def _retry_after_s(response: httpx.Response | None) -> float | None:
    """Seconds a ``Retry-After`` header (delta-seconds or HTTP date) asks for, capped; None without one."""
    if response is None:
        return None
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER_S)


def candles_frame(candles: Sequence[Candle]) -> pd.DataFrame:
    """Candles as a frame with the ``candles`` table's column names (``time`` tz-aware IST)."""
    frame = pd.DataFrame(
        {
            "instrument_token": pd.Series([c.instrument_token for c in candles], dtype="int64"),
            "timeframe": pd.Series([c.timeframe.value for c in candles], dtype="object"),
            "time": pd.Series([c.time for c in candles], dtype="datetime64[ns, Asia/Kolkata]"),
            "open": pd.Series([c.open for c in candles], dtype="float64"),
            "high": pd.Series([c.high for c in candles], dtype="float64"),
            "low": pd.Series([c.low for c in candles], dtype="float64"),
            "close": pd.Series([c.close for c in candles], dtype="float64"),
            "volume": pd.Series([c.volume for c in candles], dtype="int64"),
            "oi": pd.Series([c.oi for c in candles], dtype="Int64"),
            "source": pd.Series([c.source for c in candles], dtype="object"),
        }
    )
    return frame[CANDLE_COLUMNS]
