"""The spill file format: write batches kept on disk while the database is unavailable.

Not pickle: a spill file is read back by a later run, possibly of a newer build, and loading it must
never run code nor silently load altered rows. A file is two lines of UTF-8 JSON:

* a header ``{"magic": "tickwise-spill", "version": 1, "table": ..., "rows": N, "crc32": C,
  "bytes": B}``;
* the batch: a JSON list of N encoded rows, exactly B bytes, whose CRC32 is C.

Rows are encoded by a closed registry of types (the live path's row types and their parts); a tagged
object names its type and the decoder builds only the registered ones, field by field. Anything that
does not match (wrong magic, unknown version, another table, a row count or checksum that differs, a
truncated or zero-length file, an unknown type tag) raises :class:`SpillFormatError`, and the writer
moves the file aside (``spill_dir/rejected/``) instead of loading it.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import zlib
from collections.abc import Callable
from datetime import datetime
from typing import TypeAlias

import numpy as np

from tickwise.domain.bar import Bar
from tickwise.domain.candle import Candle
from tickwise.domain.signal import Signal
from tickwise.domain.tick import OHLC, Depth, DepthLevel, Tick
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.live.engine import FeatureRow, PendingSignal
from tickwise.pipelines.live.timeframes import MemberRow

MAGIC = "tickwise-spill"
VERSION = 1
SUFFIX = ".spill"

Json: TypeAlias = bool | int | float | str | list["Json"] | dict[str, "Json"] | None

# The only types a spill file may name. A new row type of the live path is added here (and keeps its
# name for ever: renaming it would make older spill files foreign).
_DATACLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (Tick, DepthLevel, Depth, OHLC, Bar, Candle, Signal, FeatureRow, PendingSignal, MemberRow)
}
_ENUMS: dict[str, type[enum.Enum]] = {"Timeframe": Timeframe}


class SpillFormatError(ValueError):
    """A spill file that is not a complete, intact spill file of this table and format version."""


def encode_value(value: object) -> Json:
    """``value`` as JSON (registered dataclasses and enums, datetimes, tuples, numpy arrays, scalars)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        # JSON has no NaN/inf; tag them so the file stays strict JSON.
        return value if math.isfinite(value) else {"$f": repr(value)}
    if isinstance(value, enum.Enum):
        name = type(value).__name__
        if _ENUMS.get(name) is not type(value):
            raise TypeError(f"cannot spill enum {type(value).__qualname__}")
        return {"$e": name, "v": encode_value(value.value)}
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise TypeError("cannot spill a naive datetime")
        return {"$dt": value.isoformat()}
    if isinstance(value, np.ndarray):
        return {"$nd": str(value.dtype), "v": [encode_value(x) for x in value.tolist()]}
    if isinstance(value, np.generic):
        return encode_value(value.item())
    if isinstance(value, tuple):
        return {"$tup": [encode_value(x) for x in value]}
    if isinstance(value, list):
        return [encode_value(x) for x in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        if _DATACLASSES.get(name) is not type(value):
            raise TypeError(f"cannot spill {type(value).__qualname__}: not a registered row type")
        fields = {f.name: encode_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"$t": name, "f": fields}
    raise TypeError(f"cannot spill a value of type {type(value).__qualname__}")


def decode_value(data: Json) -> object:
    """The inverse of :func:`encode_value`; raises :class:`SpillFormatError` on anything unexpected."""
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):
        return [decode_value(x) for x in data]
    if "$t" in data:
        cls = _DATACLASSES.get(str(data["$t"]))
        fields = data.get("f")
        if cls is None or not isinstance(fields, dict):
            raise SpillFormatError(f"unknown row type {data['$t']!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        if not set(fields) <= names:
            raise SpillFormatError(f"unexpected fields for {cls.__name__}: {sorted(set(fields) - names)}")
        try:
            return cls(**{k: decode_value(v) for k, v in fields.items()})
        except TypeError as exc:
            raise SpillFormatError(f"bad {cls.__name__}: {exc}") from exc
    if "$dt" in data:
        try:
            t = datetime.fromisoformat(str(data["$dt"]))
        except ValueError as exc:
            raise SpillFormatError(f"bad datetime: {exc}") from exc
        if t.tzinfo is None:
            raise SpillFormatError("naive datetime in a spill file")
        return t
    if "$e" in data:
        enum_cls = _ENUMS.get(str(data["$e"]))
        if enum_cls is None:
            raise SpillFormatError(f"unknown enum {data['$e']!r}")
        try:
            return enum_cls(decode_value(data.get("v")))
        except ValueError as exc:
            raise SpillFormatError(str(exc)) from exc
    if "$tup" in data:
        items = data["$tup"]
        if not isinstance(items, list):
            raise SpillFormatError("bad tuple")
        return tuple(decode_value(x) for x in items)
    if "$nd" in data:
        items = data.get("v")
        if not isinstance(items, list):
            raise SpillFormatError("bad array")
        try:
            return np.asarray([decode_value(x) for x in items], dtype=np.dtype(str(data["$nd"])))
        except (TypeError, ValueError) as exc:
            raise SpillFormatError(f"bad array: {exc}") from exc
    if "$f" in data:
        text = data["$f"]
        if text not in ("nan", "inf", "-inf"):
            raise SpillFormatError(f"bad float {text!r}")
        return float(str(text))
    raise SpillFormatError("untagged object in a spill file")


def _reject_constant(name: str) -> float:
    raise SpillFormatError(f"non-standard JSON constant {name}")


def encode_batch(table: str, rows: list[object]) -> bytes:
    """The bytes of a spill file holding ``rows`` of ``table``."""
    body = json.dumps([encode_value(r) for r in rows], separators=(",", ":"), allow_nan=False).encode()
    header = {
        "magic": MAGIC,
        "version": VERSION,
        "table": table,
        "rows": len(rows),
        "bytes": len(body),
        "crc32": zlib.crc32(body),
    }
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + body + b"\n"


def decode_batch(data: bytes, table: str) -> list[object]:
    """The rows of a spill file of ``table``; :class:`SpillFormatError` when it is not one, intact."""
    if not data:
        raise SpillFormatError("empty file")
    head, sep, rest = data.partition(b"\n")
    if not sep:
        raise SpillFormatError("no header line (truncated or foreign file)")
    header = _load(head, "header")
    if not isinstance(header, dict) or header.get("magic") != MAGIC:
        raise SpillFormatError("not a tickwise spill file")
    if header.get("version") != VERSION:
        raise SpillFormatError(f"spill format version {header.get('version')!r} (this build reads {VERSION})")
    if header.get("table") != table:
        raise SpillFormatError(f"a spill file of table {header.get('table')!r}, not {table!r}")
    size, rows, crc = header.get("bytes"), header.get("rows"), header.get("crc32")
    if not isinstance(size, int) or not isinstance(rows, int) or not isinstance(crc, int):
        raise SpillFormatError("incomplete header")
    body = rest[:size]
    if len(body) != size or rest[size:] != b"\n":
        raise SpillFormatError(f"body of {len(rest)} bytes, header says {size} (truncated file?)")
    if zlib.crc32(body) != crc:
        raise SpillFormatError("checksum mismatch (the file was altered or damaged)")
    items = _load(body, "body")
    if not isinstance(items, list) or len(items) != rows:
        raise SpillFormatError(f"the header announces {rows} rows, the body holds another number")
    return [decode_value(x) for x in items]


def _load(raw: bytes, part: str) -> Json:
    constant: Callable[[str], float] = _reject_constant
    try:
        value: Json = json.loads(raw.decode("utf-8"), parse_constant=constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise SpillFormatError(f"unreadable {part}: {exc}") from exc
    return value
