"""Out-of-sample history on the real database and the simulator: every historical signal written by
`tickwise historical` comes from a fold model that never saw its bar, its labels' ends or the embargo
after them; `tickwise predict` over a model's own window still works but marks the rows in_sample.

The tests share one first run of `tickwise historical` (``first_run``, on an emptied database) and run
in this file's order: the first two only read what it wrote (a rerun with the same settings writes
nothing), then a new refit schedule replaces fold models, and the last adds in-sample signals of the
champion that only it reads (they would be out-of-sample violations to the schedule test)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from historical_support import HistoricalRun, first_historical_run, simulator_settings

from tickwise.config import Settings

pytestmark = [pytest.mark.db, pytest.mark.slow]

OOS_VIOLATIONS = """
SELECT count(*) FROM signals s JOIN models m USING (model_version)
WHERE s.mode = 'historical'
  AND NOT (s.time > m.trained_to + make_interval(secs => (m.params->>'embargo_seconds')::float8))
"""


def _settings(tmp: Path, refit_every: int = 2) -> Settings:
    return simulator_settings(
        tmp,
        MODEL_TRAINING__TRIALS="1",
        MODEL_TRAINING__FOLDS="2",
        MODEL_TRAINING__NUM_BOOST_ROUND="20",
        WALK_FORWARD__MIN_TRAIN_SESSIONS="4",
        WALK_FORWARD__REFIT_EVERY_SESSIONS=str(refit_every),
        WALK_FORWARD__MIN_TRAIN_EVENTS="200",
        WALK_FORWARD__NUM_BOOST_ROUND="20",
    )


first_run = first_historical_run("oos-history", _settings)


async def test_tickwise_historical_writes_only_out_of_sample_signals_and_a_rerun_reuses_the_fold_models(
    first_run: HistoricalRun, pool: asyncpg.Pool, db_url: str
) -> None:
    from tickwise.bootstrap.historical import Reporter, run_historical

    settings, first = first_run.settings, first_run.summary
    quiet = Reporter(quiet=True)
    assert first.oos is not None and len(first.oos.folds) >= 2  # refits every 2 sessions after 4 warm ones
    assert first.oos.rows > 0 and not any(f.reused for f in first.oos.folds)
    assert 0.3 < first.oos.metrics["oos_auc"] < 0.8
    assert first.train is not None and first.train.status == "champion"  # the first model: nothing to beat
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM signals WHERE mode = 'historical'") == first.oos.rows
        assert await conn.fetchval(OOS_VIOLATIONS) == 0
        rows = await conn.fetch(
            "SELECT s.sample, m.status, count(*) AS n FROM signals s JOIN models m USING (model_version) GROUP BY 1, 2"
        )
        assert [(r["sample"], r["status"]) for r in rows] == [("oos", "fold")]
        # each bar is scored by exactly one fold model
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM (SELECT 1 FROM signals GROUP BY instrument_token, timeframe, time "
                "HAVING count(*) > 1) d"
            )
            == 0
        )
        folds = await conn.fetch(
            "SELECT model_version, trained_from, trained_to, mlflow_run_id FROM models WHERE status = 'fold'"
        )
        assert len(folds) == len(first.oos.folds)
        assert all(f["trained_to"] > f["trained_from"] and f["mlflow_run_id"] for f in folds)
        events = await conn.fetch("SELECT model_version, event FROM model_events ORDER BY time")
        assert {(r["model_version"], r["event"]) for r in events} >= {
            *((f["model_version"], "trained") for f in folds),
            (first.train.model_version, "trained"),
            (first.train.model_version, "promoted"),
        }
    with quiet:
        second = await run_historical(settings, quiet, url=db_url)
    assert second.oos is not None
    assert [f.model_version for f in second.oos.folds] == [f.model_version for f in first.oos.folds]
    assert all(f.reused for f in second.oos.folds)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM signals") == first.oos.rows


async def test_two_models_are_compared_only_on_bars_after_both_training_windows_plus_the_embargo(
    first_run: HistoricalRun, db_url: str
) -> None:
    from tickwise.bootstrap.historical import open_historical
    from tickwise.bootstrap.models import comparison_for, embargo_of
    from tickwise.core.promotion import PromotionRule

    settings, summary = first_run.settings, first_run.summary
    assert summary.oos is not None and len(summary.oos.folds) >= 2
    embargo = embargo_of(settings)
    async with open_historical(settings, url=db_url) as ctx:
        first = await ctx.models.get(summary.oos.folds[0].model_version)
        later = await ctx.models.get(summary.oos.folds[-2].model_version)
        champion = await ctx.models.champion()
        assert first and later and champion and first.trained_to and later.trained_to
        for rule in (PromotionRule(test="bootstrap", bootstrap_samples=500), PromotionRule(test="delong")):
            got = await comparison_for(ctx, rule)(later, first)
            assert got.result is not None and got.result.test == rule.test
            assert got.window_from == later.trained_to + embargo  # the later of the two windows
            assert got.days >= 1 and got.window_to is not None and got.window_to > got.window_from
            assert 0.0 <= got.result.p_value <= 1.0
        # the champion was trained on everything stored: no bar is out of sample for both
        nothing = await comparison_for(ctx, PromotionRule())(later, champion)
        assert nothing.result is None and nothing.days == 0


async def test_a_new_schedule_retires_the_fold_models_it_no_longer_has_and_keeps_one_row_per_bar(
    first_run: HistoricalRun, pool: asyncpg.Pool, db_url: str
) -> None:
    from tickwise.bootstrap.historical import Reporter, run_historical

    first = first_run.summary  # refit every 2 sessions
    quiet = Reporter(quiet=True)
    with quiet:
        second = await run_historical(_settings(first_run.tmp, refit_every=3), quiet, url=db_url)
    assert first.oos is not None and second.oos is not None
    old = {f.model_version for f in first.oos.folds}
    new = {f.model_version for f in second.oos.folds}
    superseded = old - new
    assert superseded, "a different refit cadence moves at least one cutoff"
    assert any("superseded fold models removed" in line for line in second.governance)
    async with pool.acquire() as conn:
        assert await conn.fetchval(OOS_VIOLATIONS) == 0
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM (SELECT 1 FROM signals WHERE mode = 'historical' "
                "GROUP BY instrument_token, timeframe, time HAVING count(*) > 1) d"
            )
            == 0
        )
        writers = {
            r[0]
            for r in await conn.fetch("SELECT DISTINCT model_version FROM signals WHERE mode = 'historical'")
        }
        assert writers <= new
        statuses = {
            r["model_version"]: r["status"]
            for r in await conn.fetch(
                "SELECT model_version, status FROM models WHERE model_version = ANY($1::text[])",
                list(superseded),
            )
        }
        assert set(statuses.values()) == {"retired"}
        retired_events = await conn.fetchval(
            "SELECT count(*) FROM model_events WHERE event = 'retired' AND model_version = ANY($1::text[])",
            list(superseded),
        )
        assert retired_events == len(superseded)


async def test_predict_over_the_models_own_window_works_but_marks_the_rows_in_sample(
    first_run: HistoricalRun, pool: asyncpg.Pool, db_url: str
) -> None:
    from tickwise.bootstrap.historical import Reporter, run_predict

    settings, summary = first_run.settings, first_run.summary
    assert summary.train is not None
    quiet = Reporter(quiet=True)
    with quiet:
        outcome = await run_predict(settings, quiet, version=summary.train.model_version, url=db_url)
    assert outcome.rows > 0 and outcome.in_sample == outcome.rows  # the champion trained on everything stored
    async with pool.acquire() as conn:
        got = await conn.fetch(
            "SELECT sample, count(*) AS n FROM signals WHERE model_version = $1 GROUP BY 1",
            summary.train.model_version,
        )
    assert [(r["sample"], r["n"]) for r in got] == [("in_sample", outcome.rows)]
