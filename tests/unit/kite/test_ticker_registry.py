"""KiteTicker's subscription registry and sharding, without any connection."""

from __future__ import annotations

import pytest

from tickwise.adapters.kite.ticker import KiteTicker, TickerState
from tickwise.domain.errors import BrokerError


def _ticker(**kwargs: object) -> KiteTicker:
    return KiteTicker("key", "secret-token", root="ws://127.0.0.1:9", **kwargs)  # type: ignore[arg-type]


async def test_subscriptions_are_recorded_before_connecting_and_replayed_later() -> None:
    ticker = _ticker()
    await ticker.subscribe([408065, 256265], mode="full")
    await ticker.set_mode([256265], "quote")
    await ticker.subscribe([408065])  # re-subscribing moves it back to the default mode
    assert ticker.subscriptions == {408065: "quote", 256265: "quote"}
    await ticker.unsubscribe([408065, 999])
    assert ticker.subscriptions == {256265: "quote"}
    assert ticker.state is TickerState.IDLE and ticker.connections == 1


async def test_tokens_fill_one_connection_before_opening_the_next() -> None:
    ticker = _ticker(max_tokens_per_connection=4, max_connections=3)
    await ticker.subscribe(range(1, 10), mode="ltp")
    assert [len(r) for r in ticker.shard_registries()] == [4, 4, 1]
    await ticker.unsubscribe([1, 2])
    await ticker.subscribe([20, 21, 22], mode="full")
    assert [len(r) for r in ticker.shard_registries()] == [4, 4, 2]
    assert ticker.subscriptions[20] == "full"


async def test_more_than_three_connections_worth_is_refused_without_partial_changes() -> None:
    ticker = _ticker(max_tokens_per_connection=2, max_connections=3)
    await ticker.subscribe([1, 2, 3, 4, 5])
    with pytest.raises(BrokerError, match="cannot subscribe 2 more"):
        await ticker.subscribe([6, 7])
    assert sorted(ticker.subscriptions) == [1, 2, 3, 4, 5]
    await ticker.subscribe([5, 6])  # 5 is known, only 6 is new: fits
    assert len(ticker.subscriptions) == 6


def test_the_access_token_stays_out_of_repr_and_log_text_but_goes_in_the_url() -> None:
    ticker = _ticker()
    assert "secret-token" not in repr(ticker)
    assert ticker._url() == "ws://127.0.0.1:9?api_key=key&access_token=secret-token"
    assert (
        ticker._redact(f"bad uri {ticker._url()}") == "bad uri ws://127.0.0.1:9?api_key=key&access_token=***"
    )


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        _ticker(overflow="grow")
    with pytest.raises(ValueError):
        _ticker(watchdog_s=0)
