"""Dedup and throttling: whether a message is new enough, and its key quiet long enough, to go out.

* **dedup**: the same content is not sent again within ``dedup_s``;
* **throttle**: at most one message per key per ``throttle_s``. ``critical`` alerts use a quarter of
  the window, so an escalation is not swallowed by an earlier warning, and a signal whose direction
  differs from the last one sent for its key always passes (a reversal is the news).

Windows are measured on a monotonic clock in seconds. State is pruned as it ages out, so a long
session does not grow it without bound.
"""

from __future__ import annotations

from collections.abc import Hashable

PRUNE_AT = 10_000


class Gate:
    def __init__(self, *, throttle_s: float, dedup_s: float) -> None:
        if throttle_s < 0 or dedup_s < 0:
            raise ValueError("throttle_s and dedup_s must be >= 0")
        self.throttle_s = throttle_s
        self.dedup_s = dedup_s
        self._by_key: dict[str, tuple[float, Hashable]] = {}
        self._by_content: dict[Hashable, float] = {}

    def check(
        self, key: str, content: Hashable, now: float, *, critical: bool = False, state: Hashable = None
    ) -> str | None:
        """None when the message may go out, else the reason it may not (``duplicate``/``throttled``)."""
        last = self._by_content.get(content)
        if last is not None and now - last < self.dedup_s:
            return "duplicate"
        window = self.throttle_s / 4 if critical else self.throttle_s
        previous = self._by_key.get(key)
        if previous is not None and now - previous[0] < window and previous[1] == state:
            return "throttled"
        return None

    def record(self, key: str, content: Hashable, now: float, *, state: Hashable = None) -> None:
        """Remember that the message went out (call only when it was queued)."""
        self._by_key[key] = (now, state)
        self._by_content[content] = now
        if len(self._by_content) > PRUNE_AT or len(self._by_key) > PRUNE_AT:
            self._prune(now)

    def _prune(self, now: float) -> None:
        horizon = max(self.throttle_s, self.dedup_s)
        self._by_content = {c: t for c, t in self._by_content.items() if now - t < horizon}
        self._by_key = {k: v for k, v in self._by_key.items() if now - v[0] < horizon}
