"""SIGHUP in a live session: apply the settings that are safe to change mid-session, name the rest.

Safe mid-session: the signal filter and sizing (``model_training.signal_threshold``, ``kelly_fraction``,
``max_position``: the next bar is scored with them) and alert routing (``monitoring.alerts`` routes,
priorities, throttling, signal filter; ``bootstrap.alerts.reload_alerts``). Everything else (database,
broker, universe, timeframes, live buffers, channels and their credentials) is wired at start: a change
is logged as needing a restart and is not applied. The risk limits (``backtest.*``) are read by each
``tickwise backtest`` run; the live session places no trades, so there is nothing to reload for them.
Only key names are logged, never values (a key may hold a secret).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from loguru import logger

from tickwise.adapters.alerts.dispatcher import AlertDispatcher
from tickwise.bootstrap.alerts import reload_alerts
from tickwise.config import Settings
from tickwise.core.signals import SignalGenerator
from tickwise.domain.errors import TickwiseError

SIGNAL_KEYS = ("signal_threshold", "kelly_fraction", "max_position")
# Applied by this module (the signal keys) or by bootstrap.alerts.reload_alerts (the alerts section).
RELOADABLE_PREFIXES = (
    *(f"model_training.{k}" for k in SIGNAL_KEYS),
    "signals.regime_filter",
    "monitoring.alerts",
)
RISK_PREFIX = "backtest"


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Dotted names of the leaves that differ between two ``model_dump()`` trees."""
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            yield from changed_keys(a, b, name + ".")
        elif a != b:
            yield name


def reload_live_settings(
    old: Settings,
    new: Settings,
    *,
    set_generator: Callable[[SignalGenerator], None],
    make_generator: Callable[[Settings], SignalGenerator],
    alerts: AlertDispatcher,
) -> list[str]:
    """Apply what is safe from ``new``; one line per change (applied, or needing a restart)."""
    lines: list[str] = []
    old_mt, new_mt = old.model_training, new.model_training
    moved = [k for k in SIGNAL_KEYS if getattr(old_mt, k) != getattr(new_mt, k)]
    old_rf, new_rf = old.signals.regime_filter, new.signals.regime_filter
    if moved or old_rf != new_rf:
        set_generator(make_generator(new))  # raises on an invalid value before anything is applied
        lines += [
            f"model_training.{k}: {getattr(old_mt, k)} -> {getattr(new_mt, k)} (applied)" for k in moved
        ]
        if old_rf != new_rf:
            lines.append(f"signals.regime_filter: {old_rf.model_dump()} -> {new_rf.model_dump()} (applied)")
    lines += [f"{line} (alerts)" for line in reload_alerts(alerts, old, new)]
    rest = [
        k for k in changed_keys(old.model_dump(), new.model_dump()) if not k.startswith(RELOADABLE_PREFIXES)
    ]
    risk = [k for k in rest if k.startswith(RISK_PREFIX + ".")]
    if risk:
        lines.append(
            f"{', '.join(risk)} changed: the next `tickwise backtest` uses it (live places no trades)"
        )
    restart = [k for k in rest if not k.startswith(RISK_PREFIX + ".")]
    if restart:
        lines.append(f"{', '.join(restart)} changed: restart the live session to apply")
    return lines


class SighupReloader:
    """The SIGHUP handler of a live session: reload the configuration, apply, log; keep going on errors."""

    def __init__(
        self,
        current: Settings,
        load: Callable[[], Settings],
        apply: Callable[[Settings, Settings], list[str]],
    ) -> None:
        self.current = current
        self._load = load
        self._apply = apply
        self.reloads = 0

    def __call__(self) -> list[str]:
        try:
            new = self._load()
            lines = self._apply(self.current, new)
        except (TickwiseError, ValueError) as exc:
            logger.error("SIGHUP: configuration not reloaded, the session keeps its settings: {}", exc)
            return []
        self.current = new
        self.reloads += 1
        if not lines:
            logger.info("SIGHUP: configuration reloaded, nothing changed")
        for line in lines:
            logger.info("SIGHUP: {}", line)
        return lines

    def install(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Handle SIGHUP on ``loop`` (False where the platform has no SIGHUP or no signal handlers)."""
        sighup = getattr(signal, "SIGHUP", None)
        if sighup is None:
            return False
        try:
            loop.add_signal_handler(sighup, self)
        except (NotImplementedError, RuntimeError):
            return False
        return True

    @staticmethod
    def uninstall(loop: asyncio.AbstractEventLoop) -> None:
        sighup = getattr(signal, "SIGHUP", None)
        if sighup is not None:
            loop.remove_signal_handler(sighup)
