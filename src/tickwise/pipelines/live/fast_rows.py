"""The live path's :class:`~tickwise.domain.signal.Signal` builders, without the frozen ``__init__``.

A minute at 1,000 instruments builds about 1,000 signals in the engine between the candle close and the
sink (the sink passes the latencies beside them, no rebuild); the generic slot-writing builders live in
:mod:`tickwise.core.slotted` (the candle builder uses them too) and ``positional`` is re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable

from tickwise.core.slotted import positional
from tickwise.domain.signal import Signal

__all__ = ["new_signal", "positional"]

# Signal(...) with every field positional, in Signal's declaration order.
new_signal: Callable[..., Signal] = positional(Signal)
