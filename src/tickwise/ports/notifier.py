"""Notifier roles: where the live pipeline sends its signals and its operational alerts.

The pipeline depends on these roles, not on a channel: ``adapters.alerts.AlertDispatcher`` implements
both (routing, throttling, dedup, background delivery to webhook/Slack/Telegram/e-mail). Both methods
are synchronous, cheap and never raise or block: they only decide and enqueue; delivery happens in the
background and its failures are counted through the hooks, never propagated to the caller.
"""

from __future__ import annotations

from typing import Protocol

from tickwise.domain.signal import Signal


class AlertNotifier(Protocol):
    def notify(self, priority: str, key: str, message: str) -> bool:
        """Queue an operational alert; True when queued.

        ``priority`` is ``info``, ``warning`` or ``critical``; ``key`` groups alerts for throttling
        (``feed``, ``database``, ``kite_token``, ...).
        """
        ...


class SignalNotifier(Protocol):
    def notify_signal(self, signal: Signal) -> bool:
        """Queue a trading signal if it passes the filters (direction != 0, confidence); True when queued."""
        ...
