"""Kite ticker binary frames <-> :class:`~tickwise.domain.tick.Tick` (kite-protocol.md sections 2.4-2.7).

Frame: ``uint16 N`` then N times ``uint16 length`` + packet. The packet length alone names its kind:

=====  ======================  =====================================================
bytes  kind                    fields
=====  ======================  =====================================================
8      ltp (any segment)       token, last price
28     index quote             token, ltp, high, low, open, close, net change (wire)
32     index full              the 28 bytes + exchange timestamp
44     quote (tradable)        token, ltp, ltq, atp, volume, buy qty, sell qty, o/h/l/c
184    full (tradable)         the 44 bytes + ltt, oi, oi high/low, exchange ts, 5+5 depth
=====  ======================  =====================================================

Decoding rules:

* prices and the index net change are **signed** int32 divided by the segment divisor
  (:func:`tickwise.domain.instrument.price_divisor`); quantities and timestamps are unsigned;
* timestamps become tz-aware ``Asia/Kolkata`` datetimes; epoch 0 becomes ``None``;
* ``Tick.change`` is the **percentage** ``(ltp - close) * 100 / close`` (0 when close is 0), exactly as
  the official Python client reports it, for index packets too (the wire's absolute index change is
  ignored on decode and recomputed from ``last_price - close`` on encode);
* :func:`decode_frame` never raises. Empty and 1-byte (heartbeat) frames give ``[]``; a packet count
  that overstates the data yields the complete packets; zero-length and unknown-length packets are
  skipped. Every anomaly is counted in a :class:`DecodeStats` (the module-level :data:`DECODE_STATS`
  unless one is passed in).

Speed: one precompiled ``struct.Struct.unpack_from`` per packet (the 184-byte layout is a single
struct with its depth included), tz-aware datetimes cached per epoch second, and the frozen domain
objects built through slot-filling constructors (:func:`_fast_constructor`). Interning depth levels
was tried and dropped: real books change every snapshot, and the misses cost more than the hits saved.
A frame of full packets only (the usual live stream) takes one ``iter_unpack`` over the whole frame
and one generated loop (:func:`_generate_full_frame_decoder`); any other frame, or one whose lengths
turn out mixed, takes the per-packet path, and both give equal ticks (tested, and the official
``kiteconnect`` parser is the oracle for both).
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from tickwise.domain.instrument import INDEX_SEGMENT, SEGMENT_DIVISORS, price_divisor
from tickwise.domain.tick import OHLC, Depth, DepthLevel, Tick
from tickwise.domain.time import IST

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "DECODE_STATS",
    "PACKET_SIZES",
    "DecodeStats",
    "decode_frame",
    "encode_frame",
    "encode_packet",
    "packet_size",
]

MODE_LTP = "ltp"
MODE_QUOTE = "quote"
MODE_FULL = "full"

# (mode, tradable) -> packet size
PACKET_SIZES: dict[tuple[str, bool], int] = {
    (MODE_LTP, True): 8,
    (MODE_LTP, False): 8,
    (MODE_QUOTE, True): 44,
    (MODE_QUOTE, False): 28,
    (MODE_FULL, True): 184,
    (MODE_FULL, False): 32,
}

_U16 = struct.Struct(">H")
_LTP = struct.Struct(">Ii")
_INDEX_QUOTE = struct.Struct(">Iiiiiii")
_INDEX_FULL = struct.Struct(">IiiiiiiI")
_QUOTE = struct.Struct(">IiIiIIIiiii")
# 44-byte quote + ltt, oi, oi high, oi low, exchange ts + 10 depth entries (qty, price, orders, pad).
_FULL = struct.Struct(">IiIiIIIiiii" + "IIIII" + "IiH2x" * 10)
_DEPTH_ENTRY = struct.Struct(">IiHH")
# Decoding a full packet reads its 64-byte head now and its 120-byte book only when asked (_LazyDepth).
_FULL_HEAD = struct.Struct(">IiIiIIIiiii" + "IIIII")
_DEPTH = struct.Struct(">" + "IiH2x" * 10)
# The same ten levels' quantities only (each level: quantity, then 8 bytes skipped): quantity_sums.
_QUANTITIES = struct.Struct(">" + "I8x" * 10)
# One framed full packet (its uint16 length, the 64-byte head, the 120 book bytes as bytes): a frame of
# full packets only is iter_unpack'ed in one call (_full_frame).
_FULL_PACKET = struct.Struct(">H" + "IiIiIIIiiii" + "IIIII" + "120s")
_FULL_STRIDE = _FULL_PACKET.size

assert (
    _FULL.size == 184
    and _FULL_HEAD.size + _DEPTH.size == 184
    and _QUOTE.size == 44
    and _INDEX_FULL.size == 32
    and _INDEX_QUOTE.size == 28
    and _FULL_STRIDE == 186
)

T = TypeVar("T", bound="DataclassInstance")

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1


@dataclass
class DecodeStats:
    """Counters of what the decoder met, by reason (``frames``, ``packets``, ``heartbeats``, and anomalies:
    ``empty_frame``, ``truncated``, ``zero_length``, ``unknown_length``, ``trailing_bytes``)."""

    counts: Counter[str] = field(default_factory=Counter)

    def anomalies(self) -> dict[str, int]:
        """Only the anomaly counters (everything except frames/packets/heartbeats)."""
        return {k: v for k, v in self.counts.items() if k not in _NORMAL and v}

    def __getitem__(self, reason: str) -> int:
        return self.counts[reason]

    def reset(self) -> None:
        self.counts.clear()


_NORMAL = frozenset({"frames", "packets", "heartbeats"})

DECODE_STATS = DecodeStats()
"""Process-wide decoder counters, used when :func:`decode_frame` is not given its own."""

# -- fast constructors ------------------------------------------------------------------------------


def _fast_constructor(cls: type[T]) -> Callable[..., T]:
    """A positional constructor for a frozen slotted dataclass that fills the slots directly.

    It builds exactly what ``cls(*args)`` builds (same type, same field values, equal by ``==``), but the
    generated ``__init__`` of a frozen dataclass routes every field through ``object.__setattr__`` by
    name; writing through the slot descriptors is about a third cheaper, which matters at 10^5 ticks/s.
    """
    names = [f.name for f in fields(cls)]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    body = []
    for name in names:
        namespace[f"_set_{name}"] = getattr(cls, name).__set__
        body.append(f"    _set_{name}(obj, {name})")
    defaults = {f.name: f.default for f in fields(cls) if f.default is not MISSING}
    params = ", ".join(f"{n}=_d_{n}" if n in defaults else n for n in names)
    namespace.update({f"_d_{n}": v for n, v in defaults.items()})
    source = f"def make({params}):\n    obj = _new(_cls)\n" + "\n".join(body) + "\n    return obj\n"
    exec(source, namespace)  # nosec B102: the source is generated from the Tick/packet dataclass fields, never from input
    make: Callable[..., T] = namespace["make"]
    return make


_tick = _fast_constructor(Tick)
_ohlc = _fast_constructor(OHLC)

# -- cached helpers ---------------------------------------------------------------------------------

_dt_cache: dict[int, datetime] = {}
_CACHE_LIMIT = 4096  # epoch seconds: a frame's packets share a handful


def _ist(epoch: int) -> datetime | None:
    """Epoch seconds -> tz-aware IST datetime (0 -> None), cached per second."""
    dt = _dt_cache.get(epoch)
    if dt is None:
        if epoch == 0:
            return None
        if len(_dt_cache) >= _CACHE_LIMIT:
            _dt_cache.clear()
        dt = datetime.fromtimestamp(epoch, IST)
        _dt_cache[epoch] = dt
    return dt


_Levels = tuple[tuple[DepthLevel, ...], tuple[DepthLevel, ...]]


class _LazyDepth(Depth):
    """A :class:`Depth` whose ten levels are built from the packet's values on first access.

    Most ticks' books are never read level by level (the candle builder needs only the bar's last
    book), so building ten :class:`DepthLevel` objects per tick on the hot path is wasted work. This
    subclass keeps the already-unpacked packet tuple and the divisor and builds ``buy``/``sell`` once,
    when asked. It is a :class:`Depth` (``isinstance``), equal (``==``) to and hashing like the eagerly
    built one, and it compares two lazy books by their raw wire values without building either.
    """

    __slots__ = ("_divisor", "_levels", "_raw")

    _raw: bytes
    _divisor: float
    _levels: tuple[tuple[DepthLevel, ...], tuple[DepthLevel, ...]] | None

    def _build(self) -> tuple[tuple[DepthLevel, ...], tuple[DepthLevel, ...]]:
        levels = self._levels
        if levels is None:
            levels = _build_levels(_DEPTH.unpack(self._raw), self._divisor)
            _set_levels(self, levels)
        return levels

    def quantity_sums(self, levels: int) -> tuple[int, int]:
        """The summed quantities of the best ``levels`` bids and asks, read from the wire values
        without building the levels (the candle close's ``obi_5``: one book per bar, issue 14)."""
        if levels >= 5:  # the usual read (obi_5): the ten quantities only, summed without slices
            b0, b1, b2, b3, b4, a0, a1, a2, a3, a4 = _QUANTITIES.unpack(self._raw)
            return b0 + b1 + b2 + b3 + b4, a0 + a1 + a2 + a3 + a4
        q = _QUANTITIES.unpack(self._raw)
        n = max(0, levels)
        return sum(q[:n]), sum(q[5 : 5 + n])

    @staticmethod
    def quantity_sums_many(books: Sequence[_LazyDepth], levels: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`quantity_sums` of many decoded books at once (int64 bid sums, ask sums): their wire
        bytes read as one block, the newest books of a 3,000-bar minute's close in one pass (issue 14)."""
        n = min(max(0, levels), 5)
        # Each level is 12 bytes, three big-endian words: quantity, price, orders + padding.
        words = np.frombuffer(b"".join([book._raw for book in books]), dtype=">u4").reshape(len(books), 30)
        return words[:, 0 : 3 * n : 3].sum(axis=1, dtype=np.int64), words[:, 15 : 15 + 3 * n : 3].sum(
            axis=1, dtype=np.int64
        )

    @property  # a read-only field computed on demand, like the frozen parent's
    def buy(self) -> tuple[DepthLevel, ...]:
        return self._build()[0]

    @property
    def sell(self) -> tuple[DepthLevel, ...]:
        return self._build()[1]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _LazyDepth) and other._divisor == self._divisor:
            # Same divisor: equal wire bytes <=> equal levels (prices are raw / divisor; the padding
            # bytes are compared too, and Kite sends them as zero).
            return self._raw == other._raw
        if isinstance(other, Depth):
            return self.buy == other.buy and self.sell == other.sell
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.buy, self.sell))

    def __repr__(self) -> str:
        return f"Depth(buy={self.buy!r}, sell={self.sell!r})"

    def __reduce__(self) -> tuple[type[Depth], tuple[tuple[DepthLevel, ...], tuple[DepthLevel, ...]]]:
        # Pickles (e.g. to another process) as the plain Depth it stands for.
        return (Depth, self._build())


