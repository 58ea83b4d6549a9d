"""``compute.scheduler: tcp://host:port``: tickwise as a client of a Dask cluster it did not start.

A real ``dask scheduler`` and a ``dask worker`` with two worker processes run as separate programs on
loopback (what a user starts on their own machines), and tickwise reaches them by address only, through
the same ``derive_plan`` / ``open_trainer`` the CLI uses. The derive they run writes exactly the rows of
the inline pass (compared as text: float8 prints its shortest exact form, so equal text is equal bits),
and an address with no scheduler behind it is a clear configuration error, not a hang or a traceback.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

import asyncpg
import pytest
from derived_tables import backfill_1m, derive_settings, derive_through_plan, derived_contents, forget_derived

from tickwise.bootstrap.compute import DaskTrainer, open_trainer
from tickwise.config import Settings
from tickwise.domain.errors import ConfigError

pytestmark = [pytest.mark.db, pytest.mark.slow]

START_TIMEOUT_S = 180.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dask(*args: str, log: BinaryIO) -> subprocess.Popen[bytes]:
    """``dask <args>`` from this interpreter's environment (the workers import tickwise from it too)."""
    return subprocess.Popen(  # nosec B603: a fixed argument list, no shell
        [str(Path(sys.executable).with_name("dask")), *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=os.environ.copy(),
    )


def _workers(address: str) -> int:
    from distributed import Client

    with Client(address, timeout=5) as client:  # type: ignore[no-untyped-call]
        return len(client.scheduler_info()["workers"])


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def scheduler_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A scheduler and two single-threaded worker processes, started the way a user starts them."""
    root = tmp_path_factory.mktemp("dask-cluster")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    logs = (root / "scheduler.log", root / "worker.log")
    with ExitStack() as files:
        scheduler_log, worker_log = (files.enter_context(path.open("wb")) for path in logs)
        scheduler = _dask(
            "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard", log=scheduler_log
        )
        worker = _dask(
            "worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard",
            "--local-directory", str(root / "workers"), "--memory-limit", "4GiB", log=worker_log,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                if scheduler.poll() is not None or worker.poll() is not None or time.monotonic() > deadline:
                    tails = "".join(path.read_text()[-1500:] for path in logs)
                    pytest.fail(f"the Dask cluster did not start:\n{tails}")
                try:
                    if _workers(address) == 2:
                        break
                except (OSError, TimeoutError):
                    pass
                time.sleep(1.0)
            yield address
        finally:
            _stop(worker)
            _stop(scheduler)


def _settings(tmp: Path, scheduler: str = "inline", distributed: bool = False) -> Settings:
    return derive_settings(
        tmp,
        TICKWISE__COMPUTE__SCHEDULER=scheduler,
        TICKWISE__COMPUTE__CHUNK_SESSIONS="2",
        TICKWISE__MODEL_TRAINING__DISTRIBUTED="true" if distributed else "false",
        TICKWISE__MODEL_TRAINING__DISTRIBUTED_TIMEOUT_S="321",
    )


async def test_derive_on_a_dask_scheduler_reached_by_address_writes_the_rows_of_the_inline_pass(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path, scheduler_address: str
) -> None:
    inline = _settings(tmp_path)
    backfilled = await backfill_1m(inline, db_url, clean_db)
    single = await derive_through_plan(inline, db_url, backfilled)
    expected = await derived_contents(clean_db)
    assert single.feature_rows > 0 and single.label_rows > 0

    await forget_derived(clean_db)
    remote = await derive_through_plan(_settings(tmp_path, scheduler_address), db_url, backfilled)

    assert await derived_contents(clean_db) == expected
    assert (remote.feature_rows, remote.label_rows) == (single.feature_rows, single.label_rows)
    assert remote.rollup_rows == single.rollup_rows
    assert remote.derive_chunks == 9  # 3 instruments x 3 chunks of 2 sessions


async def test_the_distributed_trainer_on_a_scheduler_address_counts_that_clusters_workers(
    tmp_path: Path, db_url: str, scheduler_address: str
) -> None:
    settings = _settings(tmp_path, scheduler_address, distributed=True)
    async with open_trainer(settings, db_url) as trainer:
        assert trainer.provenance == {"trainer": "dask", "trainer_workers": 2}
        # Each side's fit gets the configured deadline (adapters/dask/deadline.py), not the default.
        assert isinstance(trainer, DaskTrainer) and trainer.timeout_s == 321.0


async def test_a_scheduler_address_with_nothing_behind_it_is_a_config_error_naming_the_key(
    tmp_path: Path, db_url: str
) -> None:
    settings = _settings(tmp_path, f"tcp://127.0.0.1:{free_port()}", distributed=True)
    began = time.monotonic()
    with pytest.raises(ConfigError, match=r"compute\.scheduler: cannot reach the Dask scheduler at tcp://"):
        async with open_trainer(settings, db_url):
            pass
    assert time.monotonic() - began < 60  # the client's 10 s timeout, not a hang
