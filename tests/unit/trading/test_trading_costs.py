"""Zerodha intraday charges against contract notes computed by hand (every line rounded to the paisa)."""

from decimal import Decimal

import pytest

from tickwise.core.trading.costs import ZerodhaIntradayCharges, money


def test_a_one_lakh_round_trip_costs_what_the_contract_note_says() -> None:
    # Buy 100 @ 1000, sell 100 @ 1010. Brokerage: 0.03 % is Rs 30 and 30.30 -> capped at Rs 20 each.
    # STT 0.025 % x 101000 = 25.25; NSE 0.00297 % x 201000 = 5.9697 -> 5.97; SEBI 201000/1e7 x 10 = 0.201
    # -> 0.20; stamp 0.003 % x 100000 = 3.00; GST 18 % x (40 + 5.97 + 0.20) = 8.3106 -> 8.31.
    c = ZerodhaIntradayCharges().round_trip(Decimal("100000"), Decimal("101000"))
    assert (c.brokerage, c.stt, c.exchange, c.sebi, c.stamp, c.gst) == tuple(
        Decimal(x) for x in ("40.00", "25.25", "5.97", "0.20", "3.00", "8.31")
    )
    assert c.total == Decimal("82.73")


def test_a_small_order_pays_percentage_brokerage_rounded_per_order() -> None:
    # Buy 10 @ 500 (5000), sell 10 @ 495 (4950): brokerage 1.50 + 1.485 -> 1.49 = 2.99; STT 1.2375 -> 1.24;
    # NSE 9950 x 0.0000297 = 0.295515 -> 0.30; SEBI 0.00995 -> 0.01; stamp 0.15; GST 18 % x 3.30 = 0.594 -> 0.59.
    c = ZerodhaIntradayCharges().round_trip(Decimal("5000"), Decimal("4950"))
    assert (c.brokerage, c.stt, c.exchange, c.sebi, c.stamp, c.gst) == tuple(
        Decimal(x) for x in ("2.99", "1.24", "0.30", "0.01", "0.15", "0.59")
    )
    assert c.total == Decimal("5.28")


def test_each_rate_is_a_configurable_constant() -> None:
    free = ZerodhaIntradayCharges(brokerage_cap=0.0, gst_rate=0.0)
    c = free.round_trip(Decimal("100000"), Decimal("100000"))
    assert c.brokerage == 0 and c.gst == 0
    assert c.stt == Decimal("25.00")


def test_money_rounds_half_up_to_the_paisa_from_the_written_decimal() -> None:
    assert money(2.675) == Decimal("2.68")  # the float 2.675 is 2.67499999...; the note says 2.68
    assert money(Decimal("0.005")) == Decimal("0.01")
    assert money(Decimal("1010.05") * 7) == Decimal("7070.35")


def test_negative_rates_and_order_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="stt_sell_rate"):
        ZerodhaIntradayCharges(stt_sell_rate=-0.1)
    with pytest.raises(ValueError, match="order values"):
        ZerodhaIntradayCharges().round_trip(Decimal("-1"), Decimal("1"))
