"""Logging: loguru sinks, stdlib logging routed into loguru, and secrets masked in every line.

``configure_logging`` is called once by the composition root with values from the settings::

    configure_logging(
        settings.system.log_level,
        log_dir=settings.system.data_dir / "logs",
        secrets=[settings.broker.api_secret.get_secret_value(), settings.broker.access_token.get_secret_value()],
    )

Masking works on the fully rendered line (message, extras and traceback alike), so a secret cannot slip
out through an exception message or a library's log record. Known secret values are replaced by
``***``, and so are values that look like credentials by shape: ``api_secret=...``,
``access_token: ...``, Kite's ``Authorization: token <api_key>:<access_token>``, passwords in
``scheme://user:password@host`` URLs and in ``?password=`` query parameters, and the path of Slack and
Discord webhook URLs (which is their secret). ``secret_parts`` expands a configured URL into every
piece that must be masked on its own (the password, secret query values, a webhook's path), because
libraries print URLs in pieces. The log file is created 0600 in a 0700 directory.

Anything else that prints a URL should use ``redact_url`` (``hide_path=True`` for webhook URLs).
"""

from __future__ import annotations

import inspect
import io
import json
import logging
import logging.handlers
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from loguru import logger

MASK = "***"
LOG_FILE_NAME = "tickwise.log"
_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {name}:{function}:{line} - {message}"
# Secret values shorter than this are not masked by value: masking "a" or "42" would mangle every line.
_MIN_SECRET_LENGTH = 6

_SECRET_NAMES = (
    "api_secret|access_token|request_token|refresh_token|enctoken|password|passwd|pwd|sslpassword|"  # nosec B105: not a password: a name, a message or a pattern of key names
    "secret|checksum|bot_token|token"
)
_KEY_VALUE = re.compile(
    rf"(?P<key>\b(?:{_SECRET_NAMES})\b[\"']?\s*[:=]\s*[\"']?)(?P<value>[^\s\"',&;}}]+)",
    re.IGNORECASE,
)
_WEBHOOK_PATH = re.compile(
    r"(?P<key>\b(?:hooks\.slack\.com/(?:services|workflows|triggers)/|"
    r"discord(?:app)?\.com/api/webhooks/))(?P<value>[^\s\"'<>]+)",
    re.IGNORECASE,
)
_KITE_AUTH = re.compile(r"(?P<key>\btoken\s+[^\s:]+:)(?P<value>[^\s\"',;]+)", re.IGNORECASE)
_URL_PASSWORD = re.compile(
    r"(?P<key>\b[a-z][a-z0-9+.-]*://[^\s:/@]+:)(?P<value>[^\s@/]+)(?=@)", re.IGNORECASE
)


