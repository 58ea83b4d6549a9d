"""Live challenger scoring: a challenger is scored on the champion's feature rows and its signals are
stored under its own model version, while the champion's signals, alerts and paper trades are its own.

The challenger here is the champion's own bundle under another version (``models.status =
'challenger'``): scoring the same features with the same boosters, it must give exactly the champion's
signal for every bar, which proves it was fed the very same feature row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pandas as pd
import pytest
import pytest_asyncio
from live_support import make_settings

from tickwise.bootstrap.historical import open_historical
from tickwise.bootstrap.live import LiveOptions, run_live
from tickwise.config import Settings
from tickwise.observability.hooks import NullHooks
from tickwise.pipelines.models import load_model

pytestmark = [pytest.mark.slow, pytest.mark.db]

CHALLENGER = "m-challenger-test"


@pytest_asyncio.fixture(loop_scope="session")
async def trained(clean_db: object, db_url: str, tmp_path: Path) -> AsyncIterator[Settings]:
    from tickwise.bootstrap.historical import Reporter, run_historical

    settings = make_settings(db_url, tmp_path)
    with Reporter(quiet=True) as reporter:
        await run_historical(settings, reporter, url=db_url)
    yield settings


async def test_a_challenger_is_scored_live_on_the_champions_features_under_its_own_version(
    trained: Settings, db_url: str
) -> None:
    settings = trained
    async with open_historical(settings, url=db_url) as ctx:
        champion = await ctx.models.champion()
        assert champion is not None
        artifact = await load_model(ctx, champion.model_version)
        twin = dataclasses.replace(artifact, version=CHALLENGER)
        path = await ctx.store.save(CHALLENGER, twin.to_files())
        await ctx.models.insert(
            dataclasses.replace(
                champion,
                model_version=CHALLENGER,
                status="challenger",
                artifact_path=path,
                mlflow_run_id=None,
                created_at=None,
            )
        )

    report = await run_live(
        settings,
        LiveOptions(until="+10m", speed=150, url=db_url, metrics=False, paper=True),
        hooks=NullHooks(),
    )
    assert report.ended_by == "until" and report.signals == report.bars > 0
    assert report.paper is not None

    async with open_historical(settings, url=db_url) as ctx:
        live = await ctx.signals.read_frame(mode="live")
        status = await ctx.models.get(CHALLENGER)
    assert status is not None and status.status == "challenger"
    mine = live[live["model_version"] == champion.model_version]
    theirs = live[live["model_version"] == CHALLENGER]
    assert len(mine) == report.signals and len(theirs) == len(mine)
    key = ["instrument_token", "time"]
    both = mine.merge(theirs, on=key, suffixes=("_champion", "_challenger"))
    assert len(both) == len(mine)
    pd.testing.assert_series_equal(
        both["direction_champion"], both["direction_challenger"], check_names=False
    )
    pd.testing.assert_series_equal(
        both["confidence_champion"], both["confidence_challenger"], check_names=False
    )
    # Only the champion's signals were paper-traded.
    assert report.paper["signals"] == int((mine["direction"] != 0).sum())
