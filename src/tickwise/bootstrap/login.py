"""Login on a server, and the token checks every Kite command makes first.

* ``tickwise auth login --request-token TOKEN``: the exchange without a local callback server. Open
  the login URL on any machine with a browser, log in, and paste the ``request_token`` from the
  address bar of the redirect (or the whole redirect URL) on the server. The token is stored 0600
  like the normal login. Kite's request tokens are single use and short-lived (minutes).
* :func:`require_kite_login`: a command that needs Kite calls it before any work; a missing, foreign
  or expired token is ONE line naming the command to run, exit code 2.
* :func:`check_token`: will the stored token still be valid for the next session? Kite invalidates
  every access token at 06:00 IST, so a token from the evening before is dead by the open; ``live``
  at start and ``tickwise auth check`` raise an operational alert when it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from tickwise.adapters.kite.auth import StoredToken
from tickwise.adapters.kite.errors import KiteTokenError
from tickwise.adapters.kite.rest import KiteRestClient
from tickwise.bootstrap.credentials import token_store, uses_simulator
from tickwise.config import Settings
from tickwise.domain.calendar import SessionCalendar
from tickwise.domain.errors import BrokerError, ConfigError
from tickwise.domain.time import IST
from tickwise.ports.notifier import AlertNotifier

LOGIN_COMMAND = "tickwise auth login"
SERVER_LOGIN_COMMAND = "tickwise auth login --request-token TOKEN"
LOGIN_HINT = f"run `{LOGIN_COMMAND}` (on a server without a browser: `{SERVER_LOGIN_COMMAND}`)"


class LoginRequired(ConfigError):
    """No usable Kite access token: the user must log in (exit code 2, like a configuration error)."""


def request_token_from(text: str) -> str:
    """The request_token from what the user pasted: the token itself, or the whole redirect URL."""
    value = text.strip()
    if "request_token=" in value:
        query = urlsplit(value).query if "?" in value else value
        tokens = parse_qs(query).get("request_token", [])
        value = tokens[0].strip() if tokens else ""
    if not value or any(c.isspace() for c in value) or len(value) > 200:
        raise ConfigError(
            "--request-token: expected the request_token from the redirect URL "
            "(…?request_token=XXXX&action=login&status=success) or that whole URL"
        )
    return value


async def login_with_request_token(settings: Settings, pasted: str) -> StoredToken:
    """Exchange a pasted request_token for an access token and store it (mode 0600)."""
    broker = settings.broker
    if not broker.has_credentials:
        raise ConfigError(
            "`auth login --request-token` needs KITE_API_KEY and KITE_API_SECRET (the app's key and secret)"
        )
    request_token = request_token_from(pasted)
    async with KiteRestClient(broker.api_key, root=broker.rest_root) as rest:
        try:
            session = await rest.generate_session(request_token, broker.api_secret.get_secret_value())
        except KiteTokenError as exc:
            raise BrokerError(
                f"Kite refused the request_token ({exc.message}): it works once, for a few minutes; "
                f"log in in the browser again and paste the new one"
            ) from None
    token = StoredToken.from_session(session)
    token_store(settings).save(token)
    return token


def require_kite_login(settings: Settings, *, now: datetime | None = None) -> None:
    """Raise LoginRequired (one line, exit 2) unless Kite can be used right now.

    Nothing to check for the simulator (no credentials) or a ``KITE_ACCESS_TOKEN`` from the
    environment (its expiry is unknown; Kite itself will refuse a dead one).
    """
    if uses_simulator(settings) or settings.broker.access_token.get_secret_value():
        return
    api_key = settings.broker.api_key
    store = token_store(settings)
    token = store.load()
    if token is None or token.simulated:
        raise LoginRequired(f"no Kite access token ({store.path}): {LOGIN_HINT}")
    if api_key and token.api_key != api_key:
        raise LoginRequired(f"the stored Kite token is for another api_key ({token.api_key}): {LOGIN_HINT}")
    if not token.is_valid(now):
        raise LoginRequired(
            f"the Kite access token expired at {token.expires_at:%Y-%m-%d %H:%M} IST (tokens expire at "
            f"06:00 IST daily): {LOGIN_HINT}"
        )


TokenState = Literal["ok", "expires_before_session", "expired", "missing", "environment", "simulator"]


@dataclass(frozen=True, slots=True)
class TokenCheck:
    state: TokenState
    message: str
    session_open: datetime | None = None  # the session the check is about (IST)
    expires_at: datetime | None = None

    @property
    def needs_login(self) -> bool:
        return self.state in ("expires_before_session", "expired", "missing")


def next_session(calendar: SessionCalendar, now: datetime) -> tuple[datetime, datetime]:
    """(open, close) of the session in progress, or else of the next one, after ``now``."""
    day = now.astimezone(IST).date()
    if not calendar.is_trading_day(day) or now >= calendar.session_close(day):
        day = calendar.next_trading_day(day)
    return calendar.session_open(day), calendar.session_close(day)


def token_check(token: StoredToken | None, calendar: SessionCalendar, now: datetime) -> TokenCheck:
    """Whether ``token`` lasts through the next session (a pure function of token, calendar and clock)."""
    opens, closes = next_session(calendar, now)
    session = f"the {opens:%a %Y-%m-%d} session ({opens:%H:%M}-{closes:%H:%M} IST)"
    if token is None:
        return TokenCheck("missing", f"no Kite access token for {session}: {LOGIN_HINT}", opens)
    if not token.is_valid(now):
        return TokenCheck(
            "expired",
            f"the Kite access token expired at {token.expires_at:%Y-%m-%d %H:%M} IST; log in before "
            f"{session}: {LOGIN_HINT}",
            opens,
            token.expires_at,
        )
    if token.expires_at < closes:
        return TokenCheck(
            "expires_before_session",
            f"the Kite access token expires at {token.expires_at:%Y-%m-%d %H:%M} IST, before {session}: "
            f"log in again after 06:00 IST, {LOGIN_HINT}",
            opens,
            token.expires_at,
        )
    return TokenCheck("ok", f"the Kite access token is valid through {session}", opens, token.expires_at)


def check_token(settings: Settings, calendar: SessionCalendar, now: datetime | None = None) -> TokenCheck:
    """:func:`token_check` for the configured account's stored token."""
    now = now or datetime.now(IST)
    if uses_simulator(settings):
        return TokenCheck("simulator", "no Kite credentials: the simulator is used (no token to expire)")
    if settings.broker.access_token.get_secret_value():
        return TokenCheck(
            "environment",
            "access token from KITE_ACCESS_TOKEN (expiry unknown: Kite tokens expire at 06:00 IST)",
        )
    token = token_store(settings).load()
    if token is not None and (token.simulated or token.api_key != (settings.broker.api_key or token.api_key)):
        token = None
    return token_check(token, calendar, now)


def alert_token_expiry(check: TokenCheck, alerts: AlertNotifier) -> bool:
    """Raise the operational alert for a token that will not last through the next session."""
    if not check.needs_login:
        return False
    priority = "critical" if check.state != "expires_before_session" else "warning"
    return alerts.notify(priority, "kite_token", check.message)
