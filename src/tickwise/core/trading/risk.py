"""Position sizing and the risk limits that stop new entries (and close positions) for the day.

- **Size**: notional = the signal's ``size`` (fraction of capital; ``default_size`` when the signal has
  none), times its meta size when meta sizing is on and the signal has one (``sized_fraction``), x capital, capped by ``max_capital_per_instrument`` x capital and by the buying power left
  (``leverage`` x capital minus the notional already open); quantity = whole lots of ``lot_size``.
- **Max open positions**: a signal arriving while that many positions are open is skipped.
- **Daily loss limit**: when the day's mark-to-market PnL falls to −``daily_loss_limit`` x capital,
  no new entry is taken that day and open positions are closed (exit reason ``risk``).
- **Max drawdown**: when mark-to-market equity falls ``max_drawdown`` (fraction) below its running
  peak, the same happens. The peak is never reset, so a breach acts as a kill switch: each following
  day halts again at its first price until equity is back within the limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from tickwise.core.trading.costs import to_decimal


@dataclass(frozen=True, slots=True)
class RiskLimits:
    capital: float = 1_000_000.0  # rupees
    default_size: float = 0.1  # fraction of capital when a signal carries no size
    max_open_positions: int = 5
    max_capital_per_instrument: float = 0.2  # fraction of capital in one instrument
    leverage: float = 1.0  # open notional <= leverage x capital (Zerodha MIS allows up to 5)
    daily_loss_limit: float | None = 0.02  # fraction of capital; None: no limit
    max_drawdown: float | None = 0.10  # fraction of peak equity; None: no limit

    def __post_init__(self) -> None:
        if not (self.capital > 0 and math.isfinite(self.capital)):
            raise ValueError(f"capital must be a positive amount, got {self.capital}")
        if self.max_open_positions < 1:
            raise ValueError(f"max_open_positions must be >= 1, got {self.max_open_positions}")
        for name in ("default_size", "max_capital_per_instrument", "leverage"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("daily_loss_limit", "max_drawdown"):
            value = getattr(self, name)
            if value is not None and not 0 < value <= 1:
                raise ValueError(f"{name} must be in (0, 1] or None, got {value}")

    def quantity(self, size: float | None, price: Decimal, lot_size: int, open_notional: Decimal) -> int:
        """Shares to trade at ``price`` (a multiple of ``lot_size``; 0 when not even one lot fits)."""
        fraction = self.default_size if size is None or not math.isfinite(size) else size
        if fraction <= 0 or price <= 0:
            return 0
        capital = to_decimal(self.capital)
        notional = min(
            to_decimal(fraction) * capital,
            to_decimal(self.max_capital_per_instrument) * capital,
            to_decimal(self.leverage) * capital - open_notional,
        )
        if notional <= 0:
            return 0
        lots = (notional / (price * lot_size)).to_integral_value(rounding=ROUND_FLOOR)
        return int(lots) * lot_size


def sized_fraction(size: float | None, meta_size: float | None, default_size: float) -> float | None:
    """The fraction of capital a signal asks for: its own ``size`` (``default_size`` when it has none)
    scaled by its meta size (labeling.md §6) when it has one. Without a meta size the signal's size is
    returned unchanged (None stays None), so a meta size of 1 everywhere trades exactly as unsized."""
    if meta_size is None or not math.isfinite(meta_size):
        return size
    base = default_size if size is None or not math.isfinite(size) else size
    return base * meta_size


class RiskBook:
    """Mark-to-market state the limits are checked against; one per engine run (floats: a limit check
    needs no paisa precision, the trade ledger keeps that)."""

    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits
        self.peak = limits.capital
        self.day_start = limits.capital
        self.halted: str | None = None  # why new entries are stopped today
        self._daily_floor = (
            None if limits.daily_loss_limit is None else limits.daily_loss_limit * limits.capital
        )
        self._keep = None if limits.max_drawdown is None else 1.0 - limits.max_drawdown

    def new_day(self, realized_equity: float) -> None:
        """A new session: the daily loss is measured from here, and a halt of yesterday is lifted."""
        self.day_start = realized_equity
        self.halted = None

    def mark(self, equity: float) -> str | None:
        """Record mark-to-market ``equity``; return why trading must halt now (None when within limits)."""
        if equity > self.peak:
            self.peak = equity
        if self.halted is not None:
            return None
        if self._daily_floor is not None and equity - self.day_start <= -self._daily_floor:
            self.halted = "daily_loss_limit"
        elif self._keep is not None and equity <= self.peak * self._keep:
            self.halted = "max_drawdown"
        return self.halted
