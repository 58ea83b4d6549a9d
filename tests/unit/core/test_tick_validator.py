import math
import time
from datetime import date, datetime, timedelta

import pytest

from tickwise.core.tick_validator import Rejection, TickValidator
from tickwise.domain.tick import OHLC, Depth, DepthLevel, Tick
from tickwise.domain.time import IST

DAY = date(2025, 1, 6)  # a Monday, NSE trading day
TOKEN = 408065


def at(hh: int, mm: int, ss: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=IST)


def tick(
    price: float,
    ts: datetime | None,
    volume: int | None = 1000,
    token: int = TOKEN,
    prev_close: float | None = None,
    depth: Depth | None = None,
) -> Tick:
    return Tick(
        instrument_token=token,
        mode="full",
        tradable=True,
        last_price=price,
        volume_traded=volume,
        exchange_timestamp=ts,
        ohlc=OHLC(price, price, price, prev_close) if prev_close is not None else None,
        depth=depth,
    )


def test_a_normal_tick_is_accepted() -> None:
    v = TickValidator()
    assert v.check(tick(100.0, at(9, 15, 1))) is None
    assert v.accepted == 1
    assert v.rejected == 0


@pytest.mark.parametrize(
    ("price", "reason"),
    [
        (0.0, Rejection.NON_POSITIVE_PRICE),
        (-5.0, Rejection.NON_POSITIVE_PRICE),
        (math.nan, Rejection.NON_FINITE_PRICE),
        (math.inf, Rejection.NON_FINITE_PRICE),
    ],
)
def test_bad_prices_are_rejected_with_their_reason(price: float, reason: Rejection) -> None:
    v = TickValidator()
    assert v.check(tick(price, at(9, 20))) is reason
    assert v.rejections[reason.value] == 1


def test_tick_without_exchange_timestamp_is_rejected() -> None:
    v = TickValidator()
    assert v.check(tick(100.0, None)) is Rejection.MISSING_TIMESTAMP
    assert v.check(tick(100.0, datetime(2025, 1, 6, 10, 0))) is Rejection.MISSING_TIMESTAMP


@pytest.mark.parametrize(
    "ts",
    [
        at(9, 8),
        at(9, 14, 59),
        at(15, 30),
        at(16, 0),
        at(10, 0, day=date(2025, 1, 4)),
        at(10, 0, day=date(2025, 2, 26)),
    ],
)
def test_ticks_outside_market_hours_are_rejected(ts: datetime) -> None:
    assert TickValidator().check(tick(100.0, ts)) is Rejection.OUTSIDE_MARKET_HOURS


def test_last_value_cache_tick_from_a_previous_session_is_stale() -> None:
    v = TickValidator(session_day=DAY)
    assert v.check(tick(100.0, at(15, 29, 59, day=date(2025, 1, 3)))) is Rejection.STALE
    assert v.check(tick(100.0, at(9, 15, 3))) is None


def test_tick_older_than_max_age_is_stale_when_now_is_given() -> None:
    v = TickValidator(max_age_s=30)
    assert v.check(tick(100.0, at(10, 0)), now=at(10, 1)) is Rejection.STALE
    assert v.check(tick(100.0, at(10, 0, 45)), now=at(10, 1)) is None
    assert v.check(tick(100.0, at(10, 0, 50))) is None  # no clock given: age not checked


def test_older_exchange_timestamp_is_out_of_order() -> None:
    v = TickValidator()
    assert v.check(tick(100.0, at(10, 0, 5), volume=10)) is None
    assert v.check(tick(100.0, at(10, 0, 4), volume=9)) is Rejection.OUT_OF_ORDER


def test_identical_tick_in_the_same_second_is_a_duplicate() -> None:
    v = TickValidator()
    assert v.check(tick(100.0, at(10, 0, 5), volume=10)) is None
    assert v.check(tick(100.1, at(10, 0, 5), volume=12)) is None  # another genuine snapshot
    assert v.check(tick(100.0, at(10, 0, 5), volume=10)) is Rejection.DUPLICATE
    assert v.check(tick(100.1, at(10, 0, 5), volume=12)) is Rejection.DUPLICATE
    assert v.rejections["duplicate"] == 2


