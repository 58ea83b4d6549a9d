"""The first half of every repository write: empty frames, duplicate keys, validation before any I/O."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from tickwise.adapters.timescale.bulk import Column
from tickwise.adapters.timescale.frames import BatchRejected, encode_frame, float_column

KEY = ("k",)


def _encode(frame: pd.DataFrame) -> Sequence[Column]:
    return [
        Column("k", "int8", frame["k"].to_numpy(np.int64)),
        Column("v", "float8", float_column("test", frame, "v", ("k",))),
    ]


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"k": [1, 2, 1], "v": [10.0, 20.0, 11.0]})


def test_an_empty_frame_encodes_to_nothing() -> None:
    assert encode_frame(_frame().iloc[:0], KEY, _encode, on_conflict="update") is None


def test_an_updating_write_keeps_the_last_row_per_key() -> None:
    batch = encode_frame(_frame(), KEY, _encode, on_conflict="update")
    assert batch is not None and batch.n == 2
    assert dict(zip(batch.columns[0].values.tolist(), batch.columns[1].values.tolist(), strict=True)) == {
        1: 11.0,
        2: 20.0,
    }


def test_an_insert_only_write_keeps_duplicates_for_on_conflict_do_nothing_unless_asked() -> None:
    kept = encode_frame(_frame(), KEY, _encode, on_conflict="nothing")
    assert kept is not None and kept.n == 3
    deduped = encode_frame(_frame(), KEY, _encode, on_conflict="nothing", dedupe_always=True)
    assert deduped is not None and deduped.n == 2


def test_a_bad_value_rejects_the_whole_batch_while_encoding() -> None:
    frame = _frame()
    frame.loc[1, "v"] = np.inf
    with pytest.raises(BatchRejected, match="infinite"):
        encode_frame(frame, KEY, _encode, on_conflict="update")
