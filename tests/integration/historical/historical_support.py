"""Settings of a small simulated universe for the historical pipeline's integration tests: the data
directory and token file under the test's tmp path, a few symbols, a few sessions, and the keys a test
turns (``TICKWISE__...`` names, as a user sets them in the environment)."""

from __future__ import annotations

from pathlib import Path

from tickwise.config import Settings, load_settings

THREE = "[INFY, RELIANCE, TCS]"


def simulator_settings(tmp: Path, *, symbols: str = THREE, backfill_days: int = 11, **keys: str) -> Settings:
    """``keys``: further settings as environment names without the ``TICKWISE__`` prefix
    (``WALK_FORWARD__NUM_BOOST_ROUND="20"``)."""
    env = {
        "TICKWISE__SYSTEM__DATA_DIR": str(tmp),
        "TICKWISE__BROKER__TOKEN_FILE": str(tmp / "kite_token.json"),
        "TICKWISE__TRADING__SYMBOLS": symbols,
        "TICKWISE__TRADING__BACKFILL_DAYS": str(backfill_days),
    } | {f"TICKWISE__{name}": value for name, value in keys.items()}
    return load_settings(environ=env, environment="test")
