"""Settings of a small simulated universe for the historical pipeline's integration tests: the data
directory and token file under the test's tmp path, a few symbols, a few sessions, and the keys a test
turns (``TICKWISE__...`` names, as a user sets them in the environment)."""

from __future__ import annotations

import signal
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest
import pytest_asyncio

from tickwise.adapters.timescale.schema import ALL_TABLES
from tickwise.bootstrap.context import HistoricalContext
from tickwise.config import Settings, load_settings
from tickwise.domain.instrument import Instrument

if TYPE_CHECKING:
    from distributed import Client

    from tickwise.bootstrap.historical import HistoricalSummary

THREE = "[INFY, RELIANCE, TCS]"


def simulator_settings(tmp: Path, *, symbols: str = THREE, backfill_days: int = 11, **keys: str) -> Settings:
    """``keys``: further settings as environment names without the ``TICKWISE__`` prefix
    (``WALK_FORWARD__NUM_BOOST_ROUND="20"``)."""
    env = {
        "TICKWISE__SYSTEM__DATA_DIR": str(tmp),
        "TICKWISE__BROKER__TOKEN_FILE": str(tmp / "kite_token.json"),
        "TICKWISE__TRADING__SYMBOLS": symbols,
        "TICKWISE__TRADING__BACKFILL_DAYS": str(backfill_days),
    } | {f"TICKWISE__{name}": value for name, value in keys.items()}
    return load_settings(environ=env, environment="test")


# The out-of-sample tests' walk-forward on 12 simulated sessions: folds from the 4th session, a refit
# every 2, small fold models. A test passes what it changes (``WALK_FORWARD__NUM_BOOST_ROUND="30"``).
OOS_KEYS = {
    "WALK_FORWARD__MIN_TRAIN_SESSIONS": "4",
    "WALK_FORWARD__REFIT_EVERY_SESSIONS": "2",
    "WALK_FORWARD__MIN_TRAIN_EVENTS": "500",
    "WALK_FORWARD__NUM_BOOST_ROUND": "20",
}


def oos_settings(tmp: Path, **keys: str) -> Settings:
    """:func:`simulator_settings` of 12 sessions with :data:`OOS_KEYS`, ``keys`` over them."""
    return simulator_settings(tmp, backfill_days=12, **(OOS_KEYS | keys))


@dataclass(frozen=True)
class HistoricalRun:
    """A finished ``tickwise historical`` run that several tests of a module read: its data directory
    (models, MLflow runs), settings and summary."""

    tmp: Path
    settings: Settings
    summary: HistoricalSummary


def first_historical_run(name: str, settings_of: Callable[[Path], Settings]) -> Any:
    """A module-scoped fixture: every application table emptied, then one run of the historical mode
    with ``settings_of`` on a data directory of its own, as a :class:`HistoricalRun` that the module's
    tests share (they document the order they rely on). ``first_run = first_historical_run(...)``."""

    @pytest_asyncio.fixture(scope="module", loop_scope="session")
    async def first_run(
        pool: asyncpg.Pool, db_url: str, tmp_path_factory: pytest.TempPathFactory
    ) -> HistoricalRun:
        from tickwise.bootstrap.historical import Reporter, run_historical

        async with pool.acquire() as conn:
            await conn.execute(f"TRUNCATE {', '.join(ALL_TABLES)}")
        tmp = tmp_path_factory.mktemp(name)
        settings = settings_of(tmp)
        quiet = Reporter(quiet=True)
        with quiet:
            summary = await run_historical(settings, quiet, url=db_url)
        return HistoricalRun(tmp, settings, summary)

    return first_run


@asynccontextmanager
async def derived_history(settings: Settings, db_url: str) -> AsyncIterator[HistoricalContext]:
    """The historical context of ``settings`` on ``db_url`` with the universe synced, backfilled from
    the simulator and derived (roll-ups, features, labels): what an out-of-sample history reads."""
    from tickwise.bootstrap.broker import open_broker
    from tickwise.bootstrap.historical import HistoricalSummary, Reporter, open_historical
    from tickwise.pipelines.historical.run import derive, sync_and_backfill

    quiet = Reporter(quiet=True)
    async with open_historical(settings, url=db_url) as ctx:
        summary = HistoricalSummary()
        async with open_broker(settings) as broker:
            universe = await sync_and_backfill(ctx, broker.rest, broker.rest, broker.now(), quiet, summary)
        await derive(ctx, universe, quiet, summary)
        yield ctx


@asynccontextmanager
async def backfilled_and_derived(
    settings: Settings, db_url: str
) -> AsyncIterator[tuple[HistoricalContext, list[Instrument]]]:
    """As ``tickwise backfill`` then the historical run's derive step: the simulator's history of
    ``settings`` backfilled (rolled up, continuous futures included) and derived for the run's universe;
    the historical context and that universe, for the training load to read."""
    from tickwise.bootstrap.historical import HistoricalSummary, Reporter, open_historical, run_backfill
    from tickwise.pipelines.historical.run import derive
    from tickwise.pipelines.universe import select_universe

    quiet = Reporter(quiet=True)
    with quiet:
        backfilled = await run_backfill(settings, quiet, url=db_url)
    async with open_historical(settings, url=db_url) as ctx:
        universe = await select_universe(ctx.instruments, ctx.options.symbols, ctx.options.default_symbols)
        await derive(ctx, universe, quiet, HistoricalSummary(backfilled.first_day, backfilled.last_day))
        yield ctx, universe


@contextmanager
def two_worker_dask_client() -> Iterator[Client]:
    """A client of a new Dask ``LocalCluster`` of two single-threaded worker processes (the shape of
    tickwise's own cluster), both closed on exit."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@contextmanager
def hang_watchdog(seconds: float) -> Iterator[None]:
    """Fail the block with ``TimeoutError``, every thread's stack in its message, once it runs past
    ``seconds``: a hung distributed fit then fails its test, showing where each thread waited, instead
    of stalling the CI run (pytest-timeout is no dependency). SIGALRM: the main thread's block only."""

    def expire(signum: int, frame: FrameType | None) -> None:
        names = {thread.ident: thread.name for thread in threading.enumerate()}
        stacks = "\n".join(
            f"thread {names.get(ident, ident)}:\n{''.join(traceback.format_stack(top))}"
            for ident, top in sys._current_frames().items()
        )
        raise TimeoutError(f"the test hung for {seconds:g} s; every thread's stack:\n{stacks}")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
