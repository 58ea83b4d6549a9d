"""A ticker connection works from what it is handed (settings + TickerLink), never from the ticker itself."""

from __future__ import annotations

import ast
import asyncio
import socket
from datetime import datetime
from pathlib import Path

from tickwise.adapters.kite import ticker_connection
from tickwise.adapters.kite.errors import KiteError, KiteNetworkError
from tickwise.adapters.kite.ticker_connection import ConnectionSettings, TickerConnection, TickerLink
from tickwise.adapters.kite.ticker_state import DisconnectInterval, TickerState, TickerStats
from tickwise.domain.tick import Tick
from tickwise.domain.time import IST


def test_the_connection_module_does_not_import_the_ticker() -> None:
    tree = ast.parse(Path(ticker_connection.__file__).read_text())
    imported = {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module is not None
    }
    assert "tickwise.adapters.kite.ticker" not in imported


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there once the socket is closed


async def test_a_connection_that_never_connects_fails_the_ticker_through_its_link() -> None:
    failures: list[tuple[TickerState, KiteError]] = []
    stop = asyncio.Event()
    state_changes: list[TickerState] = []
    url = f"ws://127.0.0.1:{_closed_port()}?api_key=k&access_token=secret"

    def fail(state: TickerState, error: KiteError) -> None:
        failures.append((state, error))
        stop.set()

    async def no_renewal() -> bool:
        return False

    async def ignore_gap(gap: DisconnectInterval) -> None:
        return None

    async def ignore_text(kind: str, data: object) -> None:
        return None

    stats = TickerStats()
    queue: asyncio.Queue[Tick] = asyncio.Queue()
    connection = TickerConnection(
        0,
        ConnectionSettings(
            watchdog_s=1.0,
            backoff_delay=lambda attempt: 0.01,
            max_attempts=2,
            too_many_connections_delay_s=0.01,
            connect_timeout_s=1.0,
            overflow="drop_newest",
        ),
        TickerLink(
            stats=stats,
            gaps=[],
            queue=queue,
            stop=stop,
            now=lambda: datetime.now(IST),
            url=lambda: url,
            redact=lambda text: text.replace("secret", "***"),
            reload_token=no_renewal,
            fail=fail,
            state_changed=lambda: state_changes.append(connection.state),
            ticker_state=lambda: failures[0][0] if failures else TickerState.CONNECTING,
            gap_closed=ignore_gap,
            text_event=ignore_text,
        ),
    )
    connection.start()
    await asyncio.wait_for(stop.wait(), 10.0)
    await connection.stop()

    assert [state for state, _ in failures] == [TickerState.GAVE_UP]
    error = failures[0][1]
    assert isinstance(error, KiteNetworkError) and "after 2 attempts" in str(error)
    assert "secret" not in str(error)
    assert stats.failed_connects == 2 and stats.connects == 0
    assert TickerState.CONNECTING in state_changes and TickerState.BACKOFF in state_changes
    assert connection.state is TickerState.GAVE_UP
