"""Alert channels (webhook, Slack, Telegram, e-mail) and the routing/throttling/dedup dispatcher."""

from tickwise.adapters.alerts.dispatcher import AlertDispatcher, AlertSink, SignalFilter
from tickwise.adapters.alerts.message import PRIORITIES, Alert, DeliveryError, signal_alert
from tickwise.adapters.alerts.redact import redact_url
from tickwise.adapters.alerts.routing import Route
from tickwise.adapters.alerts.sinks import SlackSink, TelegramSink, WebhookSink
from tickwise.adapters.alerts.smtp import EmailSink

__all__ = [
    "PRIORITIES",
    "Alert",
    "AlertDispatcher",
    "AlertSink",
    "DeliveryError",
    "EmailSink",
    "Route",
    "SignalFilter",
    "SlackSink",
    "TelegramSink",
    "WebhookSink",
    "redact_url",
    "signal_alert",
]
