"""The training load on the real database: one instrument at a time into arrays, equal array for array
to the pandas load and merge it replaced (``reference_dataset``), with or without a window; the regime
layer fitted on the bars equals the one fitted on the frame; a run reads each timeframe once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import asyncpg
import numpy as np
import pandas as pd
import pytest
from historical_support import backfilled_and_derived, simulator_settings

from reference_dataset import assert_same_training_set, reference_load, reference_training_set
from tickwise.adapters.local.row_spill import ScratchRowSpill
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.training import candidate_features
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.regimes import (
    fit_bars_layer,
    fit_window_layer,
    with_bar_regime,
    with_regime,
)
from tickwise.pipelines.historical.train import KEPT_LABEL_COLUMNS, TrainingLoads, load_timeframe

pytestmark = [pytest.mark.db, pytest.mark.slow]


async def test_the_array_load_equals_the_pandas_load_and_merge_and_a_run_reads_each_timeframe_once(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    calc = FeatureCalculator()
    async with backfilled_and_derived(simulator_settings(tmp_path, backfill_days=8), db_url) as (ctx, _):
        regime_spec = ctx.options.regime
        assert regime_spec is not None
        whole = await load_timeframe(ctx, calc, Timeframe.M1, None, None)
        last = whole.last_candle
        # A window as `tickwise train --start --end` loads it: warm rows from start, labels ending by end.
        start, end = (last - timedelta(days=5)).to_pydatetime(), (last - timedelta(hours=20)).to_pydatetime()
        windows = [
            (None, None, whole),
            (start, end, await load_timeframe(ctx, calc, Timeframe.M1, start, end)),
        ]
        for lo, hi, data in windows:
            features, labels, closes = await reference_load(ctx, calc, Timeframe.M1, lo, hi)
            cut = min(pd.Timestamp(hi), data.last_candle) if hi is not None else data.last_candle
            names = candidate_features(features, [n for n in calc.names if n in features.columns])
            assert data.candidates == names and len(names) > 20
            expected = reference_training_set(
                features,
                labels,
                feature_set=calc.feature_set,
                timeframe="1m",
                end=cut.to_pydatetime(),
                feature_names=names,
                closes=closes,
            )
            got = data.training_set(cut.to_pydatetime())
            assert len(got) > 1000
            assert_same_training_set(got, expected)
            for key, series in closes.items():
                pd.testing.assert_series_equal(data.closes[key], series)
            pd.testing.assert_frame_equal(data.labels_frame(), labels.loc[:, list(KEPT_LABEL_COLUMNS)])
            # The bars are the frame's rows, sorted by (time, instrument), bit for bit.
            ordered = features.sort_values(["time", "instrument_token"], kind="mergesort")
            assert np.array_equal(data.bars.token, ordered["instrument_token"].to_numpy())
            assert np.array_equal(
                data.bars.take().view(np.int64),
                ordered.loc[:, list(data.bars.columns)].to_numpy().view(np.int64),
            )
            # The regime layer and its columns: fitted on the bars as on the frame.
            trained_from, trained_to = got.t0.min().to_pydatetime(), got.t1.max().to_pydatetime()
            layer = fit_bars_layer(data.bars, trained_from, trained_to, regime_spec)
            frame_layer = fit_window_layer(features, trained_from, trained_to, regime_spec)
            assert layer is not None and frame_layer is not None
            assert layer.to_dict() == frame_layer.to_dict()
            with_bars, _ = with_bar_regime(got, data.bars, layer)
            with_frame, _ = with_regime(expected, features, frame_layer)
            assert with_bars.feature_names == with_frame.feature_names
            assert np.array_equal(
                np.asarray(with_bars.x).view(np.int64), np.asarray(with_frame.x).view(np.int64)
            )

        # Spilled to disk, the same training set and bars, bit for bit.
        with ScratchRowSpill(tmp_path / "scratch") as spill:
            spilled = await load_timeframe(ctx, calc, Timeframe.M1, None, None, spill)
            files = [p.name for p in spill.directory.iterdir()]
            # one matrix file per instrument; a column file per kept label column (7) and closes column
            # (times, closes) of each instrument, and per key of the bars (token, times, source)
            assert sum(n.startswith("part-") for n in files) == len(spilled.labels)
            assert sum(n.startswith("column-") for n in files) == (7 + 2) * len(spilled.labels) + 3
            cut = whole.last_candle.to_pydatetime()
            assert_same_training_set(spilled.training_set(cut), whole.training_set(cut))
            assert np.array_equal(spilled.bars.take().view(np.int64), whole.bars.take().view(np.int64))
            window = np.arange(len(whole.bars))[100:900:3]
            pd.testing.assert_frame_equal(spilled.bars.frame(window), whole.bars.frame(window))

        loads = TrainingLoads()
        kept = await loads.get(ctx, calc, Timeframe.M1, None, None, keep=True)  # the champion candidate
        taken = await loads.get(ctx, calc, Timeframe.M1, None, None, keep=False)  # the OOS history
        assert taken is kept and loads.loads == 1
        again = await loads.get(ctx, calc, Timeframe.M1, None, None, keep=False)  # released: read anew
        assert again is not kept and loads.loads == 2
