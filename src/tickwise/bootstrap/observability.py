"""Wire logging from settings: level, a file sink under data_dir/logs, and the secrets to mask."""

from __future__ import annotations

import uuid

from loguru import logger

from tickwise.bootstrap.alerts import channel_secrets
from tickwise.config import Settings
from tickwise.observability.logging import SecretMasker, configure_logging


def setup_logging(settings: Settings, *, debug: bool = False, log_json: bool | None = None) -> SecretMasker:
    """Configure loguru (and the stdlib bridge) once settings are known.

    Every line of this process carries ``correlation_id``: one id per CLI session, so the lines of
    one run can be picked out of a shared log file (``jq 'select(.correlation_id == "...")'``).
    """
    broker = settings.broker
    secrets = [
        broker.api_secret.get_secret_value(),
        broker.access_token.get_secret_value(),
        settings.monitoring.alerts.telegram_bot_token.get_secret_value(),
        *channel_secrets(settings),  # webhook/Slack URLs and bot tokens of the alert channels
    ]
    masker = configure_logging(
        "DEBUG" if debug else settings.system.log_level,
        log_dir=settings.system.data_dir / "logs",
        secrets=[s for s in secrets if s],
        json_lines=settings.system.log_json if log_json is None else log_json,
    )
    logger.configure(extra={"correlation_id": uuid.uuid4().hex[:12]})
    return masker