def _generate_levels_builder() -> Callable[[tuple[int, ...], float], _Levels]:
    """Straight-line ``levels(v, d)``: the 30 book values -> (buy levels, sell levels), slot-filled."""
    ns: dict[str, Any] = {"_new": object.__new__, "DepthLevel": DepthLevel}
    for f in fields(DepthLevel):
        ns[f"set_{f.name}"] = getattr(DepthLevel, f.name).__set__
    lines = ["def levels(v, d):"]
    for k in range(10):
        i = 3 * k
        lines += [
            f"    l{k} = _new(DepthLevel)",
            f"    set_quantity(l{k}, v[{i}])",
            f"    set_price(l{k}, v[{i + 1}] / d)",
            f"    set_orders(l{k}, v[{i + 2}])",
        ]
    lines.append("    return ((l0, l1, l2, l3, l4), (l5, l6, l7, l8, l9))")
    exec("\n".join(lines), ns)  # nosec B102: generated from the DepthLevel fields, never from input
    build: Callable[[tuple[int, ...], float], _Levels] = ns["levels"]
    return build


_build_levels = _generate_levels_builder()
_set_levels: Callable[[_LazyDepth, object], None] = vars(_LazyDepth)["_levels"].__set__


_FullTick = Callable[[tuple[Any, ...], "datetime | None", bytes], Tick]
_FullFrame = Callable[[memoryview, "datetime | None", list[Tick]], bool]


