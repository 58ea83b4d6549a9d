"""Where the Kite access token comes from: the environment, the token file, or (without either) the simulator.

if uses_simulator(settings): ...           # no credentials, no token: the simulator stands in for Kite
api_key, access_token, store = real_credentials(settings)   # BrokerError with the re-login hint
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from loguru import logger

from tickwise.adapters.kite.auth import StoredToken, TokenStore
from tickwise.adapters.kite.errors import KiteTokenError
from tickwise.config import Settings
from tickwise.domain.errors import BrokerError, ConfigError

RELOGIN_HINT = "run `tickwise auth login`"


def token_store(settings: Settings, *, simulated: bool = False) -> TokenStore:
    """The token file (the simulator's lives beside it, so it never shadows a real login)."""
    path = Path(settings.broker.token_file)
    if simulated:
        path = path.with_name(f"{path.stem}.simulator{path.suffix}")
    return TokenStore(path)


def uses_simulator(settings: Settings) -> bool:
    """True when no Kite credentials, access token or real token file exist."""
    broker = settings.broker
    if broker.has_credentials or broker.api_key or broker.access_token.get_secret_value():
        return False
    try:
        stored = token_store(settings).load()
    except BrokerError:
        return False  # a corrupt token file is the user's real-Kite state: report it, don't hide it
    return stored is None or stored.simulated


def real_credentials(settings: Settings) -> tuple[str, str, TokenStore]:
    """``(api_key, access_token, token store)`` for real Kite; a clear error when there is no valid token."""
    broker = settings.broker
    store = token_store(settings)
    env_token = broker.access_token.get_secret_value()
    stored = store.load()
    if stored is not None and stored.simulated:
        stored = None
    api_key = broker.api_key or (stored.api_key if stored else "")
    if not api_key:
        raise ConfigError(
            "KITE_ACCESS_TOKEN is set but KITE_API_KEY is not: set both (or neither, for the simulator)"
        )
    if env_token:
        return api_key, env_token, store
    if stored is None or stored.api_key != api_key:
        raise BrokerError(f"no Kite access token for api_key {api_key!r}: {RELOGIN_HINT}")
    if not stored.is_valid():
        raise BrokerError(
            f"the Kite access token expired at {stored.expires_at:%Y-%m-%d %H:%M} IST "
            f"(tokens expire at 06:00 IST every day): {RELOGIN_HINT}"
        )
    return api_key, stored.access_token, store


def log_session_expired(exc: KiteTokenError) -> None:
    """What the REST client reports when Kite invalidates the session mid-run."""
    logger.error("the Kite session expired or was invalidated ({}): {}", exc.message, RELOGIN_HINT)


@dataclass(frozen=True, slots=True)
class TokenStatus:
    path: Path
    token: StoredToken | None
    valid: bool
    source: str  # 'file', 'environment' or 'none'


def token_status(settings: Settings, *, simulated: bool = False, now: datetime | None = None) -> TokenStatus:
    """The state of the stored token (expired once 06:00 IST after login has passed)."""
    store = token_store(settings, simulated=simulated)
    if not simulated and settings.broker.access_token.get_secret_value():
        return TokenStatus(store.path, None, True, "environment")
    token = store.load()
    if token is None:
        return TokenStatus(store.path, None, False, "none")
    return TokenStatus(store.path, token, token.is_valid(now), "file")
