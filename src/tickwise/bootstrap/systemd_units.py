"""systemd units and timers that run tickwise unattended: live each trading day, historical nightly,
retention weekly.

``tickwise schedule --systemd`` renders them for this checkout; ``deploy/systemd/`` ships the same
units rendered for ``/opt/tickwise`` and a ``tickwise`` user (a test keeps the two identical).
Timers run in IST (``OnCalendar=... Asia/Kolkata``) whatever the server's time zone, and are
``Persistent=`` so a run missed while the machine was off happens at boot.

The live timer fires every day at 08:45 IST, not only on weekdays: ``live --wait`` exits 0 within a
second on a weekend or holiday, and firing daily also covers a configured Saturday or Muhurat
session (it sleeps until that session's own pre-open).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TIMEZONE = "Asia/Kolkata"


@dataclass(frozen=True, slots=True)
class UnitPlan:
    """Where tickwise lives on the target machine and how the jobs run."""

    root: Path  # the checkout (WorkingDirectory; config/ and .data/ are found from here)
    tickwise: Path  # the console script, e.g. <root>/.venv/bin/tickwise
    user: str | None = None  # system units: the account to run as (None: systemd's default)
    environment: str = "production"  # TICKWISE_ENV
    retention: str = "7d"  # `tickwise db retention --older-than`
    live_at: str = "08:45"  # IST; must be before the 09:00 pre-open
    historical_at: str = "19:00"  # IST, after the close and Kite's end-of-day data
    retention_at: str = "Sun 03:00"  # IST


def _service(plan: UnitPlan, description: str, command: str, extra: list[str]) -> str:
    lines = [
        "[Unit]",
        f"Description={description}",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        *extra,
        f"WorkingDirectory={plan.root}",
        f"Environment=TICKWISE_ENV={plan.environment}",
        # Kite credentials and DATABASE_URL, if any, go here (mode 0600); '-' keeps it optional.
        f"EnvironmentFile=-{plan.root}/.env",
        f"ExecStart={plan.tickwise} {command}",
    ]
    if plan.user:
        lines.insert(lines.index("[Service]") + 1, f"User={plan.user}")
    return "\n".join(lines) + "\n"


def _timer(description: str, on_calendar: str) -> str:
    return (
        "\n".join(
            [
                "[Unit]",
                f"Description={description}",
                "",
                "[Timer]",
                f"OnCalendar={on_calendar} {TIMEZONE}",
                "Persistent=true",
                "",
                "[Install]",
                "WantedBy=timers.target",
            ]
        )
        + "\n"
    )


def _calendar(at: str) -> str:
    """``"08:45"`` -> ``*-*-* 08:45:00``; ``"Sun 03:00"`` -> ``Sun *-*-* 03:00:00``."""
    *days, clock = at.split()
    return " ".join([*days, "*-*-*", f"{clock}:00"])


def render_units(plan: UnitPlan) -> dict[str, str]:
    """File name -> content of every unit and timer."""
    return {
        "tickwise-live.service": _service(
            plan,
            "tickwise live session of today (exits 0 on closed days and after the close)",
            "live --wait",
            [
                "Type=exec",
                # Failures (feed or database down beyond the built-in retries) are retried; a clean
                # exit 0 after the close or on a holiday is not.
                "Restart=on-failure",
                "RestartSec=60",
                # SIGTERM flushes the writer and spills what it cannot write: give it time.
                "TimeoutStopSec=120",
            ],
        ),
        "tickwise-live.timer": _timer("Start tickwise live before the NSE pre-open", _calendar(plan.live_at)),
        "tickwise-historical.service": _service(
            plan,
            "tickwise historical: new sessions, features, labels, training, signals",
            "historical",
            ["Type=oneshot", "TimeoutStartSec=6h"],
        ),
        "tickwise-historical.timer": _timer(
            "Nightly tickwise historical after the close", f"Mon..Fri {_calendar(plan.historical_at)}"
        ),
        "tickwise-retention.service": _service(
            plan,
            "tickwise retention: drop old tick chunks",
            f"db retention --older-than {plan.retention} --table ticks",
            ["Type=oneshot"],
        ),
        "tickwise-retention.timer": _timer("Weekly tickwise retention", _calendar(plan.retention_at)),
        # TimescaleDB's own scheduler fails its jobs on PostgreSQL 15.20 (docs/timescaledb.md): tickwise
        # runs the due compression, retention and refresh jobs itself.
        "tickwise-maintain.service": _service(
            plan,
            "tickwise maintain: run the due TimescaleDB lifecycle jobs",
            "db maintain",
            ["Type=oneshot"],
        ),
        "tickwise-maintain.timer": _timer("Hourly tickwise db maintain", "*-*-* *:05:00"),
    }


def write_units(plan: UnitPlan, out: Path) -> list[Path]:
    """Write every unit and timer into ``out`` (created); returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_units(plan).items():
        path = out / name
        path.write_text(text)
        written.append(path)
    return written