def _full_tick_lines(at: int, raw: str, indent: str) -> list[str]:
    """Statements building Tick ``t`` of one 184-byte packet whose 16 head values are ``v[at:at+16]``
    and whose 120 book bytes are the expression ``raw`` (shared by both generated decoders)."""

    def f(i: int) -> str:
        return f"v[{at + i}]"

    lines = [
        f"token = {f(0)}",
        "seg = token & 0xFF",
        "d = _divisor(seg, 100.0)",  # price_divisor inlined: one call frame less per tick
        "dep = _new(_LazyDepth)",
        f"_LazyDepth_raw(dep, {raw})",
        "_LazyDepth_divisor(dep, d)",
        "_LazyDepth_levels(dep, None)",
        f"close = {f(10)} / d",
        "o = _new(OHLC)",
        f"OHLC_open(o, {f(7)} / d)",
        f"OHLC_high(o, {f(8)} / d)",
        f"OHLC_low(o, {f(9)} / d)",
        "OHLC_close(o, close)",
        f"ltp = {f(1)} / d",
        "t = _new(Tick)",
    ]
    values = {
        "instrument_token": "token",  # nosec B105: not a password: a name, a message or a pattern of key names
        "mode": repr(MODE_FULL),
        "tradable": f"seg != {INDEX_SEGMENT}",
        "last_price": "ltp",
        "last_traded_quantity": f(2),
        "average_traded_price": f"{f(3)} / d",
        "volume_traded": f(4),
        "total_buy_quantity": f(5),
        "total_sell_quantity": f(6),
        "ohlc": "o",
        "change": "(ltp - close) * 100 / close if close != 0 else 0.0",
        "last_trade_time": f"_ist_get({f(11)}) or _ist({f(11)})",
        "oi": f(12),
        "oi_day_high": f(13),
        "oi_day_low": f(14),
        "exchange_timestamp": f"_ist_get({f(15)}) or _ist({f(15)})",
        "depth": "dep",
        "received_at": "received_at",
    }
    lines += [f"Tick_{fl.name}(t, {values[fl.name]})" for fl in fields(Tick)]  # KeyError if Tick grows
    return [indent + line for line in lines]


