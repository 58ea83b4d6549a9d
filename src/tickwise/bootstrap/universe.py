"""The default universe: with a real Kite account and no ``trading.symbols``, the shipped NIFTY 50 list
(``config/universe/nifty50.yaml``), unless ``trading.universe: all_equities`` asks for every NSE equity.
The simulator world keeps every (simulated) equity."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from tickwise.bootstrap.credentials import uses_simulator
from tickwise.config import Settings
from tickwise.domain.errors import ConfigError

UNIVERSE_DIR = Path(__file__).resolve().parents[3] / "config" / "universe"


@dataclass(frozen=True, slots=True)
class UniverseList:
    name: str
    as_of: date
    symbols: tuple[str, ...]


def load_universe_list(path: Path) -> UniverseList:
    """A shipped list (``name``, ``as_of``, ``symbols``); a clear error when it is missing or malformed."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the universe list {path}: {exc}") from None
    symbols = data.get("symbols") if isinstance(data, dict) else None
    as_of = data.get("as_of") if isinstance(data, dict) else None
    if not isinstance(symbols, list) or not symbols or not all(isinstance(s, str) for s in symbols):
        raise ConfigError(f"{path}: expected a non-empty list of symbol names under `symbols`")
    if not isinstance(as_of, date):
        raise ConfigError(f"{path}: expected the list's date under `as_of` (YYYY-MM-DD)")
    return UniverseList(str(data.get("name", path.stem)), as_of, tuple(symbols))


def default_symbols(settings: Settings) -> tuple[str, ...]:
    """The lenient default list for ``pipelines.universe.select_universe`` (empty: every equity)."""
    if settings.trading.symbols or settings.trading.universe == "all_equities" or uses_simulator(settings):
        return ()
    return load_universe_list(UNIVERSE_DIR / f"{settings.trading.universe}.yaml").symbols
