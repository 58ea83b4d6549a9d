"""What one bar minute of ``tickwise bench live`` costs the engine thread, part by part.

A run's p99 is its slowest minute of five, so a slow minute has to be explained by its own numbers:
:class:`MinuteParts` charges each named part of the close -> signal path (the candle close, the
admission, the bank step, the predict, the signal step, the emit, the commit, the deferred rest) to the
bar minute it served, in this thread's CPU time and in this thread's page faults
(``getrusage(RUSAGE_THREAD)``: a first touch of fresh memory is a minor fault, paid in CPU) and
preemptions (involuntary context switches: another thread took the core, and the caches it left behind
are refilled on this thread's CPU time), and
counts what else happened inside the minute's window (from its candle close to the end of its deferred
rest): the cyclic collector's runs (``gc.callbacks``), numba compiles (the ``numba:compile`` event: a
kernel signature compiled lazily inside a minute) and new kernel signatures (a compile, or a load from
numba's cache, which fires no event). Parts nest where the calls do: ``signal_step``
includes ``predict``; the window's ``cpu_ms`` is all of it, the parts included.
"""

from __future__ import annotations

import gc
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from numba.core import event
from numba.core.dispatcher import Dispatcher

from tickwise.domain.time import IST

__all__ = ["MinuteParts", "loaded_kernels"]

P = ParamSpec("P")
R = TypeVar("R")

_RUSAGE_THREAD: int = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)


def _usage() -> tuple[int, int, int]:
    """This thread's minor faults, major faults and involuntary context switches (preemptions) so far."""
    usage = resource.getrusage(_RUSAGE_THREAD)
    return usage.ru_minflt, usage.ru_majflt, usage.ru_nivcsw


@dataclass
class _Minute:
    cpu_ms: dict[str, float] = field(default_factory=dict)
    minflt: dict[str, int] = field(default_factory=dict)
    preempted: dict[str, int] = field(default_factory=dict)
    window_cpu_s: float = 0.0
    window_minflt: int = 0
    window_majflt: int = 0
    window_preempted: int = 0
    gc_runs: int = 0
    gc_ms: float = 0.0
    compiles: list[str] = field(default_factory=list)
    compile_ms: float = 0.0
    rss_mb: float | None = None
    latency_thread_ms: float = 0.0
    new_signatures: int = 0


def loaded_kernels(prefix: str = "tickwise.") -> list[Dispatcher]:
    """The numba kernels (dispatchers) defined at module level in the imported modules under ``prefix``."""
    found: dict[int, Dispatcher] = {}
    for name, module in list(sys.modules.items()):
        if name.startswith(prefix) and module is not None:
            for value in vars(module).values():
                if isinstance(value, Dispatcher):
                    found[id(value)] = value
    return list(found.values())


def _signatures(kernels: list[Dispatcher]) -> int:
    return sum(len(kernel.overloads) for kernel in kernels)


class _CompileListener(event.Listener):
    """Outermost numba compiles, reported to the minute parts (nested compiles count in their caller)."""

    def __init__(self, owner: MinuteParts) -> None:
        self.owner = owner
        self.depth = 0
        self.began = 0.0

    def on_start(self, ev: event.Event) -> None:
        if self.depth == 0:
            self.began = time.thread_time()
        self.depth += 1

    def on_end(self, ev: event.Event) -> None:
        self.depth -= 1
        if self.depth == 0:
            func = ev.data["dispatcher"].py_func
            self.owner.compiled(f"{func.__module__}.{func.__qualname__}", time.thread_time() - self.began)


