"""Kite Connect errors, mapped from the REST ``error_type`` (kite-protocol.md section 3.2).

BrokerError
 +-- KiteError                 .status (HTTP status, 0 when none) and .message (server text)
      +-- KiteTokenError       TokenException: session expired or invalid -> log in again
      +-- KitePermissionError  PermissionException: e.g. no historical add-on
      +-- KiteInputError       InputException: bad parameters, span too wide
      +-- KiteRateLimitError   NetworkException with HTTP 429 (retryable)
      +-- KiteNetworkError     NetworkException otherwise, transport errors, timeouts (retryable)
      +-- KiteDataError        DataException, or a body that is not the JSON envelope (retryable)
      +-- KiteGeneralError     GeneralException, OrderException, any unknown error_type
"""

from __future__ import annotations

import json

from tickwise.domain.errors import BrokerError

# Statuses worth another try: rate limit, OMS/API/gateway down. 500 only for GeneralException.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


class KiteError(BrokerError):
    """A failure reported by Kite (or the simulator); keeps the HTTP status and the server message."""

    _retryable = False

    def __init__(self, message: str, status: int = 0, error_type: str | None = None) -> None:
        self.message = message
        self.status = status
        self.error_type = error_type
        where = f"HTTP {status}" if status else "no HTTP status"
        kind = f" {error_type}" if error_type else ""
        super().__init__(f"Kite{kind} ({where}): {message}")

    @property
    def retryable(self) -> bool:
        """Whether another attempt may succeed (rate limit, network, gateway trouble)."""
        return self._retryable


class KiteTokenError(KiteError):
    """The access token is expired or invalid: run `tickwise auth login`."""

    def __init__(self, message: str, status: int = 403, error_type: str | None = "TokenException") -> None:
        super().__init__(message, status, error_type)

    def __str__(self) -> str:
        return f"{super().__str__()} (the Kite session is expired or invalid: run `tickwise auth login`)"


class KitePermissionError(KiteError):
    pass


class KiteInputError(KiteError):
    pass


class KiteRateLimitError(KiteError):
    _retryable = True


class KiteNetworkError(KiteError):
    _retryable = True


class KiteDataError(KiteError):
    _retryable = True


class KiteGeneralError(KiteError):
    @property
    def retryable(self) -> bool:
        # Only server-side 5xx failures of GeneralException are worth a retry, and OrderException never.
        return self.status >= 500 and self.error_type in (None, "GeneralException")


_BY_TYPE: dict[str, type[KiteError]] = {
    "TokenException": KiteTokenError,
    "PermissionException": KitePermissionError,
    "InputException": KiteInputError,
    "DataException": KiteDataError,
    "GeneralException": KiteGeneralError,
}


def error_for(status: int, error_type: str | None, message: str) -> KiteError:
    """Build the exception for an error envelope (unknown ``error_type`` -> KiteGeneralError)."""
    if error_type == "NetworkException":
        cls: type[KiteError] = KiteRateLimitError if status == 429 else KiteNetworkError
    elif error_type in _BY_TYPE:
        cls = _BY_TYPE[error_type]
    elif status == 429:
        cls = KiteRateLimitError
    else:
        cls = KiteGeneralError
    return cls(message, status=status, error_type=error_type)


def error_from_response(status: int, body: bytes, content_type: str = "") -> KiteError:
    """Map an HTTP error response to a KiteError; a body that is not the JSON envelope -> KiteDataError."""
    try:
        payload: object = json.loads(body.decode("utf-8")) if body else None
    except (UnicodeDecodeError, ValueError):
        payload = None
    if not isinstance(payload, dict) or not isinstance(payload.get("message"), str):
        snippet = body[:120].decode("utf-8", "replace").strip().replace("\n", " ")
        kind = content_type.split(";")[0] or "no content type"
        return KiteDataError(
            f"unexpected non-JSON error response ({kind}): {snippet!r}", status=status, error_type=None
        )
    error_type = payload.get("error_type")
    return error_for(status, error_type if isinstance(error_type, str) else None, payload["message"])
