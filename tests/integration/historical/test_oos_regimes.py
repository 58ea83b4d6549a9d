"""Regimes in the out-of-sample history on the simulator: every fold model fits its regime HMM on its
own training window, trains on the regime columns, and `predict` (which starts the recursion at the
session's open) reproduces the fold's stored out-of-sample signals exactly."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pandas as pd
import pytest
from historical_support import derived_history, oos_settings

pytestmark = [pytest.mark.db, pytest.mark.slow]


async def test_fold_models_fit_their_regimes_on_their_window_and_predict_reproduces_their_signals(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    from tickwise.bootstrap.models import oos_options_of
    from tickwise.core.regime import layer_of
    from tickwise.domain.time import IST
    from tickwise.pipelines.historical.oos import write_oos_history
    from tickwise.pipelines.historical.predict import predict_signals
    from tickwise.pipelines.models import load_model

    settings = oos_settings(tmp_path, WALK_FORWARD__NUM_BOOST_ROUND="30", REGIMES__N_ITER="15")
    async with derived_history(settings, db_url) as ctx:
        outcome = await write_oos_history(ctx, oos_options_of(settings))
        assert len(outcome.folds) >= 2
        by_state = outcome.regimes["by_state"]
        assert isinstance(by_state, list) and {r["regime_state"] for r in by_state} & {0, 1, 2}
        assert outcome.regimes["filtered"] is None  # signals.regime_filter is off by default
        for fold in outcome.folds:
            artifact = await load_model(ctx, fold.model_version)
            layer = layer_of(artifact.regime)
            assert layer is not None, fold.model_version
            assert set(layer.columns) <= set(artifact.feature_names)
            # The HMM saw the training window's sessions only.
            assert layer.info["last_day"] <= str(fold.trained_to.astimezone(IST).date())
            assert layer.info["first_day"] >= str(fold.trained_from.astimezone(IST).date())
        assert (
            len({str(layer_of((await load_model(ctx, f.model_version)).regime)) for f in outcome.folds}) > 1
        )

        last = outcome.folds[-1]
        stored = await ctx.signals.read_frame(
            last.score_from, None, mode="historical", model_version=last.model_version
        )
        assert len(stored) > 100
        # `predict` over the fold's window (from its first scored bar, mid-session or not) rewrites the
        # same rows: every value must come out the same.
        await predict_signals(ctx, start=last.score_from, version=last.model_version)
        again = await ctx.signals.read_frame(
            last.score_from, None, mode="historical", model_version=last.model_version
        )
    key = ["instrument_token", "time"]
    cols = [*key, "direction", "confidence", *(["size"] if "size" in stored.columns else [])]
    stored = stored.sort_values(key).reset_index(drop=True)
    again = again.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(stored[cols], again[cols])
