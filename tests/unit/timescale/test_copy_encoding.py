from __future__ import annotations

import struct

import numpy as np
import pandas as pd
import pytest

from tickwise.adapters.timescale.bulk import Column, encode_copy_binary
from tickwise.adapters.timescale.candle_repository import encode_candles
from tickwise.adapters.timescale.pool import redact_url
from tickwise.cli.db import parse_duration
from tickwise.domain.errors import ConfigError, DataValidationError


def _decode(payload: bytes) -> list[list[bytes | None]]:
    """A tiny reference decoder of PostgreSQL's binary COPY format."""
    assert payload[:11] == b"PGCOPY\n\xff\r\n\x00"
    pos = 19
    rows = []
    while True:
        (nf,) = struct.unpack_from(">h", payload, pos)
        pos += 2
        if nf == -1:
            break
        row: list[bytes | None] = []
        for _ in range(nf):
            (length,) = struct.unpack_from(">i", payload, pos)
            pos += 4
            if length == -1:
                row.append(None)
            else:
                row.append(payload[pos : pos + length])
                pos += length
        rows.append(row)
    assert pos == len(payload)
    return rows


def test_binary_copy_rows_carry_text_nulls_and_big_endian_numbers() -> None:
    cols = [
        Column("a", "int8", np.array([1, 2, 3])),
        Column("t", "text", np.array(["1m", "15m", None], dtype=object)),
        Column("f", "float8", np.array([1.5, np.nan, 3.0]), nan_to_null=True),
        Column("o", "int8", np.array([7, 0, 9]), np.array([False, True, False])),
    ]
    rows = _decode(encode_copy_binary(cols, 3, nan_as_null=True))
    by_first = {struct.unpack(">q", r[0])[0]: r for r in rows if r[0] is not None}
    assert by_first[1][1:] == [b"1m", struct.pack(">d", 1.5), struct.pack(">q", 7)]
    assert by_first[2][1:] == [b"15m", None, None]
    assert by_first[3][1] is None and by_first[3][3] == struct.pack(">q", 9)


def test_nan_stays_a_value_when_the_insert_converts_it() -> None:
    cols = [Column("f", "float8", np.array([np.nan]), nan_to_null=True)]
    (row,) = _decode(encode_copy_binary(cols, 1))
    assert row[0] is not None and np.isnan(struct.unpack(">d", row[0])[0])


def test_timestamps_are_microseconds_since_2000() -> None:
    frame = pd.DataFrame(
        {
            "instrument_token": [1],
            "timeframe": ["1m"],
            "time": [pd.Timestamp("2000-01-01 00:00:01", tz="UTC")],
            "open": [1.0],
            "high": [1.0],
            "low": [1.0],
            "close": [1.0],
            "volume": [0],
        }
    )
    cols = encode_candles(frame)
    (row,) = _decode(encode_copy_binary(cols, 1))
    assert struct.unpack(">q", row[2])[0] == 1_000_000  # type: ignore[arg-type]


def test_candle_validation_names_the_first_bad_row() -> None:
    frame = pd.DataFrame(
        {
            "instrument_token": [1, 1],
            "timeframe": ["1m", "1m"],
            "time": pd.to_datetime(["2024-01-01 09:15", "2024-01-01 09:16"]).tz_localize("Asia/Kolkata"),
            "open": [10.0, 10.0],
            "high": [11.0, 11.0],
            "low": [9.0, 9.0],
            "close": [10.0, 12.0],
            "volume": [1, 1],
        }
    )
    with pytest.raises(DataValidationError, match=r"row 1 .*open/close outside"):
        encode_candles(frame)


def test_redact_url_hides_the_password_only() -> None:
    assert redact_url("postgresql://u:pw@h:5/db") == "postgresql://u:***@h:5/db"
    assert redact_url("postgresql://u@h:5/db") == "postgresql://u@h:5/db"


def test_retention_durations_parse_and_bad_ones_are_config_errors() -> None:
    assert parse_duration("7d").days == 7
    assert parse_duration("12h").total_seconds() == 12 * 3600
    with pytest.raises(ConfigError):
        parse_duration("seven days")
