"""The binary COPY decoder of the training load's feature reads: fixed-width rows of a timestamp and
float8 values decode to int64 ns and a float64 matrix; anything else is refused with a clear error."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from tickwise.adapters.timescale.frames import decode_time_float_rows
from tickwise.domain.errors import DataValidationError

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
PG_EPOCH_US = 946_684_800_000_000


def _row(t_us: int, values: list[float | None]) -> bytes:
    out = struct.pack(">hiq", len(values) + 1, 8, t_us - PG_EPOCH_US)
    for v in values:
        out += struct.pack(">i", -1) if v is None else struct.pack(">id", 8, v)
    return out


def test_rows_decode_to_nanoseconds_and_a_float64_matrix() -> None:
    data = (
        HEADER
        + _row(1_700_000_000_000_000, [1.5, float("nan")])
        + _row(1_700_000_060_000_000, [-0.0, 2.0])
        + TRAILER
    )
    times, values = decode_time_float_rows(data, 2)
    assert times.tolist() == [1_700_000_000_000_000_000, 1_700_000_060_000_000_000]
    assert values.dtype == np.float64 and values.flags.c_contiguous and values.shape == (2, 2)
    assert values[0, 0] == 1.5 and np.isnan(values[0, 1]) and np.signbit(values[1, 0])
    empty_times, empty = decode_time_float_rows(HEADER + TRAILER, 3)
    assert len(empty_times) == 0 and empty.shape == (0, 3)


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"not a copy stream at all", "not a PostgreSQL binary COPY"),
        (HEADER + _row(0, [1.0]), "no trailer"),
        (HEADER + _row(0, [1.0])[:-3] + TRAILER, "not one timestamp"),
        (HEADER + _row(0, [None, 1.0]) + b"\x00" * 8 + TRAILER, "field count or width"),
    ],
)
def test_a_stream_that_is_not_fixed_width_rows_is_refused(data: bytes, problem: str) -> None:
    with pytest.raises(DataValidationError, match=problem):
        decode_time_float_rows(data, 2 if "width" in problem else 1)
