"""Scripted fault injection for the simulator (``tickwise simulate --faults ...``).

Script format: entries separated by ``;`` or new lines, ``#`` starts a comment. Each entry is
``<when> <action> [args...]``:

``when``
    ``HH:MM[:SS]`` - the first time the simulated clock reaches that IST time of day (on or after the
    simulator's start); ``YYYY-MM-DDTHH:MM[:SS]`` - that simulated IST instant; ``+N`` / ``+Ns`` /
    ``+Nm`` - N simulated seconds / minutes after the start; ``now`` - at once.

``action`` (durations are **real** seconds, ``8`` or ``8s``, because client watchdogs run on real time)

==========================  ==========================================================================
``abort``                   drop every open WebSocket's TCP connection without a close frame
``close [CODE]``            close every WebSocket with CODE (1000, 1001, 1011, ...; default 1000)
``stall SECONDS``           send nothing at all (no data, no heartbeats) for SECONDS, TCP stays open;
                            the market data of that window is never sent (the client must backfill)
``delay SECONDS``           hold frames for SECONDS, then send them all late, in order
``malformed``               the next data frame announces one packet more than it carries
``unknown_length``          the next data frame carries an extra packet of unknown length (20 bytes)
``duplicate``               the next data frame carries every packet twice
``reorder``                 the next two data frames are sent in swapped order (out-of-order ticks)
``negative``                the next data frame carries an extra LTP packet with a negative price
``reject N [STATUS]``       refuse the next N WebSocket handshakes with STATUS (403, 429 or 500; 403)
``restart [SECONDS]``       close every WebSocket with 1012 and refuse upgrades (503) for SECONDS (2)
``rest STATUS [N]``         answer the next N REST requests (N default 1) with STATUS (429, 500, 502,
                            503), Kite error envelope (429 -> NetworkException, 5xx -> GeneralException)
``badprint KIND``           the 1-minute REST candle of every equity at that minute is a bad print:
                            ``spike``, ``zero_volume`` or ``stale`` (docs/data-quality.md); not at
                            09:15, which has no previous bar. Known from the start: history served
                            before the minute is reached already contains it (the market is a
                            function of the script, not of time)
==========================  ==========================================================================

Example: ``10:05 abort; 10:20 stall 8s; 11:00 reject 3 403; +90s rest 429 5; 11:30 badprint spike``.
A JSON list is accepted too: each item a string in the syntax above, or an object
``{"at": "10:05", "action": "reject", "args": [3, 403]}``.
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from tickwise.domain.time import IST

WS_ACTIONS = frozenset(
    {
        "abort",
        "close",
        "stall",
        "delay",
        "malformed",
        "unknown_length",
        "duplicate",
        "reorder",
        "negative",
        "restart",
    }
)
ACTIONS = WS_ACTIONS | {"reject", "rest", "badprint"}
# ``badprint``'s argument is a kind name, stored in Fault.args as its index here (args are numbers).
BAD_PRINT_KINDS = ("spike", "zero_volume", "stale")
_ARITY = {
    "abort": (0, 0),
    "close": (0, 1),
    "stall": (1, 1),
    "delay": (1, 1),
    "malformed": (0, 0),
    "unknown_length": (0, 0),
    "duplicate": (0, 0),
    "reorder": (0, 0),
    "negative": (0, 0),
    "reject": (1, 2),
    "restart": (0, 1),
    "rest": (1, 2),
    "badprint": (1, 1),
}


class FaultScriptError(ValueError):
    """A fault script that cannot be parsed; the message names the entry and the expected form."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted fault: ``when`` as written, resolved to ``at`` against the simulator start."""

    when: str
    action: str
    args: tuple[float, ...] = ()

    def arg(self, i: int, default: float) -> float:
        return self.args[i] if len(self.args) > i else default


def _number(text: str, entry: str) -> float:
    m = re.fullmatch(r"(-?\d+(?:\.\d+)?)(s|ms)?", text.strip())
    if not m:
        raise FaultScriptError(f"fault {entry!r}: {text!r} is not a number or duration (e.g. 8 or 8s)")
    value = float(m.group(1))
    return value / 1000 if m.group(2) == "ms" else value


def _parse_entry(text: str) -> Fault:
    parts = text.split()
    if len(parts) < 2:
        raise FaultScriptError(f"fault {text!r}: expected '<when> <action> [args]', e.g. '10:05 abort'")
    when, action, raw_args = parts[0], parts[1].lower(), parts[2:]
    if action not in ACTIONS:
        raise FaultScriptError(
            f"fault {text!r}: unknown action {action!r} (expected one of {sorted(ACTIONS)})"
        )
    lo, hi = _ARITY[action]
    if not lo <= len(raw_args) <= hi:
        raise FaultScriptError(f"fault {text!r}: {action} takes {lo}..{hi} arguments, got {len(raw_args)}")
    _resolve_check(when, text)
    if action == "badprint":
        kind = raw_args[0].lower()
        if kind not in BAD_PRINT_KINDS and not re.fullmatch(r"[0-2](?:\.0)?", kind):
            raise FaultScriptError(
                f"fault {text!r}: bad print kind {kind!r} (expected one of {list(BAD_PRINT_KINDS)})"
            )
        index = BAD_PRINT_KINDS.index(kind) if kind in BAD_PRINT_KINDS else int(float(kind))
        return Fault(when, action, (float(index),))
    return Fault(when, action, tuple(_number(a, text) for a in raw_args))


