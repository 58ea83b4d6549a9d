"""Set-up shared by the feature bank's tests: live bars from candle rows, two banks opened alike, a
thread pool that counts the blocks it steps, and the bytes of a bank's state."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from tickwise.core.features.bank import FeatureBank
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.domain.bar import Bar
from tickwise.domain.candle import Candle
from tickwise.domain.timeframe import Timeframe

T = TypeVar("T")


def live_bar(key: int, row: pd.Series, **change: object) -> Bar:
    """The live 1m :class:`Bar` of instrument ``key`` for a candle row, with ``change`` applied."""
    values: dict[str, object] = {
        "open": float(row["open"]),
        "high": float(row["high"]),
        "low": float(row["low"]),
        "close": float(row["close"]),
        "volume": int(row["volume"]),
        "time": pd.Timestamp(row["time"]).to_pydatetime(),
    }
    values.update(change)
    candle = Candle(key, Timeframe.M1, source="live", **values)  # type: ignore[arg-type]
    return Bar(candle, float(row["obi_5"]))


def twin_banks(
    calculator: FeatureCalculator, frames: dict[int, pd.DataFrame], live: int
) -> tuple[FeatureBank, FeatureBank]:
    """Two banks, each with a stream per frame opened on all but its last ``live`` rows."""
    banks = FeatureBank(calculator.layout), FeatureBank(calculator.layout)
    for k, f in frames.items():
        history = f.iloc[:-live].reset_index(drop=True)
        for bank in banks:
            bank.attach(k, calculator.open_stream(history))
    return banks


def live_row(frames: dict[int, pd.DataFrame], key: int, live: int, minute: int) -> pd.Series:
    """Row ``minute`` of the last ``live`` rows of ``key``'s frame (the live minutes)."""
    frame = frames[key]
    return frame.iloc[len(frame) - live + minute]


class CountingPool(ThreadPoolExecutor):
    """A real thread pool (the blocks run at once, GIL released) that counts the blocks handed to it."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers, thread_name_prefix="bank-test")
        self.blocks: list[int] = []  # rows of each block submitted, in order

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        self.blocks.append(int(args[0].shape[0]))  # the block's bank rows come first
        return super().submit(fn, *args, **kwargs)


def bank_state(bank: FeatureBank) -> bytes:
    """The bytes of every state array of ``bank``'s attached rows (``ist``, ``fst``, ``ring``, ``col``,
    ``fin_bars``, ``fin_count``)."""
    n = len(bank)
    arrays = (bank.ist, bank.fst, bank.ring, bank.col, bank.fin_bars, bank.fin_count)
    return b"".join(np.ascontiguousarray(a[:n]).tobytes() for a in arrays)
