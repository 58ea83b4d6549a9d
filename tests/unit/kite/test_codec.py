"""Golden vectors of kite-protocol.md section 8 and the decoder's never-raise guarantees."""

from __future__ import annotations

from datetime import datetime

import pytest

from tickwise.adapters.kite.codec import DecodeStats, decode_frame, encode_frame, encode_packet
from tickwise.domain.tick import DepthLevel
from tickwise.domain.time import IST

INFY_FULL = bytes.fromhex(
    "00063a01000266ba000000070002656d001232170003e9bb00058a01000264f30002673c000261c90002646c60e2947f"
    "00000000000000000000000060e2947f"
    "000000050002669c000100000000008c0002667400020000000000020002666f00010000000000db0002666a00070000"
    "000000320002666500010000"
    "000000ac000266ba000300000000002c000266bf000300000000012e000266c9000300000000008d000266ce00020000"
    "000002d4000266d300050000"
)
INFY_QUOTE = bytes.fromhex(
    "00063a010002668300000001000265690011f1b20003e9ff00058037000264f30002673c000261c90002646c"
)
INDEX_QUOTE = bytes.fromhex("0003e909001dc130001de840001d9a20001dada8001d731000004e20")
INDEX_NEG = bytes.fromhex("0003e909001d6f28001de840001d6b40001dada8001d7310fffffc18")


def frame_of(*packets: bytes) -> bytes:
    out = len(packets).to_bytes(2, "big")
    for p in packets:
        out += len(p).to_bytes(2, "big") + p
    return out


def test_full_infy_packet_decodes_to_the_published_values() -> None:
    (tick,) = decode_frame(bytes.fromhex("000100b8") + INFY_FULL)
    assert tick.instrument_token == 408065 and tick.mode == "full" and tick.tradable
    assert tick.last_price == 1573.70 and tick.last_traded_quantity == 7
    assert tick.average_traded_price == 1570.37 and tick.volume_traded == 1192471
    assert (tick.total_buy_quantity, tick.total_sell_quantity) == (256443, 363009)
    assert tick.ohlc is not None
    assert (tick.ohlc.open, tick.ohlc.high, tick.ohlc.low, tick.ohlc.close) == (
        1569.15,
        1575.0,
        1561.05,
        1567.8,
    )
    expected_time = datetime(2021, 7, 5, 10, 41, 27, tzinfo=IST)
    assert tick.last_trade_time == expected_time and tick.exchange_timestamp == expected_time
    assert tick.last_trade_time is not None and tick.last_trade_time.utcoffset() is not None
    assert (tick.oi, tick.oi_day_high, tick.oi_day_low) == (0, 0, 0)
    assert tick.change == pytest.approx(0.3763235, rel=1e-6)
    assert tick.depth is not None
    assert tick.depth.buy == (
        DepthLevel(5, 1573.40, 1),
        DepthLevel(140, 1573.00, 2),
        DepthLevel(2, 1572.95, 1),
        DepthLevel(219, 1572.90, 7),
        DepthLevel(50, 1572.85, 1),
    )
    assert tick.depth.sell == (
        DepthLevel(172, 1573.70, 3),
        DepthLevel(44, 1573.75, 3),
        DepthLevel(302, 1573.85, 3),
        DepthLevel(141, 1573.90, 2),
        DepthLevel(724, 1573.95, 5),
    )


def test_full_infy_packet_reencodes_to_the_same_bytes() -> None:
    (tick,) = decode_frame(frame_of(INFY_FULL))
    assert encode_packet(tick) == INFY_FULL
    assert encode_frame([tick]) == frame_of(INFY_FULL)


def test_quote_infy_packet_decodes_to_the_published_values() -> None:
    (tick,) = decode_frame(frame_of(INFY_QUOTE))
    assert tick.mode == "quote" and tick.instrument_token == 408065
    assert (tick.last_price, tick.last_traded_quantity, tick.average_traded_price) == (1573.15, 1, 1570.33)
    assert (tick.volume_traded, tick.total_buy_quantity, tick.total_sell_quantity) == (
        1175986,
        256511,
        360503,
    )
    assert tick.ohlc is not None and tick.ohlc.close == 1567.8 and tick.ohlc.open == 1569.15
    assert tick.depth is None and tick.exchange_timestamp is None
    assert encode_packet(tick) == INFY_QUOTE


@pytest.mark.parametrize(
    ("hex_frame", "expected"),
    [
        ("0001 0008 00063a01 000249f0", [(408065, 1500.0)]),
        ("0002 0008 00063a01 000249f0 0008 00064c03 2b5d8830", [(408065, 1500.0), (412675, 72.755)]),
        ("0001 0008 00064c03 2b5d8830", [(412675, 72.755)]),
        ("0001 0008 00000106 000b19fe", [(262, 72.755)]),
        ("0001 0008 0000010c 0012d687", [(268, 123.4567)]),
    ],
)
def test_ltp_frames_decode_with_the_segment_divisor(
    hex_frame: str, expected: list[tuple[int, float]]
) -> None:
    frame = bytes.fromhex(hex_frame.replace(" ", ""))
    ticks = decode_frame(frame)
    assert [(t.instrument_token, t.last_price) for t in ticks] == expected
    assert all(t.mode == "ltp" and t.tradable and t.ohlc is None for t in ticks)
    assert encode_frame(ticks) == frame


def test_index_quote_packet_uses_high_low_open_close_order_and_percent_change() -> None:
    (tick,) = decode_frame(frame_of(INDEX_QUOTE))
    assert tick.instrument_token == 256265 and not tick.tradable and tick.mode == "quote"
    assert tick.last_price == 19500.0
    assert tick.ohlc is not None
    assert (tick.ohlc.high, tick.ohlc.low, tick.ohlc.open, tick.ohlc.close) == (
        19600.0,
        19400.0,
        19450.0,
        19300.0,
    )
    assert tick.change == pytest.approx(200 * 100 / 19300)  # a percentage, like the official client
    assert encode_packet(tick) == INDEX_QUOTE


