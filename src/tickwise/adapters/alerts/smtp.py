"""E-mail channel: one message per alert through an SMTP server (STARTTLS optional).

Our own code over the standard library's ``smtplib`` rather than apprise's ``mailto://`` plugin: that
plugin takes the SMTP password inside its URL (the configuration would hold the secret and its logs the
URL), while here the credentials are plain constructor arguments that the composition root reads from
environment variables only. ``smtplib`` blocks, so sends run in the channel's own single worker thread
(never the shared default executor: a hanging SMTP server must not tie up threads the pipeline needs,
and the dispatcher's timeout cannot stop a thread, only stop waiting for it).
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from tickwise.adapters.alerts.message import Alert, DeliveryError


class EmailSink:
    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: Sequence[str],
        *,
        name: str = "email",
        starttls: bool = False,
        username: str = "",
        password: str = "",
        timeout_s: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if not recipients:
            raise ValueError(f"e-mail channel {name!r} has no recipients")
        self.name = name
        self.host = host
        self.port = port
        self.sender = sender
        self.recipients = tuple(recipients)
        self.starttls = starttls
        self._username = username
        self._password = password
        self.timeout_s = timeout_s
        self._tls = tls_context
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"smtp-{name}")

    def message(self, alert: Alert) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = alert.subject
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = formatdate(alert.at, localtime=False)
        msg["Message-ID"] = make_msgid(domain="tickwise")
        msg["X-Tickwise-Kind"] = alert.kind
        msg["X-Tickwise-Priority"] = alert.priority
        msg.set_content(alert.as_text() + "\n")
        return msg

    async def send(self, alert: Alert) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._send, self.message(alert))

    def _send(self, msg: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls(context=self._tls or ssl.create_default_context())
                if self._username:
                    smtp.login(self._username, self._password)
                smtp.send_message(msg)
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"{self.name}: SMTP {self.host}:{self.port} answered {exc.smtp_code}"
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"{self.name}: SMTP {self.host}:{self.port}: {type(exc).__name__}: {exc}"
            ) from None

    async def aclose(self) -> None:
        """Stop the worker thread (each message uses its own SMTP connection: alerts are rare)."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def __repr__(self) -> str:
        return f"EmailSink(name={self.name!r}, host={self.host!r}, port={self.port}, to={self.recipients!r})"
