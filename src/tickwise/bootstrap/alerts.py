"""Wire the alert dispatcher from ``monitoring.alerts``: channels, routes, filters (docs/notifications.md).

The original keys (``webhook_url``, ``telegram_bot_token`` + ``telegram_chat_id``) still define the
channels ``webhook`` and ``telegram``; a channel of the same name under ``channels`` replaces them.
Without ``routes``, every channel receives the operational alerts and signals go nowhere (the
behaviour before signal delivery existed), so turning signals on is an explicit ``kind: signal`` route.
SMTP credentials are read from the environment variables the channel names, never from the YAML.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from loguru import logger

from tickwise.adapters.alerts import (
    AlertDispatcher,
    AlertSink,
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
    routes: list[Route] | None = None
    if cfg.enabled and cfg.routes:
        routes = [
            Route(r.kind, tuple(c for c in r.channels if c in names), r.min_priority) for r in cfg.routes
        ]
        missing = sorted({c for r in cfg.routes for c in r.channels} - set(names))
        if missing:
            logger.warning("alert routes name channels that are not set up (empty URL or token): {}", missing)
    signals = None
    if cfg.signals.enabled:
        threshold = cfg.signals.min_confidence
        signals = SignalFilter(
            min_confidence=settings.model_training.signal_threshold if threshold is None else threshold,
            high_confidence=cfg.signals.high_confidence,
            throttle_s=cfg.signals.throttle_s,
            dedup_s=cfg.signals.dedup_s,
            max_age_s=cfg.signals.max_age_s,
        )
    try:
        dispatcher = AlertDispatcher(
            sinks,
            routes=routes,
            min_priority=cfg.min_priority,
            throttle_s=cfg.throttle_s,
            dedup_s=cfg.dedup_s,
            signals=signals,
            symbols=symbols,
            hooks=hooks,
            queue_size=cfg.queue_size,
        )
    except ValueError as exc:
        raise ConfigError(f"monitoring.alerts: {exc}") from None
    if sinks:
        logger.info("alert channels: {}", ", ".join(repr(s) for s in sinks))
    return dispatcher


def channel_sinks(settings: Settings, environ: Mapping[str, str]) -> list[AlertSink]:
    """One sink per configured channel that has its address/credentials (legacy keys included)."""
    cfg = settings.monitoring.alerts
    channels: dict[str, AlertChannelSettings] = {}
    if cfg.webhook_url:
        channels["webhook"] = AlertChannelSettings(type="webhook", url=cfg.webhook_url)
    if cfg.telegram_bot_token.get_secret_value() and cfg.telegram_chat_id:
        channels["telegram"] = AlertChannelSettings(
            type="telegram", bot_token=cfg.telegram_bot_token, chat_id=cfg.telegram_chat_id
        )
    channels.update(cfg.channels)
    sinks: list[AlertSink] = []
    for name, ch in channels.items():
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
    out = [cfg.webhook_url, cfg.telegram_bot_token.get_secret_value()]
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


__all__ = ["channel_secrets", "channel_sinks", "make_alerts", "notify_after_commit"]