def test_same_second_with_different_depth_is_not_a_duplicate() -> None:
    book_a = Depth(buy=(DepthLevel(10, 99.9, 1),), sell=(DepthLevel(5, 100.1, 1),))
    book_b = Depth(buy=(DepthLevel(11, 99.9, 1),), sell=(DepthLevel(5, 100.1, 1),))
    v = TickValidator()
    assert v.check(tick(100.0, at(10, 0, 5), depth=book_a)) is None
    assert v.check(tick(100.0, at(10, 0, 5), depth=book_b)) is None
    assert v.check(tick(100.0, at(10, 0, 5), depth=book_a)) is Rejection.DUPLICATE


def test_replayed_older_snapshot_in_the_same_second_is_caught_by_its_volume() -> None:
    v = TickValidator()
    assert v.check(tick(100.0, at(10, 0, 5), volume=10)) is None
    assert v.check(tick(100.2, at(10, 0, 5), volume=15)) is None
    assert v.check(tick(100.1, at(10, 0, 5), volume=12)) is Rejection.VOLUME_DECREASED


def test_volume_counter_resets_on_a_new_session() -> None:
    v = TickValidator()
    assert v.check(tick(100.0, at(15, 29), volume=50_000)) is None
    assert v.check(tick(100.0, at(9, 15, 2, day=date(2025, 1, 7)), volume=300)) is None


def test_tick_from_an_earlier_session_after_a_later_one_is_out_of_order() -> None:
    v = TickValidator()
    assert v.check(tick(100.0, at(9, 16, day=date(2025, 1, 7)))) is None
    assert v.check(tick(100.0, at(15, 0))) is Rejection.OUT_OF_ORDER


def test_isolated_spike_is_rejected_and_the_reference_is_kept() -> None:
    v = TickValidator(spike_band=0.05)
    for i, p in enumerate([100.0, 100.1, 99.9, 100.2]):
        assert v.check(tick(p, at(10, 0, i), volume=10 + i)) is None
    assert v.check(tick(120.0, at(10, 0, 10), volume=20)) is Rejection.SPIKE
    assert v.check(tick(100.3, at(10, 0, 11), volume=21)) is None
    assert v.check(tick(80.0, at(10, 0, 12), volume=22)) is Rejection.SPIKE
    assert v.rejections["spike"] == 2


def test_genuine_level_shift_is_accepted_after_consistent_ticks() -> None:
    v = TickValidator(spike_band=0.05, confirm_ticks=3)
    for i in range(5):
        assert v.check(tick(100.0, at(10, 0, i), volume=i)) is None
    results = [v.check(tick(110.0 + 0.1 * i, at(10, 1, i), volume=10 + i)) for i in range(5)]
    assert results == [Rejection.SPIKE, Rejection.SPIKE, None, None, None]
    # The old level is now the outlier.
    assert v.check(tick(100.0, at(10, 2), volume=30)) is Rejection.SPIKE


def test_inconsistent_spikes_do_not_confirm_a_new_level() -> None:
    v = TickValidator(spike_band=0.05, confirm_ticks=2)
    assert v.check(tick(100.0, at(10, 0), volume=1)) is None
    assert v.check(tick(130.0, at(10, 0, 1), volume=2)) is Rejection.SPIKE
    assert v.check(tick(70.0, at(10, 0, 2), volume=3)) is Rejection.SPIKE
    assert v.check(tick(100.1, at(10, 0, 3), volume=4)) is None


def test_first_tick_of_the_session_is_checked_against_previous_close() -> None:
    v = TickValidator(open_band=0.20)
    assert v.check(tick(150.0, at(9, 15, 1), prev_close=100.0)) is Rejection.SPIKE
    assert v.check(tick(108.0, at(9, 15, 2), prev_close=100.0)) is None


def test_spike_reference_is_per_instrument() -> None:
    v = TickValidator()
    assert v.check(tick(100.0, at(10, 0), token=1)) is None
    assert v.check(tick(2000.0, at(10, 0), token=2)) is None
    assert v.check(tick(2001.0, at(10, 0, 1), token=2)) is None


