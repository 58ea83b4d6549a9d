"""A fold's meta-labels read only its score window's label rows: the window picked on the kept int64
times gives the very frame that making every label row into a frame and picking the window with
``WalkForwardStep.scores`` gives (NaT label times outside every window), for a last fold without an
end too."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tickwise.core.dataset import KeptLabels
from tickwise.core.walk_forward import WalkForwardStep
from tickwise.pipelines.historical.oos import _score_window_mask
from tickwise.pipelines.historical.train import labels_frame


def _kept(token: int, n: int) -> KeptLabels:
    times = pd.date_range("2026-01-05 03:45", periods=n, freq="1min", tz="UTC")
    frame = pd.DataFrame(
        {
            "time": times.repeat(2),
            "side": np.tile([-1, 1], n).astype(np.int8),
            "label": np.tile([1, -1, 0], 2 * n // 3 + 1)[: 2 * n].astype(np.int8),
            "t1": times.repeat(2) + pd.Timedelta(minutes=3),
            "ret": np.linspace(-0.01, 0.01, 2 * n) * token,
            "exit_price": np.linspace(99.0, 101.0, 2 * n),
            "weight": np.linspace(0.5, 1.5, 2 * n),
        }
    )
    frame.loc[[5, 6, 2 * n - 1], "time"] = pd.NaT  # a label without a time belongs to no window
    return KeptLabels.of_frame(frame)


@pytest.mark.parametrize("score_to", ["2026-01-05 05:00", None])
def test_a_score_window_s_labels_picked_on_kept_times_equal_those_picked_on_the_frame(
    score_to: str | None,
) -> None:
    labels = {7: _kept(7, 300), 9: _kept(9, 200)}
    step = WalkForwardStep(
        3,
        np.arange(4),
        pd.Timestamp("2026-01-05 03:45", tz="UTC"),
        pd.Timestamp("2026-01-05 04:00", tz="UTC"),
        pd.Timestamp("2026-01-05 04:10", tz="UTC"),
        None if score_to is None else pd.Timestamp(score_to, tz="UTC"),
    )
    got = labels_frame(labels, "5m", select_times=_score_window_mask(step))
    want = labels_frame(
        labels, "5m", lambda lab: step.scores(pd.DatetimeIndex(pd.to_datetime(lab["time"], utc=True)))
    )
    assert 0 < len(got) < 2 * 500 - 6
    pd.testing.assert_frame_equal(got, want)
    for column in ("time", "t1"):
        assert pd.DatetimeIndex(got[column]).asi8.tobytes() == pd.DatetimeIndex(want[column]).asi8.tobytes()
    for column in ("instrument_token", "side", "label", "ret", "exit_price", "weight"):
        assert got[column].to_numpy().tobytes() == want[column].to_numpy().tobytes()
    assert got["timeframe"].tolist() == want["timeframe"].tolist()
