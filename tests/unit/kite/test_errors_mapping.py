"""Kite error envelopes map to the exception table of kite-protocol.md section 3.2."""

from __future__ import annotations

import json

import pytest

from tickwise.adapters.kite.errors import (
    KiteDataError,
    KiteError,
    KiteGeneralError,
    KiteInputError,
    KiteNetworkError,
    KitePermissionError,
    KiteRateLimitError,
    KiteTokenError,
    error_from_response,
)
from tickwise.domain.errors import BrokerError


def _body(error_type: object, message: str = "boom") -> bytes:
    return json.dumps(
        {"status": "error", "message": message, "error_type": error_type, "data": None}
    ).encode()


@pytest.mark.parametrize(
    ("status", "error_type", "cls", "retryable"),
    [
        (403, "TokenException", KiteTokenError, False),
        (403, "PermissionException", KitePermissionError, False),
        (400, "InputException", KiteInputError, False),
        (429, "NetworkException", KiteRateLimitError, True),
        (503, "NetworkException", KiteNetworkError, True),
        (502, "DataException", KiteDataError, True),
        (500, "GeneralException", KiteGeneralError, True),
        (500, "OrderException", KiteGeneralError, False),
        (400, "UserException", KiteGeneralError, False),
        (500, "SomethingNew", KiteGeneralError, False),
        (404, "GeneralException", KiteGeneralError, False),
    ],
)
def test_error_type_maps_to_exception_class_and_retry_policy(
    status: int, error_type: str, cls: type[KiteError], retryable: bool
) -> None:
    err = error_from_response(status, _body(error_type, "the message"), "application/json")
    assert type(err) is cls
    assert err.status == status
    assert err.message == "the message"
    assert err.retryable is retryable
    assert isinstance(err, BrokerError)


def test_non_json_gateway_page_becomes_data_error_with_real_status() -> None:
    err = error_from_response(504, b"<html><body>Gateway Timeout</body></html>", "text/html")
    assert type(err) is KiteDataError
    assert err.status == 504
    assert err.retryable
    assert "Gateway Timeout" in err.message


def test_json_without_message_is_a_data_error() -> None:
    err = error_from_response(500, b'{"status": "error"}', "application/json")
    assert type(err) is KiteDataError


def test_token_error_tells_the_user_to_log_in_again() -> None:
    err = error_from_response(403, _body("TokenException", "Incorrect `api_key` or `access_token`."))
    assert "tickwise auth login" in str(err)
    assert "HTTP 403" in str(err)


def test_plain_429_without_error_type_is_a_rate_limit() -> None:
    err = error_from_response(429, b'{"message": "slow down"}')
    assert type(err) is KiteRateLimitError
