"""`tickwise bench live --shards`: shares of the instruments replayed in parallel processes, and the
minute-end -> signal figure."""

from __future__ import annotations

from tickwise.bench.live import run_live_bench, run_sharded_live_bench


def test_three_shards_of_a_few_instruments_lose_no_bar_and_no_shard() -> None:
    figures = run_sharded_live_bench(3, instruments=6, minutes=2)
    assert figures["dead_shards"] == []
    assert [s["instruments_replayed"] for s in figures["per_shard"]] == [2, 2, 2]
    # Every instrument trades in every simulated minute here: 6 x 2 bars, each with its signal written.
    assert figures["bars"] == figures["signals_written"] == 12 and figures["engine_errors"] == 0
    assert 0 < figures["latency_ms_p50"] <= figures["latency_ms_p99"]
    assert 0 < figures["minute_end_ms_p50"] <= figures["minute_end_ms_p99"]
    # Each shard's RSS is its engine process's (the market is built in a child), per 1,000 of its own.
    assert [s["rss_process"] for s in figures["per_shard"]] == ["engine"] * 3
    held = figures["rss_held_mb_per_shard"]
    assert len(held) == 3 and all(h > 0 for h in held)
    assert figures["rss_held_mb_per_1000_per_shard"] == [round(h * 1000.0 / 2, 1) for h in held]
    # ... split per shard into its own pages (RssAnon), its libraries' file pages and its PSS.
    anon, files = figures["rss_anon_held_mb_per_shard"], figures["rss_file_held_mb_per_shard"]
    assert anon == [s["rss_anon_held_mb"] for s in figures["per_shard"]]
    assert all(0 < a < h and 0 < f < h for a, f, h in zip(anon, files, held, strict=True))
    assert figures["rss_anon_held_mb_per_1000_per_shard"] == [round(a * 1000.0 / 2, 1) for a in anon]
    assert all(p is None or p > 0 for p in figures["pss_held_mb_per_shard"])
    # Each shard left pyarrow out before its imports, as `tickwise live --shard I/N` does.
    assert figures["pyarrow_imported_per_shard"] == [False] * 3


def test_the_minute_end_figure_includes_the_close_rule_the_feed_margin_shortens() -> None:
    early = run_live_bench(instruments=4, minutes=2, feed_close_margin_s=0.3)
    grace = run_live_bench(instruments=4, minutes=2, feed_close_margin_s=None)
    assert early["bars"] == grace["bars"] == 8
    # Signals can never come before the minute has ended; the quiet instruments' bars wait for the
    # 2 s grace without the feed rule.
    assert early["minute_end_ms_p50"] > 0 and grace["minute_end_ms_p50"] > 0
    assert grace["minute_end_ms_max"] >= 2000.0
    assert early["minute_end_ms_max"] < grace["minute_end_ms_max"]