def _full_decoder_namespace() -> dict[str, Any]:
    ns: dict[str, Any] = {
        "_new": object.__new__,
        "_ist_get": _dt_cache.get,
        "_ist": _ist,
        "_divisor": SEGMENT_DIVISORS.get,
        "_iter_full": _FULL_PACKET.iter_unpack,
    }
    for cls in (Tick, OHLC, _LazyDepth):
        ns[cls.__name__] = cls
    for cls, names in ((Tick, [f.name for f in fields(Tick)]), (OHLC, [f.name for f in fields(OHLC)])):
        for name in names:
            ns[f"{cls.__name__}_{name}"] = getattr(cls, name).__set__
    for name in ("_raw", "_divisor", "_levels"):
        ns[f"_LazyDepth{name}"] = vars(_LazyDepth)[name].__set__
    return ns


def _generate_full_decoder() -> _FullTick:
    """Build ``full_tick(v, received_at, raw_depth)``: a 184-byte packet -> a Tick.

    ``v`` holds the 16 values of the packet's 64-byte head and ``raw_depth`` its 120 book bytes.

    Generated straight-line code: the tick, its OHLC and its (lazy) depth are created and filled
    through slot descriptors with no Python call frames in between, which is about a quarter faster
    than calling the per-class constructors. The ten depth levels are not built here: the
    :class:`_LazyDepth` keeps the unpacked values and builds them when first read. Equal (``==``) to
    building with the dataclass constructors; the round-trip and oracle tests check it.
    """
    ns = _full_decoder_namespace()
    lines = ["def full_tick(v, received_at, raw_depth):"]
    lines += _full_tick_lines(0, "raw_depth", "    ")
    lines.append("    return t")
    exec("\n".join(lines), ns)  # nosec B102: the source is generated from the Tick/packet dataclass fields, never from input
    full_tick: _FullTick = ns["full_tick"]
    return full_tick


def _generate_full_frame_decoder() -> _FullFrame:
    """Build ``full_frame(view, received_at, out)``: the packets of a frame of full packets only.

    ``view`` is the frame after its packet count, exactly ``n`` times (``uint16 length`` + 184 bytes).
    One ``Struct.iter_unpack`` reads every packet's length, head and book bytes, and the loop builds
    each tick inline (the per-packet path's function call, length read and book slice are gone:
    about 15 % of the decode). Returns False, with ``out`` partly filled, at the first length that
    is not 184: the caller then decodes the frame on the general path.
    """
    ns = _full_decoder_namespace()
    lines = [
        "def full_frame(view, received_at, out):",
        "    append = out.append",
        "    for v in _iter_full(view):",
        "        if v[0] != 184:",
        "            return False",
    ]
    lines += _full_tick_lines(1, "v[17]", "        ")
    lines += ["        append(t)", "    return True"]
    exec("\n".join(lines), ns)  # nosec B102: the source is generated from the Tick/packet dataclass fields, never from input
    full_frame: _FullFrame = ns["full_frame"]
    return full_frame


