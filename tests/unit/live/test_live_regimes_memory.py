"""What a live regime layer keeps of an instrument's history until its first bar (issue 14's memory).

The parity tests (``test_live_regime_parity.py``: a restart mid-session, at an open, a rewind) show the
values; these show that the history frame the engine was given is not what waits: the packed
:class:`StoredBars` (every value given back bit for bit) is, and the regime state it gives is the one
the frame gave.
"""

from __future__ import annotations

import gc
import weakref
from datetime import timedelta

import numpy as np
import pandas as pd

from tickwise.bench.features import synthetic_candles
from tickwise.bench.live import repository_shaped
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.regime import GaussianHmm, RegimeLayer
from tickwise.pipelines.live.regimes import LiveRegimes

LAYER = RegimeLayer(
    hmm=GaussianHmm(
        startprob=np.array([0.5, 0.3, 0.2]),
        transmat=np.array([[0.95, 0.04, 0.01], [0.03, 0.94, 0.03], [0.01, 0.05, 0.94]]),
        means=np.array([[0.0, -3.0], [0.1, -2.2], [-0.1, -1.5]]),
        variances=np.array([[1.0, 0.1], [2.0, 0.2], [4.0, 0.3]]),
    )
)


def test_a_primed_instrument_does_not_keep_the_history_frame_it_was_given() -> None:
    calc = FeatureCalculator()
    regimes = LiveRegimes(LAYER, calc.names)
    frame = repository_shaped(synthetic_candles(400, seed=3), 11)
    seen = weakref.ref(frame)
    regimes.prime(11, calc, frame)
    del frame
    gc.collect()
    assert seen() is None  # the repository frame (about 200 bytes a bar) is gone; its packed copy waits


def test_the_packed_history_gives_the_regime_columns_the_frame_gave() -> None:
    calc = FeatureCalculator()
    candles = synthetic_candles(1300, seed=5)  # warm (1,199 bars) and ends mid-session
    history, nxt = candles.iloc[:-1], candles.iloc[-1]
    bar_time = pd.Timestamp(nxt["time"]).to_pydatetime()
    rows = calc.compute(candles).loc[:, list(calc.names)].to_numpy(dtype=np.float64)[-1:]

    packed = LiveRegimes(LAYER, calc.names)
    packed.prime(7, calc, repository_shaped(history, 7))
    got = packed.extend([7], [bar_time], rows)

    # The oracle: the layer replayed over the frame's own features, then stepped by the next bar.
    feats = calc.compute(history)
    state = LAYER.replay(pd.DatetimeIndex(feats["time"]), feats.loc[:, list(LAYER.inputs)].to_numpy())
    want = LAYER.step(state, [bar_time], rows[:, [list(calc.names).index(n) for n in LAYER.inputs]])
    assert bar_time - pd.Timestamp(history["time"].iloc[-1]).to_pydatetime() == timedelta(minutes=1)
    assert np.array_equal(got[0, len(calc.names) :], want[0], equal_nan=True)
