"""Clock: where "now" comes from, so tests and the simulator can inject their own time.

Implementations return tz-aware instants (UTC or Asia/Kolkata, never naive). The system clock lives
in ``observability``-free code at the composition root; tests use the shared fake in ``tests/fakes.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, tz-aware."""
        ...

    def monotonic(self) -> float:
        """Seconds on a monotonic scale, for measuring durations and deadlines."""
        ...