_full_tick = _generate_full_decoder()
_full_frame = _generate_full_frame_decoder()


def _change(ltp: float, close: float) -> float:
    return (ltp - close) * 100 / close if close != 0 else 0.0


# -- decoding ---------------------------------------------------------------------------------------


def decode_frame(
    frame: bytes | bytearray | memoryview,
    stats: DecodeStats | None = None,
    received_at: datetime | None = None,
) -> list[Tick]:
    """Decode one binary WebSocket frame into ticks. Never raises; anomalies are counted in ``stats``."""
    counts = (stats or DECODE_STATS).counts
    n_bytes = len(frame)
    if n_bytes < 2:
        counts["heartbeats" if n_bytes == 1 else "empty_frame"] += 1
        return []
    counts["frames"] += 1
    try:
        if (n_bytes - 2) % _FULL_STRIDE == 0:
            # The common stream (every instrument in full mode): the frame may be full packets only.
            n_packets = (n_bytes - 2) // _FULL_STRIDE
            if _U16.unpack_from(frame, 0)[0] == n_packets:
                ticks: list[Tick] = []
                if _full_frame(memoryview(frame)[2:], received_at, ticks):
                    counts["packets"] += n_packets
                    return ticks
        # Immutable bytes: lazy books keep slices of the frame, which a reused buffer must not change.
        data = frame if type(frame) is bytes else bytes(frame)
        return _decode(data, n_bytes, counts, received_at)
    except Exception:  # pragma: no cover - defensive: the layout checks above should make this unreachable
        counts["decoder_error"] += 1
        return []


def _decode(frame: bytes, n_bytes: int, counts: Counter[str], received_at: datetime | None) -> list[Tick]:
    (n_packets,) = _U16.unpack_from(frame, 0)
    ticks: list[Tick] = []
    append = ticks.append
    pos = 2
    ist = _ist
    tick = _tick
    ohlc = _ohlc
    full_tick = _full_tick
    head = _FULL_HEAD
    for _ in range(n_packets):
        if pos + 2 > n_bytes:
            counts["truncated"] += 1
            break
        (length,) = _U16.unpack_from(frame, pos)
        start = pos + 2
        end = start + length
        if end > n_bytes:
            counts["truncated"] += 1
            break
        pos = end
        if length == 184:
            v = head.unpack_from(frame, start)
            append(full_tick(v, received_at, frame[start + 64 : end]))
        elif length == 8:
            token, raw = _LTP.unpack_from(frame, start)
            append(
                tick(
                    token,
                    MODE_LTP,
                    token & 0xFF != INDEX_SEGMENT,
                    raw / price_divisor(token),
                    received_at=received_at,
                )
            )
        elif length == 44:
            v = _QUOTE.unpack_from(frame, start)
            token = v[0]
            d = price_divisor(token)
            ltp = v[1] / d
            close = v[10] / d
            append(
                tick(
                    token,
                    MODE_QUOTE,
                    token & 0xFF != INDEX_SEGMENT,
                    ltp,
                    v[2],
                    v[3] / d,
                    v[4],
                    v[5],
                    v[6],
                    ohlc(v[7] / d, v[8] / d, v[9] / d, close),
                    _change(ltp, close),
                    received_at=received_at,
                )
            )
        elif length == 28 or length == 32:
            full = length == 32
            v = (_INDEX_FULL if full else _INDEX_QUOTE).unpack_from(frame, start)
            token = v[0]
            d = price_divisor(token)
            ltp = v[1] / d
            close = v[5] / d
            append(
                tick(
                    token,
                    MODE_FULL if full else MODE_QUOTE,
                    token & 0xFF != INDEX_SEGMENT,
                    ltp,
                    ohlc=ohlc(v[4] / d, v[2] / d, v[3] / d, close),
                    change=_change(ltp, close),
                    exchange_timestamp=ist(v[7]) if full else None,
                    received_at=received_at,
                )
            )
        elif length == 0:
            counts["zero_length"] += 1
        else:
            counts["unknown_length"] += 1
    else:
        # Every announced packet was read: bytes left over mean the count understated the data.
        if pos < n_bytes:
            counts["trailing_bytes"] += 1
    counts["packets"] += len(ticks)
    return ticks