def test_malformed_tick_is_counted_not_raised() -> None:
    v = TickValidator()
    bad = Tick(instrument_token=1, mode="full", tradable=True, last_price="x")  # type: ignore[arg-type]
    assert v.check(bad) is Rejection.MALFORMED
    assert v.rejections["malformed"] == 1


def test_reset_forgets_an_instrument() -> None:
    v = TickValidator()
    assert v.check(tick(100.0, at(10, 0, 5), volume=10)) is None
    v.reset(TOKEN)
    assert v.check(tick(100.0, at(10, 0, 4), volume=5)) is None


def test_invalid_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        TickValidator(spike_band=0)
    with pytest.raises(ValueError):
        TickValidator(confirm_ticks=0)


def test_validation_of_many_ticks_is_fast() -> None:
    v = TickValidator()
    start = at(9, 15)
    ticks = [
        tick(100.0 + (i % 7) * 0.05, start + timedelta(seconds=i // 3), volume=i, token=i % 50)
        for i in range(30_000)
    ]
    t0 = time.perf_counter()
    for t in ticks:
        v.check(t)
    assert v.accepted == 30_000
    assert time.perf_counter() - t0 < 3.0


def test_default_band_matches_the_simulator_rule_of_three_percent_from_the_previous_valid_tick() -> None:
    v = TickValidator()
    assert v.check(tick(100.0, at(10, 0, 1), volume=1)) is None
    assert v.check(tick(104.0, at(10, 0, 1), volume=1)) is Rejection.SPIKE  # a 4 % spike packet
    assert v.check(tick(102.9, at(10, 0, 2), volume=2)) is None  # 2.9 % from 100.0
    assert v.check(tick(99.0, at(10, 0, 3), volume=3)) is Rejection.SPIKE  # 3.8 % from 102.9


def test_pre_open_trade_is_rejected_but_seeds_the_spike_reference() -> None:
    v = TickValidator()
    assert v.check(tick(200.0, at(9, 8), volume=500, prev_close=100.0)) is Rejection.OUTSIDE_MARKET_HOURS
    # Without the seed this would be a spike against the previous close (band 20 %).
    assert v.check(tick(201.0, at(9, 15), volume=600, prev_close=100.0)) is None
    v2 = TickValidator()
    v2.check(tick(100.0, at(9, 8), volume=500))
    assert v2.check(tick(104.0, at(9, 15), volume=600)) is Rejection.SPIKE


def test_a_median_reference_survives_one_bad_accepted_tick() -> None:
    v = TickValidator(spike_band=0.03, reference_window=5)
    for i, p in enumerate([100.0, 100.0, 102.5, 100.1, 100.0]):
        assert v.check(tick(p, at(10, 0, i), volume=i)) is None
    assert v.check(tick(97.5, at(10, 0, 9), volume=9)) is None  # 2.5 % below the median 100.0


def test_validating_decoded_full_ticks_leaves_their_books_unbuilt_and_still_finds_duplicates() -> None:
    # The codec decodes a full packet's book only when asked; the duplicate check compares books by
    # their wire bytes and must not build them (hashing one did: most of the consumer's per-tick CPU).
    from tickwise.adapters.kite.codec import decode_frame, encode_frame

    book_a = Depth(buy=(DepthLevel(10, 99.9, 1),) * 5, sell=(DepthLevel(5, 100.1, 1),) * 5)
    book_b = Depth(buy=(DepthLevel(11, 99.9, 1),) * 5, sell=(DepthLevel(5, 100.1, 1),) * 5)
    sent = [
        tick(100.0, at(10, 0, 5), volume=10, depth=book_a),
        tick(100.0, at(10, 0, 5), volume=10, depth=book_b),
        tick(100.0, at(10, 0, 5), volume=10, depth=book_a),
    ]
    decoded = decode_frame(encode_frame(sent, "full"))
    v = TickValidator()
    verdicts = [v.check(t) for t in decoded]
    assert verdicts == [None, None, Rejection.DUPLICATE]
    assert all(getattr(t.depth, "_levels", "eager") is None for t in decoded), "a book was built"
    assert [t.depth for t in decoded] == [book_a, book_b, book_a]  # built on request, equal to what was sent
