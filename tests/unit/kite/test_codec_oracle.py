"""Oracle: the official ``kiteconnect`` parser decodes the same randomized frames to the same values.

``import kiteconnect`` installs the Twisted reactor process-wide, so the official parser runs in a
subprocess that reads hex frames on stdin and prints its ticks as JSON (datetimes as epoch seconds: the
official client returns naive host-local datetimes).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import datetime

import pytest

from tickwise.adapters.kite.codec import decode_frame, encode_frame
from tickwise.domain.instrument import price_divisor
from tickwise.domain.tick import OHLC, Depth, DepthLevel, Tick
from tickwise.domain.time import IST

pytestmark = pytest.mark.oracle

ORACLE = r"""
import json, sys
from kiteconnect import KiteTicker

ticker = KiteTicker("k", "t")
out = []
for line in sys.stdin:
    ticks = ticker._parse_binary(bytes.fromhex(line.strip()))
    for t in ticks:
        for key in ("last_trade_time", "exchange_timestamp"):
            if key in t:
                t[key] = t[key].timestamp() if t[key] is not None else None
    out.append(ticks)
print(json.dumps(out))
"""

SEGMENTS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 12]


def random_tick(rng: random.Random, mode: str | None = None) -> Tick:
    segment = rng.choice(SEGMENTS if mode is None else [s for s in SEGMENTS if s != 9])
    token = rng.randrange(1, 2**24) << 8 | segment
    d = price_divisor(token)

    def price() -> float:
        return rng.randrange(0, 2**31) / d  # the official client reads prices unsigned: stay non-negative

    def when() -> datetime:
        return datetime.fromtimestamp(rng.randrange(1, 2**31), IST)  # 0 is None for us, 1970 for them

    mode = mode or rng.choice(["ltp", "quote", "full"])
    tradable = segment != 9
    ltp = price()
    if mode == "ltp":
        return Tick(token, mode, tradable, ltp)
    ohlc = OHLC(price(), price(), price(), rng.choice([0.0, price()]))
    change = (ltp - ohlc.close) * 100 / ohlc.close if ohlc.close else 0.0
    if not tradable:
        return Tick(
            token,
            mode,
            tradable,
            ltp,
            ohlc=ohlc,
            change=change,
            exchange_timestamp=when() if mode == "full" else None,
        )
    u32 = lambda: rng.randrange(0, 2**32)  # noqa: E731
    quote = dict(
        last_traded_quantity=u32(),
        average_traded_price=price(),
        volume_traded=u32(),
        total_buy_quantity=u32(),
        total_sell_quantity=u32(),
        ohlc=ohlc,
        change=change,
    )
    if mode == "quote":
        return Tick(token, mode, tradable, ltp, **quote)  # type: ignore[arg-type]
    levels = [DepthLevel(u32(), price(), rng.randrange(0, 65536)) for _ in range(10)]
    return Tick(
        token,
        mode,
        tradable,
        ltp,
        **quote,  # type: ignore[arg-type]
        last_trade_time=when(),
        oi=u32(),
        oi_day_high=u32(),
        oi_day_low=u32(),
        exchange_timestamp=when(),
        depth=Depth(tuple(levels[:5]), tuple(levels[5:])),
    )


def as_official_dict(t: Tick) -> dict[str, object]:
    d: dict[str, object] = {
        "tradable": t.tradable,
        "mode": t.mode,
        "instrument_token": t.instrument_token,
        "last_price": t.last_price,
    }
    if t.mode == "ltp":
        return d
    assert t.ohlc is not None
    d["ohlc"] = {"open": t.ohlc.open, "high": t.ohlc.high, "low": t.ohlc.low, "close": t.ohlc.close}
    d["change"] = t.change
    if not t.tradable:
        if t.mode == "full":
            d["exchange_timestamp"] = t.exchange_timestamp.timestamp() if t.exchange_timestamp else None
        return d
    d.update(
        last_traded_quantity=t.last_traded_quantity,
        average_traded_price=t.average_traded_price,
        volume_traded=t.volume_traded,
        total_buy_quantity=t.total_buy_quantity,
        total_sell_quantity=t.total_sell_quantity,
    )
    if t.mode == "full":
        assert t.depth is not None and t.last_trade_time and t.exchange_timestamp
        d.update(
            last_trade_time=t.last_trade_time.timestamp(),
            oi=t.oi,
            oi_day_high=t.oi_day_high,
            oi_day_low=t.oi_day_low,
            exchange_timestamp=t.exchange_timestamp.timestamp(),
            depth={
                side: [{"quantity": lv.quantity, "price": lv.price, "orders": lv.orders} for lv in levels]
                for side, levels in (("buy", t.depth.buy), ("sell", t.depth.sell))
            },
        )
    return d


def official_ticks(frames: list[bytes]) -> list[list[dict[str, object]]]:
    proc = subprocess.run(
        [sys.executable, "-c", ORACLE],
        input="\n".join(f.hex() for f in frames),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return list(json.loads(proc.stdout))


def assert_official_agrees(frames: list[bytes]) -> None:
    official = official_ticks(frames)
    ours = [[as_official_dict(t) for t in decode_frame(f)] for f in frames]
    assert len(official) == len(ours)
    # JSON round-trips floats exactly (repr), so plain equality compares every field bit for bit.
    normalized = json.loads(json.dumps(ours))
    for theirs, mine in zip(official, normalized, strict=True):
        assert theirs == mine


def test_official_parser_agrees_with_ours_on_randomized_frames() -> None:
    rng = random.Random(20240611)
    frames = [encode_frame([random_tick(rng) for _ in range(rng.randrange(1, 8))]) for _ in range(150)]
    assert_official_agrees(frames)


def test_official_parser_agrees_with_ours_on_frames_of_full_packets_only() -> None:
    # These frames take the decoder's one-pass path for full-mode frames (codec._full_frame).
    rng = random.Random(20261205)
    frames = [
        encode_frame([random_tick(rng, "full") for _ in range(rng.randrange(1, 120))]) for _ in range(60)
    ]
    assert all(len(f) == 2 + 186 * int.from_bytes(f[:2], "big") for f in frames)
    assert_official_agrees(frames)
