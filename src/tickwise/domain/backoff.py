"""Exponential backoff with jitter: the one retry schedule of the project.

Used by the Kite REST retries and the ticker reconnect loop (adapters) and by the live pipeline's
database writer and REST repair fetches (pipelines); standard library only, so every layer may use it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before attempt ``n`` (0-based): ``base * factor**n`` capped at ``cap``, times a jitter factor.

    ``jitter`` is the half-width of the uniform multiplicative jitter: 0.2 gives delays in
    [0.8 d, 1.2 d] (still never above ``cap``). Jitter spreads reconnects of many clients apart.
    """

    base: float = 1.0
    factor: float = 2.0
    cap: float = 60.0
    jitter: float = 0.2
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < 0 or self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError(f"invalid backoff parameters: {self}")

    def nominal(self, attempt: int) -> float:
        """The delay before jitter for 0-based ``attempt``."""
        if attempt < 0:
            raise ValueError("attempt must be >= 0")
        # Avoid float overflow for large attempt numbers: once over the cap, stay at the cap.
        exponent = min(attempt, 64)
        return min(self.cap, self.base * self.factor**exponent)

    def delay(self, attempt: int) -> float:
        """The jittered delay for 0-based ``attempt`` (never above ``cap``)."""
        nominal = self.nominal(attempt)
        if self.jitter == 0:
            return nominal
        jittered = nominal * self.rng.uniform(1 - self.jitter, 1 + self.jitter)
        return min(self.cap, max(0.0, jittered))
