"""Zerodha's charges on intraday equity (MIS, NSE) for one round trip, rounded as a contract note is.

Every rate is a named field of :class:`ZerodhaIntradayCharges` so a fee change is one configuration
value, not a code change (rates as published on zerodha.com/charges):

| charge | default | applies to |
|---|---|---|
| brokerage | min(Rs 20, 0.03 %) | each executed order (entry and exit separately) |
| STT | 0.025 % | sell value |
| exchange transaction (NSE) | 0.00297 % | turnover (buy + sell value) |
| SEBI turnover fee | Rs 10 per crore | turnover |
| stamp duty | 0.003 % | buy value |
| GST | 18 % | brokerage + exchange + SEBI |

Rounding: each line of the contract note is rounded to the paisa (half up), and GST is charged on the
rounded lines, so the figures here add up exactly like the note. Arithmetic is in ``Decimal`` on the
prices' shortest decimal representation, so Rs 1010.05 x 7 is exactly Rs 7070.35 and never 7070.3499....
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

PAISA = Decimal("0.01")
CRORE = Decimal(10_000_000)


def money(value: Decimal | float | int) -> Decimal:
    """Round rupees to the paisa, half up (as a contract note does)."""
    return to_decimal(value).quantize(PAISA, rounding=ROUND_HALF_UP)


def to_decimal(value: Decimal | float | int) -> Decimal:
    """A float price as the decimal it was written as (``repr``), not its binary expansion."""
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


@dataclass(frozen=True, slots=True)
class Charges:
    """The statutory and broker charges of one round trip, each rounded to the paisa (rupees)."""

    brokerage: Decimal
    stt: Decimal
    exchange: Decimal
    sebi: Decimal
    stamp: Decimal
    gst: Decimal

    @property
    def total(self) -> Decimal:
        return self.brokerage + self.stt + self.exchange + self.sebi + self.stamp + self.gst


@dataclass(frozen=True, slots=True)
class ZerodhaIntradayCharges:
    """Rates of Zerodha's equity-intraday charges (fractions of value unless named otherwise)."""

    brokerage_rate: float = 0.0003
    brokerage_cap: float = 20.0  # rupees per executed order
    stt_sell_rate: float = 0.00025
    exchange_rate: float = 0.0000297
    sebi_per_crore: float = 10.0  # rupees per crore of turnover
    stamp_buy_rate: float = 0.00003
    gst_rate: float = 0.18

    def __post_init__(self) -> None:
        for name in (
            "brokerage_rate",
            "brokerage_cap",
            "stt_sell_rate",
            "exchange_rate",
            "sebi_per_crore",
            "stamp_buy_rate",
            "gst_rate",
        ):
            value = getattr(self, name)
            if not value >= 0:  # also rejects NaN
                raise ValueError(f"{name} must be >= 0, got {value}")

    def order_brokerage(self, value: Decimal) -> Decimal:
        """Brokerage of one executed order of ``value`` rupees."""
        return min(money(value * to_decimal(self.brokerage_rate)), money(self.brokerage_cap))

    def round_trip(self, buy_value: Decimal, sell_value: Decimal) -> Charges:
        """Charges of buying ``buy_value`` and selling ``sell_value`` rupees (one order each)."""
        if buy_value < 0 or sell_value < 0:
            raise ValueError(f"order values must be >= 0, got buy {buy_value} and sell {sell_value}")
        turnover = buy_value + sell_value
        brokerage = self.order_brokerage(buy_value) + self.order_brokerage(sell_value)
        exchange = money(turnover * to_decimal(self.exchange_rate))
        sebi = money(turnover * to_decimal(self.sebi_per_crore) / CRORE)
        return Charges(
            brokerage=brokerage,
            stt=money(sell_value * to_decimal(self.stt_sell_rate)),
            exchange=exchange,
            sebi=sebi,
            stamp=money(buy_value * to_decimal(self.stamp_buy_rate)),
            gst=money((brokerage + exchange + sebi) * to_decimal(self.gst_rate)),
        )
