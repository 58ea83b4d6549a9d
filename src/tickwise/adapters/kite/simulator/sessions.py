"""Login sessions and per-api_key rate limits of the simulator (kite-protocol.md sections 3.3 and 3.6).

* request tokens: single use, valid ``request_token_ttl`` **real** seconds (default 300, as Kite's ~5
  minutes; real time so a fast simulated clock does not make a human login impossible);
* access tokens: valid until the next 06:00 IST of the **simulated** clock after they were issued, or
  until logout;
* rate limits: sliding one-second window of **real** time per ``(api_key, class)``: ``historical`` 3/s,
  ``quote`` 1/s, ``other`` 10/s; only accepted requests count.
"""

from __future__ import annotations

import hashlib
import secrets
import time as _time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from tickwise.adapters.kite.simulator.clock import SimClock

RATE_LIMITS: dict[str, int] = {"historical": 3, "quote": 1, "other": 10}


def checksum(api_key: str, request_token: str, api_secret: str) -> str:
    """Kite's session checksum: ``sha256(api_key + request_token + api_secret)`` as lowercase hex."""
    return hashlib.sha256(f"{api_key}{request_token}{api_secret}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AccessSession:
    api_key: str
    access_token: str
    public_token: str
    issued_at: datetime
    expires_at: datetime


@dataclass
class SessionStore:
    """Request and access tokens of the simulator's single user."""

    api_key: str
    api_secret: str
    clock: SimClock
    request_token_ttl: float = 300.0
    monotonic: Callable[[], float] = _time.monotonic
    _requests: dict[str, float] = field(default_factory=dict)
    _sessions: dict[str, AccessSession] = field(default_factory=dict)

    def new_request_token(self) -> str:
        token = secrets.token_urlsafe(24)
        self._requests[token] = self.monotonic() + self.request_token_ttl
        return token

    def exchange(self, api_key: str, request_token: str, check: str) -> AccessSession | str:
        """Trade a request token for a session; returns the session or the reason for refusing it."""
        if api_key != self.api_key:
            return "Invalid `api_key`."
        deadline = self._requests.pop(request_token, None)  # single use, even when the checksum is wrong
        if deadline is None:
            return "Token is invalid or has expired."
        if self.monotonic() > deadline:
            return "Token is invalid or has expired."
        if not secrets.compare_digest(check.lower(), checksum(api_key, request_token, self.api_secret)):
            return "Invalid checksum."
        return self.issue()

    def issue(self) -> AccessSession:
        """Mint an access token directly (tests; the login flow ends here too)."""
        now = self.clock.now()
        session = AccessSession(
            api_key=self.api_key,
            access_token=secrets.token_urlsafe(24),
            public_token=secrets.token_hex(16),
            issued_at=now,
            expires_at=self.clock.next_expiry(now),
        )
        self._sessions[session.access_token] = session
        return session

    def validate(self, api_key: str, access_token: str) -> AccessSession | None:
        """The live session for this pair, or None when unknown, mismatched or expired (simulated clock)."""
        session = self._sessions.get(access_token)
        if session is None or session.api_key != api_key:
            return None
        if self.clock.now() >= session.expires_at:
            return None
        return session

    def revoke(self, access_token: str) -> bool:
        return self._sessions.pop(access_token, None) is not None


@dataclass
class RateLimiter:
    """Sliding one-second windows per ``(api_key, class)`` of real time."""

    limits: dict[str, int] = field(default_factory=lambda: dict(RATE_LIMITS))
    window: float = 1.0
    monotonic: Callable[[], float] = _time.monotonic
    _hits: dict[tuple[str, str], deque[float]] = field(default_factory=dict)

    def allow(self, api_key: str, kind: str) -> bool:
        now = self.monotonic()
        hits = self._hits.setdefault((api_key, kind), deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limits.get(kind, self.limits["other"]):
            return False
        hits.append(now)
        return True