def _resolve_check(when: str, entry: str) -> None:
    if not re.fullmatch(
        r"now|\+\d+(?:\.\d+)?[sm]?|\d{1,2}:\d{2}(?::\d{2})?|\d{4}-\d{2}-\d{2}T\d{1,2}:\d{2}(?::\d{2})?", when
    ):
        raise FaultScriptError(
            f"fault {entry!r}: bad time {when!r} (expected HH:MM[:SS], YYYY-MM-DDTHH:MM, +Ns, +Nm or now)"
        )


def parse_faults(script: str) -> list[Fault]:
    """Parse a fault script (text or JSON list); raises :class:`FaultScriptError` with the bad entry."""
    text = script.strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FaultScriptError(f"fault script is not valid JSON: {exc}") from None
        faults = []
        for item in items:
            if isinstance(item, str):
                faults.append(_parse_entry(item))
            elif isinstance(item, dict) and "at" in item and "action" in item:
                args = " ".join(str(a) for a in item.get("args", []))
                faults.append(_parse_entry(f"{item['at']} {item['action']} {args}".strip()))
            else:
                raise FaultScriptError(f"fault entry {item!r}: expected a string or {{'at','action','args'}}")
        return faults
    entries = []
    for line in text.replace(";", "\n").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            entries.append(_parse_entry(line))
    return entries


def resolve_time(when: str, start: datetime) -> datetime:
    """The simulated instant ``when`` denotes for a simulator that started at ``start``."""
    start = start.astimezone(IST)
    if when == "now":
        return start
    if when.startswith("+"):
        unit = when[-1]
        value = float(when[1:-1] if unit in "sm" else when[1:])
        return start + timedelta(seconds=value * (60 if unit == "m" else 1))
    if "T" in when:
        return datetime.fromisoformat(when).replace(tzinfo=IST)
    hms = [int(x) for x in when.split(":")] + [0]
    at = datetime.combine(start.date(), time(hms[0], hms[1], hms[2]), tzinfo=IST)
    return at if at >= start else at + timedelta(days=1)


@dataclass
class FaultController:
    """Holds the scripted faults and the fault state the servers consult."""

    start: datetime
    pending: list[tuple[datetime, Fault]] = field(default_factory=list)
    handshake_rejects: deque[int] = field(default_factory=deque)
    rest_errors: deque[int] = field(default_factory=deque)
    refuse_until_real: float = 0.0
    fired: list[tuple[datetime, Fault]] = field(default_factory=list)
    ws_queue: deque[Fault] = field(default_factory=deque)

    @classmethod
    def from_script(cls, script: str | list[Fault] | None, start: datetime) -> FaultController:
        faults = parse_faults(script) if isinstance(script, str) else list(script or [])
        ctl = cls(start=start)
        for f in faults:
            ctl.schedule(f)
        return ctl

    def schedule(self, fault: Fault) -> None:
        self.pending.append((resolve_time(fault.when, self.start), fault))
        self.pending.sort(key=lambda item: item[0])

    def inject(self, action: str, *args: float) -> None:
        """Schedule a fault to fire at the next check (tests)."""
        self.pending.insert(0, (datetime.min.replace(tzinfo=IST), Fault("now", action, tuple(args))))

    def due(self, now: datetime) -> None:
        """Arm the faults whose time has come: handshake and REST faults here, WebSocket ones are queued
        in :attr:`ws_queue` for the WebSocket server to apply (see :meth:`take_ws_faults`)."""
        while self.pending and self.pending[0][0] <= now:
            at, fault = self.pending.pop(0)
            self.fired.append((at, fault))
            if fault.action == "badprint":
                continue  # already part of the market (see scripted_bad_prints); nothing to arm
            if fault.action == "reject":
                status = int(fault.arg(1, 403))
                self.handshake_rejects.extend([status] * int(fault.arg(0, 1)))
            elif fault.action == "rest":
                self.rest_errors.extend([int(fault.arg(0, 500))] * int(fault.arg(1, 1)))
            else:
                self.ws_queue.append(fault)

    def scripted_bad_prints(self) -> list[tuple[datetime, str]]:
        """The scripted ``badprint`` faults as (IST instant, kind), for the market to build in."""
        return [(at, BAD_PRINT_KINDS[int(f.arg(0, 0))]) for at, f in self.pending if f.action == "badprint"]

    def take_ws_faults(self, now: datetime) -> list[Fault]:
        self.due(now)
        taken = list(self.ws_queue)
        self.ws_queue.clear()
        return taken

    def next_handshake_reject(self) -> int | None:
        return self.handshake_rejects.popleft() if self.handshake_rejects else None

    def next_rest_error(self) -> int | None:
        return self.rest_errors.popleft() if self.rest_errors else None