# -- encoding ---------------------------------------------------------------------------------------


def _wire(price: float | None, divisor: float) -> int:
    if price is None:
        return 0
    raw = round(price * divisor)
    return max(_INT32_MIN, min(_INT32_MAX, raw))


def _epoch(dt: datetime | None) -> int:
    return int(dt.timestamp()) if dt is not None else 0


def packet_size(instrument_token: int, mode: str) -> int:
    """Wire size of a packet for ``instrument_token`` in ``mode`` (8/44/184, index 8/28/32)."""
    try:
        return PACKET_SIZES[(mode, instrument_token & 0xFF != INDEX_SEGMENT)]
    except KeyError:
        raise ValueError(f"unknown mode {mode!r} (expected ltp, quote or full)") from None


def encode_packet(tick: Tick, mode: str | None = None) -> bytes:
    """Encode one tick as a packet of ``mode`` (default ``tick.mode``); missing fields are sent as 0.

    The index packets' net-change field is ``last_price - close`` in wire units (signed), as Kite sends it.
    Raises ``ValueError`` on an unknown mode.
    """
    mode = mode or tick.mode
    token = tick.instrument_token
    d = price_divisor(token)
    size = packet_size(token, mode)
    ltp = _wire(tick.last_price, d)
    if size == 8:
        return _LTP.pack(token, ltp)
    o = tick.ohlc or OHLC(0.0, 0.0, 0.0, 0.0)
    if size in (28, 32):
        close = _wire(o.close, d)
        change = max(_INT32_MIN, min(_INT32_MAX, ltp - close))
        head = (token, ltp, _wire(o.high, d), _wire(o.low, d), _wire(o.open, d), close, change)
        if size == 28:
            return _INDEX_QUOTE.pack(*head)
        return _INDEX_FULL.pack(*head, _epoch(tick.exchange_timestamp))
    quote = (
        token,
        ltp,
        tick.last_traded_quantity or 0,
        _wire(tick.average_traded_price, d),
        tick.volume_traded or 0,
        tick.total_buy_quantity or 0,
        tick.total_sell_quantity or 0,
        _wire(o.open, d),
        _wire(o.high, d),
        _wire(o.low, d),
        _wire(o.close, d),
    )
    if size == 44:
        return _QUOTE.pack(*quote)
    depth_values: list[int] = []
    for side in (tick.depth.buy, tick.depth.sell) if tick.depth else ((), ()):
        levels = list(side[:5])
        for lvl in levels:
            depth_values += (lvl.quantity, _wire(lvl.price, d), lvl.orders)
        depth_values += (0, 0, 0) * (5 - len(levels))
    return _FULL.pack(
        *quote,
        _epoch(tick.last_trade_time),
        tick.oi or 0,
        tick.oi_day_high or 0,
        tick.oi_day_low or 0,
        _epoch(tick.exchange_timestamp),
        *depth_values,
    )


def encode_frame(
    ticks: Sequence[Tick],
    modes: Sequence[str] | Mapping[int, str] | str | None = None,
) -> bytes:
    """Encode ticks into one binary frame.

    ``modes``: ``None`` (each tick's own mode), one mode for all, a sequence parallel to ``ticks``, or a
    mapping ``instrument_token -> mode``. At most 65,535 packets fit in a frame (``ValueError`` beyond).
    """
    if len(ticks) > 0xFFFF:
        raise ValueError(f"{len(ticks)} packets do not fit in one frame (max 65535)")
    parts = [_U16.pack(len(ticks))]
    for i, tick in enumerate(ticks):
        if modes is None:
            mode = tick.mode
        elif isinstance(modes, str):
            mode = modes
        elif isinstance(modes, Mapping):
            mode = modes.get(tick.instrument_token, tick.mode)
        else:
            mode = modes[i]
        packet = encode_packet(tick, mode)
        parts.append(_U16.pack(len(packet)))
        parts.append(packet)
    return b"".join(parts)


def encode_raw_frame(packets: Sequence[bytes], count: int | None = None) -> bytes:
    """Frame already-encoded packets; ``count`` may overstate them (used by the simulator's faults)."""
    parts = [_U16.pack(len(packets) if count is None else count)]
    for packet in packets:
        parts.append(_U16.pack(len(packet)))
        parts.append(packet)
    return b"".join(parts)
