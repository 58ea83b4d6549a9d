"""The simulator in a child process, as `tickwise live` and `tickwise historical` run it without Kite.

    async with spawn_simulator(SimulatorConfig(rest_port=0, ws_port=0, speed=60.0)) as sim:
        rest_root, ws_root, now = sim.rest_url, sim.ws_url, sim.clock.now()

Why a process: in-process (:func:`run_simulator`) the simulator shares the event loop with the
pipeline, so every CPU-bound step of the pipeline (feature streams, model predictions, the replay of a
repair) holds back its WebSocket stream and heartbeats. The ticker's watchdog then sees a dead feed that
is only a busy process, the session repairs and rewinds, which blocks the loop longer, and so on. In its
own process the simulator behaves like the real, external Kite: it streams on time whatever the client
does. :func:`run_simulator` stays the in-process API for tests that reach into the simulator's state.

Protocol with the child (``python -m tickwise.adapters.kite.simulator.process CONFIG_JSON``):

* the config is the JSON of :class:`SimulatorConfig` (faults as their script entries; the NSE calendar);
* once both servers listen, the child writes one JSON line on stdout: the REST and WebSocket URLs and
  the anchor of its clock (simulated instant, ``time.monotonic()`` and speed). ``CLOCK_MONOTONIC`` is
  system-wide, so :class:`SimClock` rebuilt from the anchor in the parent reads exactly the child's time;
* the child serves until its stdin reaches end-of-file, which happens when the parent closes it or dies
  (even by SIGKILL: no orphaned simulator keeps the ports), or until SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, fields
from datetime import datetime

from tickwise.adapters.kite.simulator.clock import SimClock
from tickwise.adapters.kite.simulator.faults import Fault
from tickwise.adapters.kite.simulator.state import SimulatorConfig
from tickwise.domain.calendar import NSE
from tickwise.domain.errors import BrokerError

__all__ = ["SimulatorProcess", "config_from_json", "config_to_json", "spawn_simulator"]

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 5.0
_SKIPPED = ("calendar",)


def config_to_json(config: SimulatorConfig) -> str:
    """``config`` as the JSON the child reads (ValueError for a calendar other than NSE)."""
    if config.calendar is not NSE:
        raise ValueError("a simulator in a child process runs the NSE calendar only")
    values: dict[str, object] = {}
    for f in fields(config):
        if f.name in _SKIPPED:
            continue
        value = getattr(config, f.name)
        if f.name == "start" and value is not None:
            value = value.isoformat()
        elif f.name == "faults" and isinstance(value, list):
            value = [{"when": x.when, "action": x.action, "args": list(x.args)} for x in value]
        values[f.name] = value
    return json.dumps(values)


def config_from_json(text: str) -> SimulatorConfig:
    """The inverse of :func:`config_to_json`."""
    values = json.loads(text)
    if values.get("start") is not None:
        values["start"] = datetime.fromisoformat(values["start"])
    faults = values.get("faults")
    if isinstance(faults, list):
        values["faults"] = [Fault(x["when"], x["action"], tuple(float(a) for a in x["args"])) for x in faults]
    return SimulatorConfig(**values)


@dataclass
class SimulatorProcess:
    """A simulator running in a child process: its URLs and a clock that reads the child's time."""

    config: SimulatorConfig
    rest_url: str
    ws_url: str
    clock: SimClock
    pid: int

    @property
    def api_key(self) -> str:
        return self.config.api_key

    def ws_url_for(self, access_token: str) -> str:
        return f"{self.ws_url}/?api_key={self.api_key}&access_token={access_token}"


@contextlib.asynccontextmanager
async def spawn_simulator(
    config: SimulatorConfig, *, ready_timeout_s: float = READY_TIMEOUT_S
) -> AsyncIterator[SimulatorProcess]:
    """Start the simulator in a child process, wait until it listens; stop it on exit."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        config_to_json(config),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=None,  # the child's errors go where ours go
        # Its own process group: a Ctrl-C in the terminal reaches only us, and the session can still
        # finish its repairs through the simulator's REST API before we stop it.
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), ready_timeout_s)
        except TimeoutError:
            raise BrokerError(f"the simulator process did not start within {ready_timeout_s:g}s") from None
        if not line:
            code = await proc.wait()
            raise BrokerError(
                f"the simulator process exited with code {code} before it was ready (see its error above)"
            )
        ready = json.loads(line)
        clock = SimClock(
            datetime.fromisoformat(ready["anchor_sim"]),
            float(ready["speed"]),
            anchor_real=float(ready["anchor_real"]),
        )
        yield SimulatorProcess(config, ready["rest_url"], ready["ws_url"], clock, proc.pid)
    finally:
        await _stop(proc)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        if proc.stdin is not None:
            with contextlib.suppress(Exception):
                proc.stdin.close()  # the child's cue to stop
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
    if proc.stdout is not None:
        with contextlib.suppress(Exception):
            await proc.stdout.read()


# -- the child -----------------------------------------------------------------------------------
async def _serve(config: SimulatorConfig) -> None:
    from tickwise.adapters.kite.simulator.server import run_simulator

    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, done.set)

    def watch_parent() -> None:
        # Blocks until the parent closes our stdin or dies; then stop.
        with contextlib.suppress(Exception):
            while sys.stdin.buffer.read(65536):
                pass
        loop.call_soon_threadsafe(done.set)

    async with run_simulator(config) as sim:
        anchor_sim, anchor_real = sim.clock.anchor
        ready = {
            "rest_url": sim.rest_url,
            "ws_url": sim.ws_url,
            "anchor_sim": anchor_sim.isoformat(),
            "anchor_real": anchor_real,
            "speed": sim.clock.speed,
            "pid": os.getpid(),
        }
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()
        # Nobody reads our stdout any more: anything printed later goes to stderr (the parent's).
        sys.stdout = sys.stderr
        threading.Thread(target=watch_parent, name="simulator-parent-watch", daemon=True).start()
        await done.wait()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tickwise.adapters.kite.simulator.process CONFIG_JSON", file=sys.stderr)
        return 2
    config = config_from_json(args[0])
    began = time.monotonic()
    try:
        asyncio.run(_serve(config))
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        print(
            f"kite simulator process failed after {time.monotonic() - began:.1f}s: {type(exc).__name__}: {exc}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
