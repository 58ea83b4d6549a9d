"""`bench live`'s resident-memory split: RssAnon, RssFile and PSS read from /proc, as the kernel states them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tickwise.bench.resident import ResidentMemory, parse_kb_fields, resident_now

linux_only = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")

STATUS = """Name:\tpython
VmRSS:\t  293752 kB
RssAnon:\t  152560 kB
RssFile:\t  141192 kB
RssShmem:\t       0 kB
VmSwap:\t       0 kB
"""


def test_kb_lines_are_read_as_mebibytes_and_other_lines_are_ignored() -> None:
    got = parse_kb_fields(STATUS, {"VmRSS": "rss", "RssAnon": "anon", "RssFile": "file"})
    assert got == {"rss": 286.9, "anon": 149.0, "file": 137.9}


def test_a_line_worded_differently_loses_only_its_own_field() -> None:
    text = "VmRSS:\t1024 kB\nRssAnon:\tlots\nRssFile:\t2048 pages\n"
    assert parse_kb_fields(text, {"VmRSS": "rss", "RssAnon": "anon", "RssFile": "file"}) == {"rss": 1.0}


def test_a_proc_directory_without_the_split_gives_no_reading(tmp_path: Path) -> None:
    assert resident_now(tmp_path) is None  # no status file at all (not Linux)
    (tmp_path / "status").write_text("VmRSS:\t1024 kB\n")  # a kernel before RssAnon/RssFile
    assert resident_now(tmp_path) is None


def test_a_kernel_without_smaps_rollup_still_gives_the_rss_split(tmp_path: Path) -> None:
    (tmp_path / "status").write_text(STATUS)
    got = resident_now(tmp_path)
    assert got == ResidentMemory(rss=286.9, anon=149.0, file=137.9, shmem=0.0)
    assert got is not None and got.pss is None


@linux_only
def test_this_process_rss_is_its_anonymous_file_and_shared_memory_pages() -> None:
    now = resident_now()
    assert now is not None
    assert abs(now.rss - (now.anon + now.file + now.shmem)) <= 0.2  # each rounded to 0.1 MB
    assert now.anon > 0 and now.file > 0
    if now.pss is not None:  # Linux >= 4.14
        assert 0 < now.pss <= now.rss + 0.1
        assert now.pss_anon is not None and now.pss_file is not None


@linux_only
def test_memory_the_process_fills_grows_its_anonymous_pages_not_its_file_pages() -> None:
    before = resident_now()
    block = np.ones(64 * 2**20 // 8)  # 64 MB, every page written
    after = resident_now()
    assert before is not None and after is not None
    growth = after.minus(before)
    assert growth["anon"] is not None and growth["anon"] >= 60
    assert growth["file"] is not None and abs(growth["file"]) < 16
    assert block.sum() == len(block)


def test_growth_is_none_where_an_earlier_reading_lacks_the_field() -> None:
    a = ResidentMemory(rss=10.0, anon=6.0, file=4.0, shmem=0.0)
    b = ResidentMemory(rss=15.5, anon=9.0, file=6.5, shmem=0.0, pss=12.0, pss_anon=9.0, pss_file=3.0)
    assert b.minus(a) == {
        "rss": 5.5,
        "anon": 3.0,
        "file": 2.5,
        "shmem": 0.0,
        "pss": None,
        "pss_anon": None,
        "pss_file": None,
    }
