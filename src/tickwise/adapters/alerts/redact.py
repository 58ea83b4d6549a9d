"""Redacted forms of channel addresses: webhook and Slack URLs carry their secret in the path/query."""

from __future__ import annotations

from urllib.parse import urlsplit


def redact_url(url: str) -> str:
    """``scheme://host[:port]/…`` with credentials, path and query hidden (safe to log).

    >>> redact_url("https://hooks.slack.com/services/T000/B000/XXXX")
    'https://hooks.slack.com/***'
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "***"
    if not parts.scheme or not host:
        return "***"
    tail = "/***" if (parts.path not in ("", "/") or parts.query) else ""
    return f"{parts.scheme}://{host}{port}{tail}"