class MinuteParts:
    """Per bar minute: each part's thread CPU and page faults, and the window's collections and compiles.

    Use as a context manager (it listens to the collector and to numba while open); wrap each part with
    :meth:`timed`; call :meth:`step_began` at each consumer step's start; the candle close
    (:meth:`timed_close`) or the engine (:meth:`open`) opens a minute's window from its step's start,
    :meth:`end_window` closes it.
    """

    def __init__(self, rss_mb: Callable[[], float | None] | None = None) -> None:
        self.minutes: dict[datetime, _Minute] = {}
        self.compiled_outside: list[str] = []  # kernels compiled in the replay but in no minute's window
        self._current: _Minute | None = None
        self._window0: tuple[float, int, int, int] = (0.0, 0, 0, 0)
        self._step0: tuple[float, int, int, int] = (0.0, 0, 0, 0)
        self._gc_began = 0.0
        self._rss_mb = rss_mb
        self._listener = _CompileListener(self)
        self._kernels: list[Dispatcher] = []
        self._signatures0 = self._window_signatures0 = 0

    # -- the window ------------------------------------------------------------------------------
    def step_began(self) -> None:
        """A consumer step starts now: a minute whose bars it closes has its window from here."""
        self._step0 = (time.thread_time(), *_usage())
        self._signatures0 = _signatures(self._kernels)

    def open(self, minute: datetime) -> _Minute:
        """The bars of ``minute`` closed in the current step: its window runs from the step's start."""
        got = self.minutes.setdefault(minute, _Minute())
        if self._current is not got:
            self.end_window()
            self._current = got
            self._window0 = self._step0
            self._window_signatures0 = self._signatures0
        return got

    def end_window(self) -> None:
        """The current minute's window ends now (its deferred rest ran)."""
        got = self._current
        if got is None:
            return
        cpu0, min0, maj0, pre0 = self._window0
        minflt, majflt, preempted = _usage()
        got.window_cpu_s += time.thread_time() - cpu0
        got.window_minflt += minflt - min0
        got.window_majflt += majflt - maj0
        got.window_preempted += preempted - pre0
        got.new_signatures += _signatures(self._kernels) - self._window_signatures0
        if self._rss_mb is not None:
            got.rss_mb = self._rss_mb()
        self._current = None

    # -- parts -----------------------------------------------------------------------------------
    def _charge(self, got: _Minute, name: str, cpu0: float, usage0: tuple[int, int, int]) -> None:
        minflt, _, preempted = _usage()
        got.cpu_ms[name] = got.cpu_ms.get(name, 0.0) + 1000.0 * (time.thread_time() - cpu0)
        got.minflt[name] = got.minflt.get(name, 0) + minflt - usage0[0]
        got.preempted[name] = got.preempted.get(name, 0) + preempted - usage0[2]

    def timed(self, name: str, fn: Callable[P, R]) -> Callable[P, R]:
        """``fn``, its calls inside a minute's window charged to that minute as ``name``."""

        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            got = self._current
            if got is None:
                return fn(*args, **kwargs)
            cpu0, usage0 = time.thread_time(), _usage()
            try:
                return fn(*args, **kwargs)
            finally:
                self._charge(got, name, cpu0, usage0)

        return call

    def timed_async(self, name: str, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        """:meth:`timed` of a coroutine function (the writer's sinks): the awaited call is charged."""

        async def call(*args: P.args, **kwargs: P.kwargs) -> R:
            got = self._current
            if got is None:
                return await fn(*args, **kwargs)
            cpu0, usage0 = time.thread_time(), _usage()
            try:
                return await fn(*args, **kwargs)
            finally:
                self._charge(got, name, cpu0, usage0)

        return call

    def timed_close(
        self, fn: Callable[P, Any], minute_of: Callable[[Any], datetime | None]
    ) -> Callable[P, Any]:
        """A feed or clock close: one that returns bars opens their minute's window (``minute_of``) and
        is charged to it as ``close`` (a bar closed by its instrument's next tick has no close call)."""

        def call(*args: P.args, **kwargs: P.kwargs) -> Any:
            cpu0, usage0 = time.thread_time(), _usage()
            out = fn(*args, **kwargs)
            minute = minute_of(out)
            if minute is not None:
                self._charge(self.open(minute), "close", cpu0, usage0)
            return out

        return call

    # -- events ----------------------------------------------------------------------------------
    def latency(self, minute: datetime, thread_ms: float) -> None:
        """A signal of ``minute`` reached its sink ``thread_ms`` of thread CPU after its step began."""
        got = self.minutes.setdefault(minute, _Minute())
        got.latency_thread_ms = max(got.latency_thread_ms, thread_ms)

    def compiled(self, kernel: str, spent_s: float) -> None:
        """numba compiled ``kernel`` (a cache miss) in ``spent_s`` of this thread's CPU."""
        got = self._current
        if got is None:
            self.compiled_outside.append(kernel)
            return
        got.compiles.append(kernel)
        got.compile_ms += 1000.0 * spent_s

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        # Thread CPU, as the parts: a collection preempted on a loaded machine is not longer for it.
        if phase == "start":
            self._gc_began = time.thread_time()
            return
        got = self._current
        if got is not None:
            got.gc_runs += 1
            got.gc_ms += 1000.0 * (time.thread_time() - self._gc_began)

    def __enter__(self) -> MinuteParts:
        # A kernel signature loaded from numba's cache or compiled inside a minute is one more overload
        # of its dispatcher (a load fires no compile event): counted over every kernel imported now.
        self._kernels = loaded_kernels()
        gc.callbacks.append(self._on_gc)
        event.register("numba:compile", self._listener)  # type: ignore[no-untyped-call]
        return self

    def __exit__(self, *exc: object) -> None:
        self.end_window()
        gc.callbacks.remove(self._on_gc)
        event.unregister("numba:compile", self._listener)  # type: ignore[no-untyped-call]

    def report(self) -> list[dict[str, Any]]:
        """One small dict per minute, in order (milliseconds of thread CPU; fault counts)."""
        return [
            {
                "minute": f"{m.astimezone(IST):%H:%M}",
                "latency_thread_ms": round(got.latency_thread_ms, 2),
                "cpu_ms": round(1000.0 * got.window_cpu_s, 2),
                "parts_cpu_ms": {k: round(v, 2) for k, v in got.cpu_ms.items()},
                "minflt": got.window_minflt,
                "parts_minflt": dict(got.minflt),
                "majflt": got.window_majflt,
                "preempted": got.window_preempted,
                "parts_preempted": dict(got.preempted),
                "gc_runs": got.gc_runs,
                "gc_ms": round(got.gc_ms, 2),
                "compiles": list(got.compiles),
                "compile_ms": round(got.compile_ms, 2),
                "new_signatures": got.new_signatures,
                "rss_mb": got.rss_mb,
            }
            for m, got in sorted(self.minutes.items())
        ]
