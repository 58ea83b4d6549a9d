"""`tickwise live` with ``live.shards > 1``: a supervisor of worker processes, one per shard.

Each shard is ``tickwise live --shard I/N`` (the same command, restricted to the instruments
:func:`tickwise.pipelines.live.shards.assign_shards` gives it), so a shard is exactly today's live
session over its subset: its own Kite connection (or simulator), candle builder, feature state, writer,
metrics endpoint (``monitoring.metrics_port + I``, every series labelled ``shard="I"``) and health file
(``live-status-shard-I.json``). The supervisor:

* starts the shards and waits for them; a shard that ends on its own (exit 0) is done;
* restarts a shard that died (a crash, a kill) up to ``max_restarts`` times, after ``restart_delay_s``;
  the new process resumes from the database like a restarted session does (it rebuilds its state from
  the stored candles and backfills the minutes it missed through REST), and runs until the instant the
  first run resolved ``--until`` to (read back from the shard's until file), not a new relative one;
* forwards SIGINT/SIGTERM to every shard, which then stops cleanly (flushes its writer);
* returns one :class:`ShardsReport`: each shard's session report (its last run) and restart count.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from loguru import logger
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from tickwise.config import Settings
from tickwise.domain.cpus import usable_cpus
from tickwise.domain.errors import ConfigError
from tickwise.domain.time import IST
from tickwise.pipelines.live.shards import MAX_CONNECTIONS_PER_KEY, default_shard_count, shard_tokens

STOP_TIMEOUT_S = 60.0


@dataclass
class ShardRun:
    shard: int
    restarts: int = 0
    exit_codes: list[int] = field(default_factory=list)
    report: dict[str, Any] | None = None  # the shard's last session report (its JSON line)


@dataclass
class ShardsReport:
    shards: list[ShardRun]

    @property
    def ok(self) -> bool:
        """Every shard's last run ended cleanly with a report."""
        return all(r.exit_codes and r.exit_codes[-1] == 0 and r.report is not None for r in self.shards)

    def total(self, key: str) -> int:
        return sum(int((r.report or {}).get(key) or 0) for r in self.shards)


def until_file(data_dir: Path, shard: int) -> Path:
    """Where shard ``shard`` records the instant its session runs until (read back on a restart)."""
    return data_dir / f"live-shard-{shard}.until"


def write_until(path: Path, until: datetime) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(until.isoformat())


def restart_until(path: Path, fallback: str | None) -> str | None:
    """``--until`` for a restarted shard: the first run's resolved instant as an IST clock time."""
    try:
        until = datetime.fromisoformat(path.read_text().strip()).astimezone(IST)
    except (OSError, ValueError):
        return fallback
    return f"{until:%H:%M:%S}"


class ShardSupervisor:
    """Runs ``command + ["--shard", "I/N", "--json"]`` for each shard (see the module doc)."""

    def __init__(
        self,
        command: Sequence[str],
        shards: int,
        *,
        data_dir: Path,
        until: str | None,
        max_restarts: int = 5,
        restart_delay_s: float = 1.0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.command = list(command)
        self.n = shards
        self.data_dir = data_dir
        self.until = until
        self.max_restarts = max_restarts
        self.restart_delay_s = restart_delay_s
        self.env = env
        self.runs = [ShardRun(i) for i in range(shards)]
        self.processes: dict[int, asyncio.subprocess.Process] = {}
        self.stopping = asyncio.Event()

    def argv(self, shard: int, restart: bool) -> list[str]:
        until = restart_until(until_file(self.data_dir, shard), self.until) if restart else self.until
        args = [*self.command, "--shard", f"{shard}/{self.n}", "--json"]
        if until is not None:
            args += ["--until", until]
        return args

    async def run(self) -> ShardsReport:
        for i in range(self.n):
            until_file(self.data_dir, i).unlink(missing_ok=True)
        await asyncio.gather(*(self._supervise(i) for i in range(self.n)))
        return ShardsReport(self.runs)

    def stop(self) -> None:
        """Stop every shard cleanly (SIGTERM; they flush and exit)."""
        self.stopping.set()
        for proc in self.processes.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)

    async def _supervise(self, shard: int) -> None:
        run = self.runs[shard]
        while True:
            proc = await asyncio.create_subprocess_exec(
                *self.argv(shard, restart=bool(run.exit_codes)),
                stdout=asyncio.subprocess.PIPE,
                env=self.env,
            )
            self.processes[shard] = proc
            logger.info("live: shard {}/{} started (pid {})", shard, self.n, proc.pid)
            out, _ = await proc.communicate()
            code = proc.returncode if proc.returncode is not None else -1
            run.exit_codes.append(code)
            report = _last_json(out.decode(errors="replace"))
            if report is not None:
                run.report = report
            if code == 0 or self.stopping.is_set():
                logger.info("live: shard {}/{} ended (exit {})", shard, self.n, code)
                return
            if run.restarts >= self.max_restarts:
                logger.error(
                    "live: shard {}/{} died (exit {}) {} times; giving up",
                    shard,
                    self.n,
                    code,
                    run.restarts + 1,
                )
                return
            run.restarts += 1
            logger.warning(
                "live: shard {}/{} died (exit {}); restarting it (restart {} of at most {})",
                shard,
                self.n,
                code,
                run.restarts,
                self.max_restarts,
            )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.restart_delay_s)
            if self.stopping.is_set():
                return


