"""Property tests: encode -> decode round trips for every packet kind and segment; garbage never raises."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from tickwise.adapters.kite.codec import DecodeStats, decode_frame, encode_frame
from tickwise.domain.instrument import price_divisor
from tickwise.domain.tick import OHLC, Depth, DepthLevel, Tick
from tickwise.domain.time import IST

SEGMENTS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 12]
INT32 = st.integers(-(2**31), 2**31 - 1)
UINT32 = st.integers(0, 2**32 - 1)
EPOCH = st.integers(0, 2**32 - 1)


@st.composite
def ticks(draw: st.DrawFn, min_price: int = -(2**31)) -> Tick:
    segment = draw(st.sampled_from(SEGMENTS))
    token = draw(st.integers(0, 2**24 - 1)) << 8 | segment
    d = price_divisor(token)
    price_int = st.integers(min_price, 2**31 - 1)

    def price() -> float:
        return draw(price_int) / d

    def when() -> datetime | None:
        epoch = draw(EPOCH)
        return datetime.fromtimestamp(epoch, IST) if epoch else None

    mode = draw(st.sampled_from(["ltp", "quote", "full"]))
    tradable = segment != 9
    ltp = price()
    if mode == "ltp":
        return Tick(token, mode, tradable, ltp)
    ohlc = OHLC(price(), price(), price(), price())
    change = (ltp - ohlc.close) * 100 / ohlc.close if ohlc.close != 0 else 0.0
    if not tradable:
        ts = when() if mode == "full" else None
        return Tick(token, mode, tradable, ltp, ohlc=ohlc, change=change, exchange_timestamp=ts)
    base = dict(
        last_traded_quantity=draw(UINT32),
        average_traded_price=price(),
        volume_traded=draw(UINT32),
        total_buy_quantity=draw(UINT32),
        total_sell_quantity=draw(UINT32),
        ohlc=ohlc,
        change=change,
    )
    if mode == "quote":
        return Tick(token, mode, tradable, ltp, **base)  # type: ignore[arg-type]

    def level() -> DepthLevel:
        return DepthLevel(draw(UINT32), price(), draw(st.integers(0, 65535)))

    depth = Depth(tuple(level() for _ in range(5)), tuple(level() for _ in range(5)))
    return Tick(
        token,
        mode,
        tradable,
        ltp,
        **base,  # type: ignore[arg-type]
        last_trade_time=when(),
        oi=draw(UINT32),
        oi_day_high=draw(UINT32),
        oi_day_low=draw(UINT32),
        exchange_timestamp=when(),
        depth=depth,
    )


@settings(max_examples=300, deadline=None)
@given(st.lists(ticks(), min_size=1, max_size=6))
def test_encode_then_decode_round_trips_every_packet_kind_and_segment(batch: list[Tick]) -> None:
    stats = DecodeStats()
    decoded = decode_frame(encode_frame(batch), stats)
    assert decoded == batch
    assert stats.anomalies() == {}


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_raise(frame: bytes) -> None:
    result = decode_frame(frame, DecodeStats())
    assert isinstance(result, list)


@settings(max_examples=200, deadline=None)
@given(st.lists(ticks(), min_size=1, max_size=4), st.data())
def test_cut_or_overstated_frames_yield_only_complete_packets(batch: list[Tick], data: st.DataObject) -> None:
    frame = encode_frame(batch)
    cut = data.draw(st.integers(0, len(frame)))
    stats = DecodeStats()
    decoded = decode_frame(frame[:cut], stats)
    assert decoded == batch[: len(decoded)]
    if cut < len(frame) and cut >= 2:
        assert stats["truncated"] == 1
    overstated = (len(batch) + 3).to_bytes(2, "big") + frame[2:]
    assert decode_frame(overstated, DecodeStats()) == batch
