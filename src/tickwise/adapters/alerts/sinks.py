"""HTTP alert sinks: a generic JSON webhook and the Telegram Bot API (``sendMessage``)."""

from __future__ import annotations

from typing import Any

import httpx

from tickwise.adapters.alerts.dispatcher import Alert


class WebhookSink:
    """POST the alert as JSON (``priority``, ``key``, ``message``, ``at``) to ``url``."""

    name = "webhook"

    def __init__(self, url: str, *, timeout_s: float = 5.0, client: httpx.AsyncClient | None = None) -> None:
        self.url = url
        self._client = client or httpx.AsyncClient(timeout=timeout_s)

    async def send(self, alert: Alert) -> None:
        response = await self._client.post(self.url, json=alert.as_json())
        response.raise_for_status()

    async def aclose(self) -> None:
        await self._client.aclose()


class TelegramSink:
    """Send the alert as a Telegram message through the Bot API (the token never appears in logs)."""

    name = "telegram"

    def __init__(
        self,
        bot_token: str,
        chat_id: str,
        *,
        api_root: str = "https://api.telegram.org",
        timeout_s: float = 5.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._url = f"{api_root.rstrip('/')}/bot{bot_token}/sendMessage"
        self.chat_id = chat_id
        self._client = client or httpx.AsyncClient(timeout=timeout_s)

    async def send(self, alert: Alert) -> None:
        payload: dict[str, Any] = {
            "chat_id": self.chat_id,
            "text": f"[{alert.priority.upper()}] tickwise: {alert.message}",
            "disable_web_page_preview": True,
        }
        try:
            response = await self._client.post(self._url, json=payload)
            response.raise_for_status()
        except httpx.HTTPStatusError as exc:  # keep the bot token out of the message
            raise RuntimeError(f"telegram answered HTTP {exc.response.status_code}") from None
        except httpx.HTTPError as exc:
            raise RuntimeError(f"telegram unreachable: {type(exc).__name__}") from None

    def __repr__(self) -> str:
        return f"TelegramSink(chat_id={self.chat_id!r})"

    async def aclose(self) -> None:
        await self._client.aclose()
