"""HTTP channels: a generic JSON webhook, a Slack incoming webhook, and the Telegram Bot API.

These three are a single HTTPS POST each, over the httpx client the project already uses; we keep them
as our own code rather than apprise's plugins because apprise's Slack plugin builds the
``hooks.slack.com`` address itself (a proxy or a local receiver cannot be targeted), and its errors and
logs quote the URL, which for all three channels *is* the secret. Errors here name the channel and the
HTTP status only; ``repr`` shows a redacted address.
"""

from __future__ import annotations

import httpx

from tickwise.adapters.alerts.message import Alert, DeliveryError
from tickwise.adapters.alerts.redact import redact_url


class _HttpSink:
    name: str

    def __init__(self, url: str, *, timeout_s: float, client: httpx.AsyncClient | None) -> None:
        self._url = url
        self._client = client or httpx.AsyncClient(timeout=timeout_s)

    async def _post(self, payload: dict[str, object]) -> None:
        try:
            response = await self._client.post(self._url, json=payload)
            response.raise_for_status()
        except httpx.HTTPStatusError as exc:
            raise DeliveryError(f"{self.name} answered HTTP {exc.response.status_code}") from None
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{self.name} unreachable: {type(exc).__name__}") from None

    async def aclose(self) -> None:
        await self._client.aclose()


class WebhookSink(_HttpSink):
    """POST the alert as JSON (``priority``, ``key``, ``message``, ``at``, and ``signal`` for signals)."""

    def __init__(
        self,
        url: str,
        *,
        name: str = "webhook",
        timeout_s: float = 5.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(url, timeout_s=timeout_s, client=client)
        self.name = name

    async def send(self, alert: Alert) -> None:
        await self._post(alert.as_json())

    def __repr__(self) -> str:
        return f"WebhookSink(name={self.name!r}, url={redact_url(self._url)!r})"


class SlackSink(_HttpSink):
    """Post to a Slack incoming webhook (``https://hooks.slack.com/services/…``) as ``{"text": …}``."""

    def __init__(
        self,
        url: str,
        *,
        name: str = "slack",
        timeout_s: float = 5.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(url, timeout_s=timeout_s, client=client)
        self.name = name

    async def send(self, alert: Alert) -> None:
        await self._post({"text": alert.as_text()})

    def __repr__(self) -> str:
        return f"SlackSink(name={self.name!r}, url={redact_url(self._url)!r})"


class TelegramSink(_HttpSink):
    """Send the alert as a Telegram message through the Bot API (the token never appears in logs)."""

    def __init__(
        self,
        bot_token: str,
        chat_id: str,
        *,
        name: str = "telegram",
        api_root: str = "https://api.telegram.org",
        timeout_s: float = 5.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            f"{api_root.rstrip('/')}/bot{bot_token}/sendMessage", timeout_s=timeout_s, client=client
        )
        self.name = name
        self.chat_id = chat_id

    async def send(self, alert: Alert) -> None:
        await self._post({"chat_id": self.chat_id, "text": alert.as_text(), "disable_web_page_preview": True})

    def __repr__(self) -> str:
        return f"TelegramSink(name={self.name!r}, chat_id={self.chat_id!r})"
