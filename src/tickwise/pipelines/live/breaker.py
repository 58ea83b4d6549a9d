"""A circuit breaker: stop hammering a failing dependency (database, broker REST), probe it now and then.

``closed`` (normal) -> ``failure_threshold`` consecutive failures -> ``open`` (calls refused for
``cooldown_s``) -> ``half_open`` (one trial call allowed) -> success closes it, failure re-opens it.
State changes are reported to ``on_change(name, state)`` (the pipeline hooks publish them as metrics).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable


class CircuitBreaker:
    """Consecutive-failure breaker with a cooldown; cheap and synchronous."""

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 3,
        cooldown_s: float = 5.0,
        on_change: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or cooldown_s < 0:
            raise ValueError("failure_threshold must be >= 1 and cooldown_s >= 0")
        self.name = name
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._on_change = on_change
        self._clock = clock
        self.state = "closed"
        self.failures = 0
        self.opened_at = 0.0
        self.trips = 0

    def allow(self) -> bool:
        """May a call go through now? (An open breaker turns half-open once the cooldown is over.)"""
        if self.state == "open" and self._clock() - self.opened_at >= self.cooldown_s:
            self._set("half_open")
        return self.state != "open"

    def success(self) -> None:
        self.failures = 0
        if self.state != "closed":
            self._set("closed")

    def failure(self) -> None:
        self.failures += 1
        if self.state == "half_open" or self.failures >= self.failure_threshold:
            if self.state != "open":
                self.trips += 1
            self.opened_at = self._clock()
            self._set("open")

    def _set(self, state: str) -> None:
        if state == self.state:
            return
        self.state = state
        if self._on_change is not None:
            with contextlib.suppress(Exception):  # observers must never break the caller
                self._on_change(self.name, state)
