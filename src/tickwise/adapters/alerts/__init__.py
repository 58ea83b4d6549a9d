"""Alert sinks (webhook, Telegram) and the throttling/dedup dispatcher in front of them."""

from tickwise.adapters.alerts.dispatcher import PRIORITIES, Alert, AlertDispatcher
from tickwise.adapters.alerts.sinks import TelegramSink, WebhookSink

__all__ = ["PRIORITIES", "Alert", "AlertDispatcher", "TelegramSink", "WebhookSink"]
