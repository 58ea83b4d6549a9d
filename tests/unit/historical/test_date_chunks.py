"""Date-range chunks of one instrument's history (issue 15): where the cuts fall, and the kept columns,
labels, closes and bars a load appends chunk by chunk, which read back as one whole-history read's
arrays, bit for bit; the chunked training load on in-memory ports, with a warm-up longer than a chunk."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fakes import InMemoryHistoricalContext
from tickwise.adapters.local.row_spill import ScratchRowSpill
from tickwise.core.dataset import (
    ArrayColumn,
    BarsBuilder,
    JoinedColumn,
    KeepColumn,
    KeptCloses,
    KeptLabels,
    joined,
)
from tickwise.core.features.calculator import FeatureCalculator
from tickwise.core.training import trainable_features
from tickwise.domain.calendar import NSE
from tickwise.domain.errors import ModelError
from tickwise.domain.instrument import Instrument
from tickwise.domain.time import IST
from tickwise.domain.timeframe import Timeframe
from tickwise.pipelines.historical.date_chunks import chunks_between, session_cuts
from tickwise.pipelines.historical.options import HistoricalOptions
from tickwise.pipelines.historical.train import TrainingData, load_timeframe

INFY = Instrument(408065, 1594, "INFY", "INFOSYS", "NSE", "NSE", "EQ", 0.05, 1)
TCS = Instrument(2953217, 11536, "TCS", "TATA CONSULTANCY", "NSE", "NSE", "EQ", 0.05, 1)
# Five trading days, Monday 2026-01-05 to Friday 2026-01-09, 375 one-minute bars each.
DAYS = [date(2026, 1, 5) + timedelta(days=i) for i in range(5)]


def _open(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 9, 15, tzinfo=IST)


def test_cuts_fall_at_midnight_ist_before_every_nth_session_strictly_inside_the_range() -> None:
    first, last = _open(date(2026, 1, 2)), _open(date(2026, 1, 16)) + timedelta(hours=6)
    days = NSE.trading_days(first.date(), last.date())
    assert len(days) == 10  # Friday 2 to Friday 16 January: weekends and 15 January (a holiday) out
    cuts = session_cuts(first, last, 3, NSE)
    assert cuts == [datetime.combine(d, datetime.min.time(), tzinfo=IST) for d in days[3::3]]
    chunks = chunks_between(first, last, 3, NSE, None, None)
    assert chunks == list(zip([None, *cuts], [*cuts, None], strict=True))
    # a range inside: its own sessions are counted, its bounds are the first chunk's start, the last's end
    start, end = (
        _open(date(2026, 1, 6)) + timedelta(minutes=17),
        _open(date(2026, 1, 13)) + timedelta(hours=2),
    )
    inside = chunks_between(first, last, 2, NSE, start, end)
    assert inside[0][0] == start and inside[-1][1] == end
    inner = [hi for _, hi in inside[:-1]]
    assert all(start < c < end and c.astimezone(IST).time() == datetime.min.time() for c in inner)
    assert [c.date() for c in inner] == [date(2026, 1, 8), date(2026, 1, 12)]
    # nothing stored, or one session per range: one chunk
    assert chunks_between(None, None, 2, NSE, start, end) == [(start, end)]
    assert chunks_between(first, last, 100, NSE, None, None) == [(None, None)]
    with pytest.raises(ValueError, match="at least one session"):
        session_cuts(first, last, 0, NSE)


def _keeps(tmp_path: Path) -> list[tuple[str, KeepColumn]]:
    spill = ScratchRowSpill(tmp_path / "spill")
    return [("memory", ArrayColumn), ("spilled", spill.keep_column)]


def test_a_joined_column_reads_as_the_concatenation_of_its_pieces(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    values = rng.normal(size=101)
    for _, keep in _keeps(tmp_path):
        pieces = [keep(values[a:b]) for a, b in ((0, 30), (30, 30), (30, 71), (71, 101))]
        column = JoinedColumn([pieces[0], JoinedColumn(pieces[1:3]), pieces[3]])
        assert len(column) == 101 and len(column.pieces) == 4  # nested joins are flattened
        for rows in (
            slice(None),
            slice(10, 20),
            slice(25, 80),
            slice(70, 200),
            slice(-5, None),
            slice(90, 10),
            slice(3, 99, 7),
            slice(None, None, -1),
        ):
            assert np.array_equal(column.read(rows), values[rows]), rows
        positions = rng.integers(-101, 101, size=60)
        assert np.array_equal(column.read(positions), values[positions])
        mask = rng.random(101) < 0.3
        assert np.array_equal(column.read(mask), values[mask])
        assert column.read(np.array([], dtype=np.int64)).dtype == np.float64
        with pytest.raises(IndexError):
            column.read(np.array([101]))
    one = ArrayColumn(values)
    assert joined([one]) is one
    with pytest.raises(ValueError, match="at least one piece"):
        JoinedColumn([])


def _labels(token: int, times: pd.DatetimeIndex) -> pd.DataFrame:
    rng = np.random.default_rng(token % 97)
    n = len(times)
    both = np.repeat(np.arange(n), 2)
    return pd.DataFrame(
        {
            "instrument_token": token,
            "timeframe": "1m",
            "time": times[both],
            "side": np.tile(np.array([-1, 1], dtype=np.int8), n),
            "label": rng.integers(-1, 2, size=2 * n).astype(np.int8),
            "t1": times[both] + pd.Timedelta(minutes=7),
            "ret": rng.normal(size=2 * n),
            "exit_price": 100 + rng.normal(size=2 * n),
            "weight": rng.random(2 * n),
        }
    )


def test_labels_and_closes_kept_chunk_by_chunk_read_as_the_whole_history_s(tmp_path: Path) -> None:
    times = pd.date_range("2026-01-05 03:45", periods=90, freq="1min", tz="UTC")
    whole = _labels(INFY.instrument_token, times)
    closes = pd.Series(np.linspace(100, 101, 90), index=pd.DatetimeIndex(times, name="time"))
    cuts = [(0, 20), (20, 20), (20, 61), (61, 90)]
    for _, keep in _keeps(tmp_path):
        expected = KeptLabels.of_frame(whole, keep)
        parts = [KeptLabels.of_frame(whole.iloc[2 * a : 2 * b], keep) for a, b in cuts]
        got = KeptLabels.joined(parts)
        pd.testing.assert_frame_equal(got.frame(), expected.frame(), check_exact=True)
        for name in got.columns:
            assert got.read(name).dtype == expected.read(name).dtype
        kept = KeptCloses(keep)
        for k, (a, b) in enumerate(cuts):
            (kept.add if k == 0 else kept.extend)((1, "1m"), closes.iloc[a:b])
        one = KeptCloses(keep)
        one.add((1, "1m"), closes)
        pd.testing.assert_series_equal(kept[(1, "1m")], one[(1, "1m")], check_exact=True)
        grid, whole_grid = kept.grid((1, "1m")), one.grid((1, "1m"))
        assert grid is not None and whole_grid is not None
        assert all(np.array_equal(a, b) for a, b in zip(grid, whole_grid, strict=True))
    with pytest.raises(ModelError, match="no kept labels"):
        KeptLabels.joined([])


def test_bars_added_as_chunk_parts_are_the_bars_of_one_part_per_instrument(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    spill = ScratchRowSpill(tmp_path / "bars")
    data = {}
    for token, offset in ((7, 0), (3, 30)):
        times = np.arange(200, dtype=np.int64) * 60_000_000_000 + offset * 60_000_000_000
        x = rng.normal(size=(200, 3))
        x[rng.random((200, 3)) < 0.1] = np.nan
        data[token] = (times, x)
    for spilled in (False, True):
        whole = BarsBuilder(["a", "b", "c"], *((spill.keep, spill.keep_column) if spilled else ()))
        chunked = BarsBuilder(["a", "b", "c"], *((spill.keep, spill.keep_column) if spilled else ()))
        for token, (times, x) in data.items():
            whole.add(token, times, x)
            parts = [chunked.keep_part(token, times[a:b], x[a:b]) for a, b in ((0, 55), (55, 56), (56, 200))]
            chunked.add_kept(token, parts)
        want, got = whole.build(), chunked.build()
        assert len(got.parts) == 6 and len(want.parts) == 2
        for name in ("token", "times", "source"):
            assert np.array_equal(got.key(name), want.key(name))
        assert np.array_equal(got.nan_counts, want.nan_counts)
        assert np.array_equal(got.take().view(np.int64), want.take().view(np.int64))
        rows = rng.integers(0, len(want), size=50)
        assert np.array_equal(
            got.take(rows, np.array([2, 0])), want.take(rows, np.array([2, 0])), equal_nan=True
        )
    spill.close()


class _LongWarmup(FeatureCalculator):
    """A calculator whose warm-up is longer than one session (a chunk of one session)."""

    @property
    def warmup(self) -> int:
        return 500


async def _context(chunk_sessions: int) -> InMemoryHistoricalContext:
    ctx = InMemoryHistoricalContext(
        options=HistoricalOptions(symbols=("INFY", "TCS"), chunk_sessions=chunk_sessions)
    )
    await ctx.instruments.upsert_many([INFY, TCS])
    calc = FeatureCalculator()
    names = trainable_features(list(calc.names))
    rng = np.random.default_rng(2)
    for ins in (INFY, TCS):
        token = ins.instrument_token
        times = pd.DatetimeIndex(
            [t for day in DAYS for t in pd.date_range(_open(day), periods=375, freq="1min")]
        ).tz_convert(UTC)
        features = pd.DataFrame(rng.normal(size=(len(times), len(names))), columns=names)
        features.insert(0, "time", times)
        features.insert(0, "timeframe", "1m")
        features.insert(0, "instrument_token", token)
        await ctx.features.add_frame(features, calc.feature_set)
        await ctx.labels.add_frame(_labels(token, times[:-10]))  # the last bars' labels not yet known
        close = 100 + np.cumsum(rng.normal(size=len(times)))
        candles = pd.DataFrame(
            {
                "instrument_token": token,
                "timeframe": "1m",
                "time": times,
                "open": close,
                "high": close + 0.5,
                "low": close - 0.5,
                "close": close,
                "volume": 100,
                "oi": 0,
                "source": "historical",
            }
        )
        await ctx.candles.add_frame(candles)
    return ctx


def _assert_same(got: TrainingData, want: TrainingData) -> None:
    for name in ("token", "times", "source"):
        assert np.array_equal(got.bars.key(name), want.bars.key(name))
    assert np.array_equal(got.bars.nan_counts, want.bars.nan_counts)
    assert np.array_equal(got.bars.take().view(np.int64), want.bars.take().view(np.int64))
    assert list(got.labels) == list(want.labels)
    for token, kept in got.labels.items():
        pd.testing.assert_frame_equal(kept.frame(), want.labels[token].frame(), check_exact=True)
    assert list(got.closes) == list(want.closes)
    for key in want.closes:
        pd.testing.assert_series_equal(got.closes[key], want.closes[key], check_exact=True)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (None, None),
        # start in the second session: the first session's 375 rows are counted, 125 more are warm-up
        (_open(DAYS[1]) + timedelta(minutes=40), _open(DAYS[4]) + timedelta(minutes=100)),
        # start before the warm-up ends: the warm-up decides where the rows begin
        (_open(DAYS[0]) + timedelta(minutes=30), None),
    ],
)
async def test_a_load_in_one_session_chunks_with_a_warm_up_longer_than_a_chunk_is_the_whole_load(
    tmp_path: Path, start: datetime | None, end: datetime | None
) -> None:
    calc = _LongWarmup()
    whole_ctx, chunked_ctx = await _context(1000), await _context(1)
    want = await load_timeframe(whole_ctx, calc, Timeframe.M1, start, end)
    got = await load_timeframe(chunked_ctx, calc, Timeframe.M1, start, end)
    _assert_same(got, want)
    assert len(got.bars.parts) > len(want.bars.parts) == 2
    first = pd.Timestamp(got.bars.times.min(), tz="UTC")
    assert first >= pd.Timestamp(_open(DAYS[1]) + timedelta(minutes=125))  # 500 rows of warm-up skipped
    with ScratchRowSpill(tmp_path / "load") as spill:
        _assert_same(await load_timeframe(chunked_ctx, calc, Timeframe.M1, start, end, spill), want)