def test_index_full_packet_carries_a_tz_aware_exchange_timestamp() -> None:
    packet = INDEX_QUOTE + bytes.fromhex("6553f100")
    (tick,) = decode_frame(frame_of(packet))
    assert tick.mode == "full"
    assert tick.exchange_timestamp == datetime(2023, 11, 15, 3, 43, 20, tzinfo=IST)
    assert encode_packet(tick) == packet


def test_index_packet_with_negative_change_round_trips_the_signed_wire_change() -> None:
    (tick,) = decode_frame(frame_of(INDEX_NEG))
    assert tick.last_price == 19290.0 and tick.ohlc is not None and tick.ohlc.low == 19280.0
    assert tick.change == pytest.approx(-10 * 100 / 19300)
    assert encode_packet(tick) == INDEX_NEG  # wire change = ltp - close = -1000 paise (fffffc18)


def test_heartbeat_and_empty_frames_give_no_ticks() -> None:
    stats = DecodeStats()
    assert decode_frame(b"\x00", stats) == []
    assert decode_frame(b"", stats) == []
    assert stats["heartbeats"] == 1 and stats["empty_frame"] == 1


def test_truncated_frame_yields_the_complete_packets_and_counts_the_truncation() -> None:
    stats = DecodeStats()
    ticks = decode_frame(bytes.fromhex("0002000800063a01000249f0"), stats)
    assert [(t.instrument_token, t.last_price) for t in ticks] == [(408065, 1500.0)]
    assert stats.anomalies() == {"truncated": 1}


def test_decoder_skips_unknown_and_zero_length_packets() -> None:
    stats = DecodeStats()
    ltp = bytes.fromhex("00063a01000249f0")
    frame = frame_of(b"\x01\x02\x03\x04\x05", ltp, b"", bytes(60), ltp)
    ticks = decode_frame(frame, stats)
    assert len(ticks) == 2
    assert stats["unknown_length"] == 2 and stats["zero_length"] == 1


def test_decoder_counts_trailing_bytes_after_the_announced_packets() -> None:
    stats = DecodeStats()
    ticks = decode_frame(frame_of(bytes.fromhex("00063a01000249f0")) + b"\x00\x08", stats)
    assert len(ticks) == 1 and stats["trailing_bytes"] == 1


def test_decoder_reads_prices_as_signed_integers() -> None:
    (tick,) = decode_frame(frame_of(bytes.fromhex("00063a01fffffc18")))
    assert tick.last_price == -10.0


def test_zero_timestamps_decode_to_none() -> None:
    packet = bytearray(INFY_FULL)
    packet[44:48] = bytes(4)
    packet[60:64] = bytes(4)
    (tick,) = decode_frame(frame_of(bytes(packet)))
    assert tick.last_trade_time is None and tick.exchange_timestamp is None


def test_received_at_is_stamped_on_every_tick() -> None:
    now = datetime(2024, 1, 2, 10, 0, tzinfo=IST)
    ticks = decode_frame(frame_of(INFY_FULL, INFY_QUOTE, INDEX_QUOTE), received_at=now)
    assert [t.received_at for t in ticks] == [now] * 3


def test_encode_frame_accepts_one_mode_or_a_token_mapping() -> None:
    (tick,) = decode_frame(frame_of(INFY_FULL))
    assert len(encode_frame([tick], "ltp")) == 2 + 2 + 8
    assert len(encode_frame([tick], {408065: "quote"})) == 2 + 2 + 44
    with pytest.raises(ValueError, match="unknown mode"):
        encode_frame([tick], "bogus")


def test_a_frame_of_full_packets_decodes_as_its_packets_do_one_by_one() -> None:
    # The one-pass path for full-only frames must give what the per-packet path gives for each packet.
    stats = DecodeStats()
    fast = decode_frame(frame_of(INFY_FULL, INFY_FULL, INFY_FULL), stats)
    (single,) = decode_frame(frame_of(INFY_FULL))
    mixed = decode_frame(frame_of(INFY_FULL, INFY_FULL, INFY_FULL, INFY_QUOTE))  # not full-only
    assert fast == [single] * 3 == mixed[:3]
    assert stats["packets"] == 3 and stats.anomalies() == {}


def test_a_frame_sized_like_full_packets_but_holding_others_takes_the_general_path() -> None:
    # 2 + 2 x 186 bytes announcing 2 packets, but a quote and an unknown 324-byte packet.
    frame = frame_of(INFY_QUOTE, bytes(324))
    assert len(frame) == 2 + 2 * 186
    stats = DecodeStats()
    (tick,) = decode_frame(frame, stats)
    assert tick.mode == "quote" and tick.instrument_token == 408065
    assert stats["unknown_length"] == 1 and stats["packets"] == 1


def test_a_full_frame_in_a_reused_buffer_keeps_its_books() -> None:
    expected = decode_frame(frame_of(INFY_FULL, INFY_FULL))  # from bytes of their own
    buffer = bytearray(frame_of(INFY_FULL, INFY_FULL))
    ticks = decode_frame(buffer)  # books not read yet: built on first access, after the change
    buffer[2 + 2 + 64 :] = bytes(len(buffer) - 68)  # the first packet's book and everything after
    books = [(t.depth.buy, t.depth.sell) for t in ticks if t.depth is not None]
    assert books == [(t.depth.buy, t.depth.sell) for t in expected if t.depth is not None]
    assert len(books) == 2 and books[0][0][0].quantity == 5
