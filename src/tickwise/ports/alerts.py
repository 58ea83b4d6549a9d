"""Alerts: how pipelines raise an operator alert without knowing the channel (webhook, Telegram ...).

Implementation: ``adapters.alerts.AlertDispatcher`` (priority filter, throttling, delivery off the hot
path). ``notify`` is cheap, synchronous and never raises into the caller.
"""

from __future__ import annotations

from typing import Protocol


class Alerts(Protocol):
    def notify(self, priority: str, key: str, message: str) -> object:
        """Queue an alert (``priority`` info/warning/critical; ``key`` groups repeats for throttling)."""
        ...
