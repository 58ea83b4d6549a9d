"""Wire the alert dispatcher from ``monitoring.alerts``: channels, routes, filters (docs/notifications.md).

The original keys (``webhook_url``, ``telegram_bot_token`` + ``telegram_chat_id``) still define the
channels ``webhook`` and ``telegram``; a channel of the same name under ``channels`` replaces them.
Without ``routes``, every channel receives the operational alerts and signals go nowhere (the
behaviour before signal delivery existed), so turning signals on is an explicit ``kind: signal`` route.
SMTP credentials are read from the environment variables the channel names, never from the YAML.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loguru import logger

from tickwise.adapters.alerts import (
    Alert,
    AlertDispatcher,
    AlertSink,
    DeliveryError,
    EmailSink,
    Route,
    SignalFilter,
    SlackSink,
    TelegramSink,
    WebhookSink,
)
from tickwise.config import AlertChannelSettings, Settings
from tickwise.domain.errors import ConfigError
from tickwise.ports.hooks import PipelineHooks
from tickwise.ports.notifier import SignalNotifier

if TYPE_CHECKING:  # the live engine pulls in numpy/pandas/TA-Lib: not at every command's start-up
    from tickwise.pipelines.live.engine import PendingSignal


def make_alerts(
    settings: Settings,
    hooks: PipelineHooks | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    symbols: Mapping[int, str] | None = None,
) -> AlertDispatcher:
    """The dispatcher for ``settings`` (no channels at all when ``monitoring.alerts.enabled`` is false)."""
    cfg = settings.monitoring.alerts
    env = os.environ if environ is None else environ
    sinks = channel_sinks(settings, env) if cfg.enabled else []
    names = [s.name for s in sinks]
    try:
        dispatcher = AlertDispatcher(
            sinks,
            routes=_routes(settings, names),
            min_priority=cfg.min_priority,
            throttle_s=cfg.throttle_s,
            dedup_s=cfg.dedup_s,
            signals=_signal_filter(settings),
            symbols=symbols,
            hooks=hooks,
            queue_size=cfg.queue_size,
        )
    except ValueError as exc:
        raise ConfigError(f"monitoring.alerts: {exc}") from None
    if sinks:
        logger.info("alert channels: {}", ", ".join(repr(s) for s in sinks))
    return dispatcher


@dataclass(frozen=True, slots=True)
class ChannelProbe:
    channel: str
    receives: tuple[str, ...]  # the routes that reach it: 'signal>=info', 'ops>=critical', ...
    error: str | None  # None: delivered


async def probe_channels(settings: Settings, *, only: str | None = None) -> list[ChannelProbe]:
    """Send one test message to each configured channel (or ``only``) directly, and report each result.

    ConfigError when alerts are off or no channel is set up, or ``only`` names no channel.
    """
    dispatcher = make_alerts(settings)
    try:
        names = list(dispatcher.channels)
        if not names:
            raise ConfigError(
                "no alert channel is set up: set monitoring.alerts.enabled: true and a channel "
                "(see docs/notifications.md)"
            )
        if only is not None and only not in names:
            raise ConfigError(f"no alert channel {only!r} is set up (set up: {', '.join(names)})")
        host = socket.gethostname()
        probe = Alert("info", "test", f"test message from tickwise on {host}: this channel works")
        results: list[ChannelProbe] = []
        for name in [only] if only is not None else names:
            receives = tuple(f"{r.kind}>={r.min_priority}" for r in dispatcher.routes if name in r.channels)
            sink = dispatcher.channels[name].sink
            try:
                await asyncio.wait_for(sink.send(probe), dispatcher.send_timeout_s)
                error = None
            except DeliveryError as exc:
                error = str(exc)
            except Exception as exc:  # never echo a message that may quote the URL
                error = type(exc).__name__
            results.append(ChannelProbe(name, receives, error))
        return results
    finally:
        await dispatcher.close()


def reload_alerts(dispatcher: AlertDispatcher, old: Settings, settings: Settings) -> list[str]:
    """Apply the reloadable part of ``monitoring.alerts`` (routes, priorities, throttling, signal filter).

    For SIGHUP in a live session (``old``: the settings ``dispatcher`` was made from): returns one line
    per change, and says so when channels changed (sinks, their connections and credentials are set
    up at start, so that needs a restart).
    """
    cfg = settings.monitoring.alerts
    changes: list[str] = []
    if _channel_settings(old) != _channel_settings(settings):
        changes.append("monitoring.alerts channels (or enabled) changed: restart to apply")
    try:
        changes += dispatcher.reconfigure(
            routes=_routes(settings, list(dispatcher.channels)),
            min_priority=cfg.min_priority,
            throttle_s=cfg.throttle_s,
            dedup_s=cfg.dedup_s,
            signals=_signal_filter(settings),
        )
    except ValueError as exc:
        raise ConfigError(f"monitoring.alerts: {exc}") from None
    return changes


def _channel_settings(settings: Settings) -> tuple[bool, dict[str, AlertChannelSettings]]:
    cfg = settings.monitoring.alerts
    channels: dict[str, AlertChannelSettings] = {}
    if cfg.webhook_url.get_secret_value():
        channels["webhook"] = AlertChannelSettings(type="webhook", url=cfg.webhook_url)
    if cfg.telegram_bot_token.get_secret_value() and cfg.telegram_chat_id:
        channels["telegram"] = AlertChannelSettings(
            type="telegram", bot_token=cfg.telegram_bot_token, chat_id=cfg.telegram_chat_id
        )
    channels.update(cfg.channels)
    return cfg.enabled, channels


def _routes(settings: Settings, names: Sequence[str]) -> list[Route] | None:
    """The configured routes restricted to the channels that exist (None: the legacy all-ops route)."""
    cfg = settings.monitoring.alerts
    if not (cfg.enabled and cfg.routes):
        return None
    missing = sorted({c for r in cfg.routes for c in r.channels} - set(names))
    if missing:
        logger.warning("alert routes name channels that are not set up (empty URL or token): {}", missing)
    return [Route(r.kind, tuple(c for c in r.channels if c in names), r.min_priority) for r in cfg.routes]


def _signal_filter(settings: Settings) -> SignalFilter | None:
    sig = settings.monitoring.alerts.signals
    if not sig.enabled:
        return None
    return SignalFilter(
        min_confidence=settings.model_training.signal_threshold
        if sig.min_confidence is None
        else sig.min_confidence,
        high_confidence=sig.high_confidence,
        throttle_s=sig.throttle_s,
        dedup_s=sig.dedup_s,
        max_age_s=sig.max_age_s,
    )


def channel_sinks(settings: Settings, environ: Mapping[str, str]) -> list[AlertSink]:
    """One sink per configured channel that has its address/credentials (legacy keys included)."""
    sinks: list[AlertSink] = []
    for name, ch in _channel_settings(settings)[1].items():
        sink = _sink(name, ch, environ)
        if sink is None:
            logger.warning("alert channel {!r} ({}) is not set up: {}", name, ch.type, _what_is_missing(ch))
        else:
            sinks.append(sink)
    return sinks


def _sink(name: str, ch: AlertChannelSettings, environ: Mapping[str, str]) -> AlertSink | None:
    url = ch.url.get_secret_value()
    if ch.type == "webhook":
        return WebhookSink(url, name=name, timeout_s=ch.timeout_s) if url else None
    if ch.type == "slack":
        return SlackSink(url, name=name, timeout_s=ch.timeout_s) if url else None
    if ch.type == "telegram":
        token = ch.bot_token.get_secret_value()
        return (
            TelegramSink(token, ch.chat_id, name=name, timeout_s=ch.timeout_s)
            if token and ch.chat_id
            else None
        )
    if not (ch.host and ch.sender and ch.to):
        return None
    return EmailSink(
        ch.host,
        ch.port,
        ch.sender,
        ch.to,
        name=name,
        starttls=ch.starttls,
        username=environ.get(ch.username_env, ""),
        password=environ.get(ch.password_env, ""),
        timeout_s=ch.timeout_s,
    )


def _what_is_missing(ch: AlertChannelSettings) -> str:
    if ch.type in ("webhook", "slack"):
        return "url is empty"
    if ch.type == "telegram":
        return "bot_token or chat_id is empty"
    return "host, sender and to are required"


def channel_secrets(settings: Settings) -> Sequence[str]:
    """Every secret the channels hold (URLs, bot tokens), for the log masker."""
    cfg = settings.monitoring.alerts
    out = [cfg.webhook_url.get_secret_value(), cfg.telegram_bot_token.get_secret_value()]
    for ch in cfg.channels.values():
        out += [ch.url.get_secret_value(), ch.bot_token.get_secret_value()]
    return [s for s in out if s]


def notify_after_commit(
    write: Callable[[list[PendingSignal]], Awaitable[int]], notifier: SignalNotifier
) -> Callable[[list[PendingSignal]], Awaitable[int]]:
    """Wrap the live ``signals`` table writer: a signal is announced once its row is committed.

    After the commit, so that what a trader is told is what SQL shows; a write that fails (and is
    retried or spilled by the writer) announces nothing, and the retry's announcement is deduplicated
    by the notifier. ``notify_signal`` only enqueues, so this adds no I/O to the commit path.
    """

    async def write_then_notify(rows: list[PendingSignal]) -> int:
        written = await write(rows)
        for row in rows:
            notifier.notify_signal(row.signal)
        return written

    return write_then_notify


__all__ = [
    "ChannelProbe",
    "channel_secrets",
    "channel_sinks",
    "make_alerts",
    "notify_after_commit",
    "probe_channels",
    "reload_alerts",
]