def _last_json(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        with contextlib.suppress(ValueError):
            value = json.loads(line)
            if isinstance(value, dict):
                return value
    return None


def live_command() -> list[str]:
    """This interpreter running the ``tickwise`` CLI's ``live`` command."""
    return [sys.executable, "-m", "tickwise.cli.entry", "live"]


async def run_shards(supervisor: ShardSupervisor) -> ShardsReport:
    """Run ``supervisor`` with SIGINT/SIGTERM forwarded to the shards."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, supervisor.stop)
    return await supervisor.run()


class ShardLabelledCollector:
    """Every series of ``registry`` with a ``shard`` label added (one shard's /metrics endpoint)."""

    def __init__(self, registry: CollectorRegistry, shard: int) -> None:
        self.registry = registry
        self.shard = str(shard)

    def collect(self) -> Iterator[Metric]:
        for family in self.registry.collect():
            labelled = Metric(family.name, family.documentation, family.type, family.unit)
            for s in family.samples:
                labelled.add_sample(
                    s.name, {**s.labels, "shard": self.shard}, s.value, s.timestamp, s.exemplar
                )
            yield labelled


def shard_registry(registry: CollectorRegistry, shard: int) -> CollectorRegistry:
    """A registry that serves ``registry`` with ``shard="<shard>"`` on every series."""
    out = CollectorRegistry(auto_describe=False)
    out.register(ShardLabelledCollector(registry, shard))
    return out


@dataclass(frozen=True)
class ShardPlace:
    """What shard ``index`` of ``count`` changes in a live session's wiring."""

    index: int
    count: int

    def tokens(self, tokens: Sequence[int]) -> list[int]:
        try:
            return list(shard_tokens(tokens, self.index, self.count))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def metrics_port(self, base: int) -> int:
        return base + self.index if base else 0

    def status_path(self, data_dir: Path) -> Path:
        return data_dir / f"live-status-shard-{self.index}.json"

    def until_path(self, data_dir: Path) -> Path:
        return until_file(data_dir, self.index)


def parse_shard(text: str) -> ShardPlace:
    """``--shard I/N`` -> ShardPlace (ValueError when malformed)."""
    try:
        i, n = (int(p) for p in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard expects I/N (e.g. 0/3), got {text!r}") from None
    if not 1 <= n <= MAX_CONNECTIONS_PER_KEY or not 0 <= i < n:
        raise ValueError(f"--shard {text!r}: I must be 0..N-1 and N 1..{MAX_CONNECTIONS_PER_KEY}")
    return ShardPlace(i, n)


async def resolve_shard_count(settings: Settings, symbols: Sequence[str]) -> int:
    """``live.shards``, or (null) :func:`default_shard_count` for the universe and the cores this process
    may run on (its CPU affinity, as ``live.predict_threads`` and the fit pool count them)."""
    if settings.live.shards is not None:
        return settings.live.shards
    from tickwise.bootstrap.historical import open_historical
    from tickwise.pipelines.universe import select_universe

    async with open_historical(settings) as ctx:
        universe = await select_universe(ctx.instruments, symbols or settings.trading.symbols)
    return default_shard_count(len(universe), usable_cpus())
