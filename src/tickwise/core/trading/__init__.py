"""The trade engine shared by backtests and paper trading: Zerodha intraday costs, risk limits, metrics.

Pure computation (no I/O, no clock, no configuration): callers feed signals and prices in time order.
"""

from tickwise.core.trading.costs import Charges, ZerodhaIntradayCharges, money
from tickwise.core.trading.engine import (
    SIZINGS,
    EngineConfig,
    OpenPosition,
    SessionRules,
    Sizing,
    Slippage,
    TradeEngine,
)
from tickwise.core.trading.events import PriceEvent, TradeSignal, barrier_signal
from tickwise.core.trading.risk import RiskLimits
from tickwise.core.trading.trade import EXIT_REASONS, EquityPoint, ExitReason, Trade

__all__ = [
    "EXIT_REASONS",
    "SIZINGS",
    "Charges",
    "EngineConfig",
    "EquityPoint",
    "ExitReason",
    "OpenPosition",
    "PriceEvent",
    "RiskLimits",
    "SessionRules",
    "Sizing",
    "Slippage",
    "Trade",
    "TradeEngine",
    "TradeSignal",
    "ZerodhaIntradayCharges",
    "barrier_signal",
    "money",
]
