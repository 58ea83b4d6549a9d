"""The in-memory label repository replaces a window's meta-labels like the Timescale one does."""

from __future__ import annotations

import pandas as pd

from fakes import InMemoryLabelRepository
from tickwise.domain.timeframe import Timeframe

T = pd.Timestamp("2026-03-02 03:45", tz="UTC")


def _labels() -> pd.DataFrame:
    times = T + pd.to_timedelta([0, 0, 1, 1, 2, 2], unit="min")
    return pd.DataFrame(
        {
            "instrument_token": 7,
            "timeframe": "1m",
            "time": times,
            "side": [1, -1] * 3,
            "ret": 0.01,
            "label": 1,
        }
    )


def _meta(rows: list[tuple[int, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "instrument_token": 7,
            "time": [T + pd.Timedelta(minutes=m) for m, _, _ in rows],
            "side": [s for _, s, _ in rows],
            "meta": [v for _, _, v in rows],
        }
    )


async def _stored(repo: InMemoryLabelRepository) -> list[tuple[int, int, int]]:
    frame = await repo.read_frame(7, Timeframe.M1)
    return [
        (int((t - T) / pd.Timedelta(minutes=1)), int(s), int(m))
        for t, s, m in zip(frame["time"], frame["side"], frame["meta"], strict=True)
        if m is not None and not pd.isna(m)
    ]


async def test_a_rescored_window_keeps_only_its_new_meta_labels_and_other_windows_are_untouched() -> None:
    repo = InMemoryLabelRepository()
    await repo.add_frame(_labels())
    start, end = T.to_pydatetime(), (T + pd.Timedelta(minutes=2)).to_pydatetime()
    assert await repo.replace_meta(Timeframe.M1, [7], start, end, _meta([(0, 1, 1), (1, -1, 0)])) == 2
    assert await repo.replace_meta(Timeframe.M1, [7], end, None, _meta([(2, 1, 1), (9, 1, 1)])) == 1
    assert await _stored(repo) == [(0, 1, 1), (1, -1, 0), (2, 1, 1)]
    assert await repo.replace_meta(Timeframe.M1, [7], start, end, _meta([(0, -1, 0)])) == 1
    assert await _stored(repo) == [(0, -1, 0), (2, 1, 1)]
