"""Watching the feed: silence, our own stalls, open disconnects and damaged frames -> repair windows.

* **Feed silence**: no frame and no heartbeat for more than ``silence_s`` real seconds. The minutes
  since the last feed activity cannot be trusted (a frame may have been lost without a disconnect).
* **Own stalls**: CPU-bound work blocking this event loop. Frames wait in the socket meanwhile, so that
  time is neither feed silence nor a reason to close bars on the clock: the session's clock task beats
  every ``beat_s``; a beat later than ``STALL_S`` is time the loop was blocked, deducted from the
  silence, and for ``CATCH_UP_S`` afterwards bars are not closed on the clock (the queued feed first).
* **Disconnects**: while a connection is down, every minute from the disconnect on is suspect (the
  closed gap itself is reported by the feed's ``on_gap`` callback).
* **Decode errors**: a damaged frame carried recent ticks: the last minute and the current one.

:class:`FeedWatch` only reports :class:`Suspect` ranges; the repair queue turns them into windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from tickwise.ports.market_feed import MarketFeed

STALL_S = 0.2  # a clock beat this late (real seconds) means our own event loop was blocked
CATCH_UP_S = 0.25  # after such a stall, real seconds for the queued feed to come in before clock closes
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Suspect:
    """Market-time range the feed cannot be trusted for, and why."""

    start: datetime
    end: datetime
    reason: str


class FeedWatch:
    """Detects feed silence, open disconnects and decode errors, net of the event loop's own stalls."""

    def __init__(self, *, silence_s: float, started: float, beat_s: float = 0.05) -> None:
        self.silence_s = silence_s
        self.beat_s = beat_s
        self.feed: MarketFeed | None = None
        self._last_errors = 0
        self._last_count = 0
        self._last_real = started
        self._last_sim: datetime | None = None
        self._beat = started  # when the clock task last got the loop (or stalls were counted)
        self._own_stall = 0.0  # seconds of own stall since the last feed activity
        self._catch_up_until = 0.0

    def attach(self, feed: MarketFeed) -> None:
        self.feed = feed

    def start_beats(self, real: float) -> None:
        """The clock task starts beating at ``real``."""
        self._beat = real

    def beat(self, real: float) -> None:
        """The clock task got the loop at ``real`` (monotonic seconds); a late beat is an own stall."""
        lag = real - self._beat - self.beat_s
        self._beat = real
        if lag > STALL_S:
            self._own_stall += lag
            self._catch_up_until = real + CATCH_UP_S

    def may_close_on_clock(self, real: float) -> bool:
        """False right after an own stall: the feed queued meanwhile must be consumed first."""
        return real >= self._catch_up_until

    def check(self, now: datetime, real: float) -> list[Suspect]:
        """Silence that just ended and disconnects still open, as of market time ``now``."""
        feed = self.feed
        if feed is None:
            return []
        out = []
        count = feed.stats.frames + feed.stats.heartbeats
        if count != self._last_count:
            # Silence is what remains of the wait once our own stalls (finished or ongoing) are deducted.
            own = self._own_stall + max(0.0, real - self._beat - self.beat_s)
            self._own_stall, self._beat = 0.0, real
            if self._last_sim is not None and real - self._last_real - own > self.silence_s:
                out.append(Suspect(self._last_sim, now, "feed silence"))
            self._last_count = count
            self._last_real = real
            self._last_sim = now
        # While a connection is down, hold every bar from the disconnect on (the gap is closed and
        # repaired once the feed reconnects and reports it).
        for gap in feed.gaps[-3:]:
            if gap.reconnected_at is None:
                out.append(Suspect(gap.disconnected_at, now, "disconnected"))
        return out

    def decode_errors(self, now: datetime) -> Suspect | None:
        """The last minute and the current one, when a frame was damaged since the last call."""
        feed = self.feed
        if feed is None:
            return None
        errors = feed.stats.decode_errors + feed.stats.handler_errors
        if errors == self._last_errors:
            return None
        self._last_errors = errors
        return Suspect(now - MINUTE, now, "decode error")

    def disconnected(self) -> bool:
        """A connection is down right now (its gap keeps growing)."""
        return self.feed is not None and any(g.reconnected_at is None for g in self.feed.gaps[-3:])
