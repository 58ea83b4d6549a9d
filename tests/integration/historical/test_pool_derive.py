"""``compute.scheduler: pool``: derive on a pool of spawned worker processes, each instrument's task
started as soon as its candles are checked, writes exactly the rows of the inline pass: roll-ups,
features, labels and candle flags, compared as text (float8 prints its shortest exact form, so equal
text is equal bits, NaN included)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from derived_tables import (
    backfill_1m,
    candle_flag_rows,
    derive_settings,
    derive_through_plan,
    derived_contents,
    forget_derived,
    forget_flags,
)

from tickwise.config import Settings
from tickwise.observability.hooks import RecordingHooks

pytestmark = [pytest.mark.db, pytest.mark.slow]


def _settings(tmp: Path, scheduler: str = "inline") -> Settings:
    # 6 sessions in chunks of 2: three chunks per instrument. Tighter checks than the defaults (which flag
    # about one bar in 4,000), so these 6,750 bars have flags, some of them excluded from the labels.
    return derive_settings(
        tmp,
        TICKWISE__COMPUTE__SCHEDULER=scheduler,
        TICKWISE__COMPUTE__WORKERS="2",
        TICKWISE__COMPUTE__CHUNK_SESSIONS="2",
        TICKWISE__DATA_QUALITY__RETURN_Z="4",
        TICKWISE__DATA_QUALITY__RANGE_IQR="4",
        TICKWISE__DATA_QUALITY__WICK_IQR="4",
    )


async def test_a_pool_of_two_processes_derives_the_rows_and_flags_of_the_inline_pass_bit_for_bit(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    inline = _settings(tmp_path)
    backfilled = await backfill_1m(inline, db_url, clean_db)
    await forget_flags(clean_db)

    heard_inline, heard_pool = RecordingHooks(), RecordingHooks()
    one = await derive_through_plan(inline, db_url, backfilled, checks=True, hooks=heard_inline)
    expected, flags = await derived_contents(clean_db), await candle_flag_rows(clean_db)
    assert one.feature_rows > 0 and one.label_rows > 0 and sum(one.rollup_rows.values()) > 0
    assert flags and heard_inline.of("on_candles_flagged")
    assert one.candle_flags is not None and one.candle_flags.excluded_bars > 0

    await forget_derived(clean_db)
    await forget_flags(clean_db)
    pooled = await derive_through_plan(
        _settings(tmp_path, "pool"), db_url, backfilled, checks=True, hooks=heard_pool
    )

    assert await derived_contents(clean_db) == expected
    assert await candle_flag_rows(clean_db) == flags
    assert (pooled.feature_rows, pooled.label_rows, pooled.derive_chunks) == (
        one.feature_rows,
        one.label_rows,
        one.derive_chunks,
    )
    assert pooled.rollup_rows == one.rollup_rows
    assert pooled.candle_flags is not None and one.candle_flags is not None
    assert vars(pooled.candle_flags) == vars(one.candle_flags)
    # the workers checked the candles; the hooks here heard every flag as when this process checks them
    assert heard_pool.of("on_candles_flagged") == heard_inline.of("on_candles_flagged")
    assert pooled.integrity is not None and one.integrity is not None
    assert vars(pooled.integrity) == vars(one.integrity)


async def test_a_pool_rerun_writes_nothing_new_as_the_inline_pass_does(
    clean_db: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    settings = _settings(tmp_path, "pool")
    backfilled = await backfill_1m(settings, db_url, clean_db)
    first = await derive_through_plan(settings, db_url, backfilled)
    assert first.feature_rows > 0 and first.label_rows > 0
    again = await derive_through_plan(settings, db_url, backfilled)
    assert (again.feature_rows, again.label_rows) == (0, 0)
