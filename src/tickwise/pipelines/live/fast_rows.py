"""The live path's :class:`~tickwise.domain.signal.Signal` builders, without the frozen ``__init__``.

A minute at 1,000 instruments builds about 1,000 signals in the engine and as many again in the signal
sink (the latency stamp), all between the candle close and the sink; the generic slot-writing builders
live in :mod:`tickwise.core.slotted` (the candle builder uses them too) and are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable

from tickwise.core.slotted import positional, replacing
from tickwise.domain.signal import Signal

__all__ = ["new_signal", "positional", "replacing", "with_latency"]

# Signal(...) with every field positional, in Signal's declaration order.
new_signal: Callable[..., Signal] = positional(Signal)
# dataclasses.replace(signal, latency_ms=value)
with_latency: Callable[[Signal, float | None], Signal] = replacing(Signal, "latency_ms")
