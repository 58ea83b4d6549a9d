"""How the historical steps show progress: one bar per step.

Steps talk to the :class:`StepProgress` role; :class:`Reporter` draws rich progress bars on a console
(``quiet=True`` draws nothing, for tests and scripts).
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

__all__ = ["Reporter", "StepProgress", "TaskID"]


class StepProgress(Protocol):
    def task(self, description: str, total: float | None) -> TaskID: ...
    def update(
        self,
        task: TaskID,
        *,
        completed: float | None = None,
        total: float | None = None,
        advance: float | None = None,
        info: str | None = None,
    ) -> None: ...
    def log(self, message: str) -> None: ...


class Reporter:
    """Rich progress bars (one per step) on ``console``."""

    def __init__(self, console: Console | None = None, quiet: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self.progress = Progress(
            TextColumn("[bold]{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=self.console,
            disable=quiet,
        )

    def __enter__(self) -> Reporter:
        self.progress.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.progress.__exit__(exc_type, exc, tb)

    def task(self, description: str, total: float | None) -> TaskID:
        return self.progress.add_task(description, total=total, info="")

    def update(
        self,
        task: TaskID,
        *,
        completed: float | None = None,
        total: float | None = None,
        advance: float | None = None,
        info: str | None = None,
    ) -> None:
        if info is None:
            self.progress.update(task, completed=completed, total=total, advance=advance)
        else:
            self.progress.update(task, completed=completed, total=total, advance=advance, info=info)

    def log(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message)
