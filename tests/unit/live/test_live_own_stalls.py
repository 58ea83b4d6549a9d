"""A stall of the session's own event loop is not feed silence; a silent feed still is."""

from __future__ import annotations

from datetime import datetime, timedelta

from live_fakes import SilentFeed

from tickwise.adapters.kite.ticker_state import DisconnectInterval
from tickwise.domain.time import IST
from tickwise.pipelines.live.feed_watch import FeedWatch

T0 = datetime(2026, 3, 2, 10, 0, 0, tzinfo=IST)
BEAT = 0.05


def watch_at(real: float) -> tuple[FeedWatch, SilentFeed]:
    watch = FeedWatch(silence_s=1.0, started=real, beat_s=BEAT)
    feed = SilentFeed()
    watch.attach(feed)
    watch.start_beats(real)
    return watch, feed


def frame(watch: FeedWatch, feed: SilentFeed, real: float) -> list[str]:
    feed.stats.frames += 1
    return [s.reason for s in watch.check(T0 + timedelta(seconds=real), real)]


def test_a_blocked_event_loop_is_not_reported_as_feed_silence() -> None:
    watch, feed = watch_at(0.0)
    watch.beat(0.05)
    assert frame(watch, feed, 0.1) == []
    # Our own CPU work blocks the loop for 1.6 s: the clock beats late, the feed queued meanwhile.
    watch.beat(1.75)
    assert not watch.may_close_on_clock(1.75)  # the queued feed goes first
    assert frame(watch, feed, 1.76) == []
    watch.beat(1.8)
    assert frame(watch, feed, 1.9) == []
    assert watch.may_close_on_clock(2.1)


def test_a_feed_silent_while_the_loop_was_free_is_marked_for_repair() -> None:
    watch, feed = watch_at(0.0)
    assert frame(watch, feed, 0.1) == []
    real = 0.1
    while real < 1.7:  # the loop is free (beats on time); nothing arrives
        real += BEAT
        watch.beat(real)
    assert frame(watch, feed, real) == ["feed silence"]


def test_a_stall_that_is_still_going_on_counts_as_our_own_not_as_silence() -> None:
    watch, feed = watch_at(0.0)
    assert frame(watch, feed, 0.1) == []
    # No beat since 0.0: the loop is blocked right now, and a frame is read at 1.6 (the stall's end).
    assert frame(watch, feed, 1.6) == []


def test_an_open_disconnect_is_suspect_until_the_feed_reconnects() -> None:
    watch, feed = watch_at(0.0)
    feed.gaps.append(DisconnectInterval(shard=0, disconnected_at=T0, reconnected_at=None, reason="eof"))
    assert watch.disconnected()
    suspects = watch.check(T0 + timedelta(seconds=30), 0.1)
    assert [(s.start, s.reason) for s in suspects] == [(T0, "disconnected")]
    feed.gaps[-1] = DisconnectInterval(shard=0, disconnected_at=T0, reconnected_at=T0, reason="eof")
    assert not watch.disconnected()


def test_a_damaged_frame_marks_the_last_minute_and_the_current_one_once() -> None:
    watch, feed = watch_at(0.0)
    assert watch.decode_errors(T0) is None
    feed.stats.handler_errors += 1
    damaged = watch.decode_errors(T0)
    assert damaged is not None and (damaged.start, damaged.end) == (T0 - timedelta(minutes=1), T0)
    assert watch.decode_errors(T0) is None
