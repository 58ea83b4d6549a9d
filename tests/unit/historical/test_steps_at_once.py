"""``tickwise historical`` runs the champion candidate's training and the out-of-sample fold models at
once (``bootstrap.historical._both``): the first is started first, a failure of either cancels the other
and is raised as it was (the command names it), not as a task group."""

from __future__ import annotations

import asyncio

import pytest

from tickwise.bootstrap.historical import _both
from tickwise.domain.errors import ModelError


async def test_both_steps_run_at_once_the_first_started_first() -> None:
    order: list[str] = []
    gate = asyncio.Event()

    async def first() -> None:
        order.append("first starts")
        await gate.wait()  # waits for the second: they overlap
        order.append("first ends")

    async def second() -> None:
        order.append("second starts")
        gate.set()

    await _both(first(), second())
    assert order == ["first starts", "second starts", "first ends"]


async def test_without_a_first_step_the_second_runs_alone() -> None:
    ran: list[str] = []

    async def second() -> None:
        ran.append("second")

    await _both(None, second())
    assert ran == ["second"]


async def test_a_failing_step_cancels_the_other_and_its_own_error_is_raised() -> None:
    cancelled = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def failing() -> None:
        raise ModelError("no features and labels to train on")

    with pytest.raises(ModelError, match="no features and labels"):
        await _both(slow(), failing())
    assert cancelled.is_set()