class SecretMasker:
    """Replace secret values and credential-shaped substrings in text with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = {s for s in secrets if s and len(s) >= _MIN_SECRET_LENGTH}
        # Longest first, so a secret that contains another is masked whole.
        self._values = sorted(values, key=len, reverse=True)

    def add(self, secret: str) -> None:
        """Mask ``secret`` from now on (e.g. an access token obtained after start-up)."""
        if secret and len(secret) >= _MIN_SECRET_LENGTH and secret not in self._values:
            self._values = sorted([*self._values, secret], key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        for pattern in (_KEY_VALUE, _KITE_AUTH, _URL_PASSWORD, _WEBHOOK_PATH):
            text = pattern.sub(lambda m: m.group("key") + MASK, text)
        return text


_SECRET_QUERY = re.compile(rf"^(?:{_SECRET_NAMES}|key|apikey|api_key|sig|signature)$", re.IGNORECASE)


def redact_url(url: str, *, hide_path: bool = False) -> str:
    """``url`` safe to show: password, secret query values (and with ``hide_path`` the path) as ``***``.

    ``hide_path`` is for webhook URLs, whose path is the credential (``/services/T0/B0/<secret>``).
    Text that is not a URL comes back masked by shape, never unchanged with a secret in it.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return SecretMasker()(url)
    if not parts.scheme or not parts.netloc:
        return SecretMasker()(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if port:
        host = f"{host}:{port}"
    if parts.password is not None:
        host = f"{parts.username}:{MASK}@{host}" if parts.username else f"{MASK}@{host}"
    elif parts.username:
        host = f"{parts.username}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SECRET_QUERY.match(k) for k, _ in pairs) or hide_path:
            masked = [(k, MASK if hide_path or _SECRET_QUERY.match(k) else v) for k, v in pairs]
            query = urlencode(masked, safe="*")
    path = f"/{MASK}" if hide_path and parts.path not in ("", "/") else parts.path
    return urlunsplit((parts.scheme, host, path, query, "" if hide_path else parts.fragment))


def secret_parts(value: str) -> list[str]:
    """``value`` and, when it is a URL, each piece of it that is a secret on its own.

    Libraries print URLs in pieces (the host in one place, the password or path in another), so the
    masker is given the password, the values of secret-looking query parameters and the path.
    """
    out = [value]
    try:
        parts = urlsplit(value)
    except ValueError:
        return out
    if not parts.scheme or not parts.netloc:
        return out
    if parts.password:
        out.append(parts.password)
    for key, item in parse_qsl(parts.query, keep_blank_values=True):
        if _SECRET_QUERY.match(key) and item:
            out.append(item)
    if parts.path not in ("", "/") and parts.scheme in ("http", "https"):
        # A webhook's path is its secret; a URL's path is rarely shorter than 6 characters anyway.
        out.append(parts.path)
        out.extend(segment for segment in parts.path.split("/") if len(segment) >= 16)
    return out


class _MaskedStream:
    """A loguru sink writing masked lines to a text stream."""

    def __init__(self, stream: TextIO, masker: SecretMasker) -> None:
        self._stream = stream
        self._masker = masker

    def write(self, message: str) -> None:
        self._stream.write(self._masker(message))

    def flush(self) -> None:
        self._stream.flush()


class _MaskedRotatingFile:
    """A loguru sink writing masked lines to a size-rotated file (stdlib handler does the rotation)."""

    def __init__(self, path: Path, masker: SecretMasker, max_bytes: int, backups: int) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._handler = _PrivateRotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        self._handler.terminator = ""
        self._handler.setFormatter(logging.Formatter("%(message)s"))
        self._masker = masker

    def write(self, message: str) -> None:
        record = logging.makeLogRecord({"msg": self._masker(message), "levelno": logging.INFO})
        self._handler.emit(record)

    def close(self) -> None:
        self._handler.close()


class _PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Every log file (the first and each one after a rollover) is created 0600: it is nobody else's."""

    def _open(self) -> io.TextIOWrapper:
        def opener(path: str, flags: int) -> int:
            fd = os.open(path, flags, 0o600)
            os.fchmod(fd, 0o600)  # an older file may have been created 0644
            return fd

        # The handler owns the stream and closes it (close/rollover), so no context manager here.
        stream = open(  # noqa: SIM115
            self.baseFilename, self.mode, encoding=self.encoding, errors=self.errors, opener=opener
        )
        assert isinstance(stream, io.TextIOWrapper)
        return stream


class InterceptHandler(logging.Handler):
    """Route stdlib ``logging`` records (asyncpg, alembic, httpx, ...) into loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        # Find the caller outside the logging module so loguru reports the right origin.
        frame = inspect.currentframe()
        depth = 0
        while frame is not None and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


CHATTY_LIBRARIES = ("httpx", "httpcore", "alembic", "websockets", "aiohttp.access", "mlflow")

_file_sinks: list[_MaskedRotatingFile] = []
masker = SecretMasker()


def configure_logging(
    level: str = "INFO",
    *,
    log_dir: Path | None = None,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
    max_bytes: int = 50 * 1024 * 1024,
    backups: int = 5,
    json_lines: bool = False,
) -> SecretMasker:
    """(Re)configure logging: masked stderr sink, optional masked file sink, stdlib intercepted.

    ``level`` is a loguru level name (DEBUG, INFO, WARNING, ERROR). With ``log_dir`` a file
    ``log_dir/tickwise.log`` rotated at ``max_bytes`` (``backups`` old files kept) receives the same
    lines. Calling it again replaces the previous configuration. Returns the masker, so secrets that
    appear later (a fresh access token) can be added with ``masker.add(...)``. With ``json_lines``
    every line is one JSON object (see :func:`json_line`), masked like the text form.
    """
    global masker
    level = level.upper()
    logger.remove()
    for sink in _file_sinks:
        sink.close()
    _file_sinks.clear()
    masker = SecretMasker(secrets)
    # diagnose=False: loguru's variable dumps in tracebacks would print local values, secrets included.
    common: dict[str, Any] = {
        "level": level,
        "format": _json_format if json_lines else _FORMAT,
        "backtrace": False,
        "diagnose": False,
    }
    logger.add(_MaskedStream(stream or sys.stderr, masker), colorize=False, **common)
    if log_dir is not None:
        file_sink = _MaskedRotatingFile(Path(log_dir) / LOG_FILE_NAME, masker, max_bytes, backups)
        _file_sinks.append(file_sink)
        logger.add(file_sink.write, **common)
    logging.basicConfig(handlers=[InterceptHandler()], level=logging.getLevelName(level), force=True)
    # These libraries log every HTTP request, WebSocket open/close and migration step at INFO, which
    # would drown tickwise's own lines and the progress bars; their detail stays available under DEBUG.
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
    return masker


def json_line(record: Any) -> str:
    """One log record as a JSON object: time, level, logger, function, line, message, the bound extras
    (``correlation_id`` of the CLI session, ``job`` of a backfill, ...) and the exception text if any."""
    data: dict[str, Any] = {
        "time": record["time"].isoformat(),
        "level": record["level"].name,
        "logger": record["name"],
        "function": record["function"],
        "line": record["line"],
        "message": record["message"],
    }
    data.update({k: v for k, v in record["extra"].items() if not k.startswith("_")})
    if record["exception"] is not None:
        import traceback

        exc = record["exception"]
        data["exception"] = "".join(traceback.format_exception(exc.type, exc.value, exc.traceback)).rstrip()
    return json.dumps(data, default=str)


def _json_format(record: Any) -> str:
    # loguru treats the returned string as a format template: hand the JSON over through an extra so
    # its braces are not parsed, and leave out {exception} (it is inside the JSON already).
    record["extra"]["_json"] = json_line(record)
    return "{extra[_json]}\n"
