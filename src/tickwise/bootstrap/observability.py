"""Wire logging from settings: level, a file sink under data_dir/logs, and the secrets to mask."""

from __future__ import annotations

import uuid

from loguru import logger
from pydantic import BaseModel, SecretStr

from tickwise.bootstrap.alerts import channel_secrets
from tickwise.config import Settings
from tickwise.observability import logging as observability_logging
from tickwise.observability.logging import SecretMasker, configure_logging, secret_parts


def configured_secrets(settings: Settings) -> list[str]:
    """Every secret value in ``settings`` (each SecretStr field), URLs expanded into their secret parts.

    Walking the model instead of naming fields means a secret field added later is masked too.
    """
    found: list[str] = []

    def walk(model: BaseModel) -> None:
        for name in type(model).model_fields:
            value = getattr(model, name)
            if isinstance(value, SecretStr):
                raw = value.get_secret_value()
                if raw:
                    found.extend(secret_parts(raw))
            elif isinstance(value, BaseModel):
                walk(value)

    walk(settings)
    return found


def setup_logging(settings: Settings, *, debug: bool = False, log_json: bool | None = None) -> SecretMasker:
    """Configure loguru (and the stdlib bridge) once settings are known.

    Every line of this process carries ``correlation_id``: one id per CLI session, so the lines of
    one run can be picked out of a shared log file (``jq 'select(.correlation_id == "...")'``).
    """
    data_dir = settings.system.data_dir
    # Created private (0700) when new; the embedded cluster sets its final mode (it may need the
    # database's OS user to traverse it).
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    secrets = [
        *configured_secrets(settings),
        *channel_secrets(settings),  # webhook/Slack URLs and bot tokens of the alert channels
    ]
    masker = configure_logging(
        "DEBUG" if debug else settings.system.log_level,
        log_dir=data_dir / "logs",
        secrets=[s for s in secrets if s],
        json_lines=settings.system.log_json if log_json is None else log_json,
    )
    logger.configure(extra={"correlation_id": uuid.uuid4().hex[:12]})
    return masker


def mask(text: str) -> str:
    """``text`` with every known secret and credential-shaped value masked (for terminal output)."""
    return observability_logging.masker(text)
