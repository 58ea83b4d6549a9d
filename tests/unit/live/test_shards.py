"""Live shards: a deterministic split of the instruments, and a supervisor that restarts a dead shard."""

from __future__ import annotations

import asyncio
import random
import sys
from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest

from tickwise.bootstrap.shards import (
    ShardSupervisor,
    parse_shard,
    restart_until,
    shard_registry,
    until_file,
    write_until,
)
from tickwise.domain.errors import ConfigError
from tickwise.domain.time import IST
from tickwise.pipelines.live.shards import (
    MAX_DEFAULT_PREDICT_THREADS,
    assign_shards,
    default_predict_threads,
    default_shard_count,
    predict_threads,
    shard_tokens,
)


def test_instruments_split_the_same_way_whatever_order_they_come_in() -> None:
    tokens = list(range(1000, 10000, 1))[:9000]
    shuffled = tokens[:]
    random.Random(3).shuffle(shuffled)
    assert assign_shards(tokens, 3) == assign_shards(shuffled, 3)


def test_every_instrument_lands_in_exactly_one_shard_and_shards_are_balanced() -> None:
    tokens = [408065, 738561, 2953217, 341249, 1270529, 884737, 4267265]
    split = assign_shards(tokens, 3)
    assert sorted(t for s in split for t in s) == sorted(tokens)
    assert [len(s) for s in split] == [3, 2, 2]
    assert shard_tokens(tokens, 1, 3) == split[1]


def test_one_shard_owns_everything() -> None:
    assert assign_shards([3, 1, 2], 1) == ((1, 2, 3),)


def test_a_shard_never_holds_more_than_one_kite_connection_allows() -> None:
    assert max(len(s) for s in assign_shards(range(9000), 3)) == 3000
    with pytest.raises(ValueError, match="3000"):
        assign_shards(range(9001), 3)
    with pytest.raises(ValueError, match=r"1\.\.3"):
        assign_shards(range(10), 4)


def test_the_default_is_one_shard_per_core_capped_at_three_and_one_for_a_small_universe() -> None:
    assert default_shard_count(11, cpus=8) == 1
    assert default_shard_count(2500, cpus=2) == 2
    assert default_shard_count(2500, cpus=16) == 3
    assert default_shard_count(9000, cpus=2) == 3  # three connections are needed, whatever the cores
    assert default_shard_count(3500, cpus=1) == 2


def test_shard_option_parses_and_refuses_nonsense() -> None:
    place = parse_shard("2/3")
    assert (place.index, place.count) == (2, 3)
    assert place.metrics_port(9108) == 9110 and place.metrics_port(0) == 0
    for bad in ("3/3", "1", "a/b", "0/4"):
        with pytest.raises(ValueError):
            parse_shard(bad)
    with pytest.raises(ConfigError, match="do not fit"):
        parse_shard("0/1").tokens(list(range(3001)))


def test_a_restarted_shard_runs_until_the_instant_its_first_run_resolved(tmp_path: Path) -> None:
    path = until_file(tmp_path, 1)
    assert restart_until(path, "+30m") == "+30m"  # no first run recorded: the original option
    write_until(path, datetime(2026, 1, 2, 9, 45, 30, tzinfo=IST))
    assert restart_until(path, "+30m") == "09:45:30"


def test_each_shards_metrics_carry_a_shard_label() -> None:
    registry = CollectorRegistry()
    Counter("tickwise_bars", "bars", ["timeframe"], registry=registry).labels("1m").inc(3)
    text = generate_latest(shard_registry(registry, 2)).decode()
    assert 'tickwise_bars_total{shard="2",timeframe="1m"} 3.0' in text


# A stand-in shard: the first run of shard 1 kills itself with SIGKILL; every other run prints a report.
SHARD = r"""
import json, os, signal, sys
args = sys.argv[1:]
shard = args[args.index("--shard") + 1]
marker = os.path.join(sys.argv[1], "died-" + shard.replace("/", "-"))
if shard.startswith("1/") and not os.path.exists(marker):
    open(marker, "w").close()
    os.kill(os.getpid(), signal.SIGKILL)
print("log line")
print(json.dumps({"bars": 10, "signals": 4, "until": args[args.index("--until") + 1] if "--until" in args else None}))
"""


def test_the_supervisor_restarts_a_shard_killed_with_sigkill_and_collects_every_report(
    tmp_path: Path,
) -> None:
    supervisor = ShardSupervisor(
        [sys.executable, "-c", SHARD, str(tmp_path)], 3, data_dir=tmp_path, until="09:35", restart_delay_s=0.0
    )
    report = asyncio.run(supervisor.run())
    assert [r.restarts for r in report.shards] == [0, 1, 0]
    assert report.shards[1].exit_codes == [-9, 0]
    assert report.ok and report.total("bars") == 30 and report.total("signals") == 12


DYING = "import sys; sys.exit(3)"


def test_the_supervisor_gives_up_on_a_shard_that_keeps_dying(tmp_path: Path) -> None:
    supervisor = ShardSupervisor(
        [sys.executable, "-c", DYING], 2, data_dir=tmp_path, until=None, max_restarts=2, restart_delay_s=0.0
    )
    report = asyncio.run(supervisor.run())
    assert [r.exit_codes for r in report.shards] == [[3, 3, 3], [3, 3, 3]]
    assert not report.ok


# A healthy shard that is slow to start and to finish (a loaded machine): it prints its report late.
SLOW = r"""
import json, sys, time
time.sleep(3.0)
print(json.dumps({"bars": 1, "signals": 1}))
"""


def test_the_supervisor_waits_for_a_slow_shard_and_restarts_only_the_dead_one(tmp_path: Path) -> None:
    # Shard 0 is slow but healthy, shard 1 dies once (SIGKILL): only shard 1 is restarted; the supervisor
    # has no start-up or heartbeat deadline that could count a slow shard as dead.
    script = (
        "import os, signal, sys\n"
        "args = sys.argv[1:]\n"
        "shard = args[args.index('--shard') + 1]\n"
        f"marker = os.path.join({str(tmp_path)!r}, 'died')\n"
        "if shard.startswith('1/') and not os.path.exists(marker):\n"
        "    open(marker, 'w').close()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "if shard.startswith('0/'):\n"
        + "".join("    " + line + "\n" for line in SLOW.strip().splitlines())
        + 'else:\n    print(\'{"bars": 2, "signals": 2}\')\n'
    )
    supervisor = ShardSupervisor(
        [sys.executable, "-c", script], 2, data_dir=tmp_path, until=None, restart_delay_s=0.0
    )
    report = asyncio.run(supervisor.run())
    assert [r.restarts for r in report.shards] == [0, 1]
    assert [r.exit_codes for r in report.shards] == [[0], [-9, 0]]
    assert report.ok and report.total("bars") == 3


def test_predict_threads_default_to_the_cores_a_shard_has_to_itself() -> None:
    assert default_predict_threads(shards=1, cpus=2) == 2
    assert default_predict_threads(shards=2, cpus=2) == 1
    assert default_predict_threads(shards=3, cpus=2) == 1  # 9,000 on 3 shards over 2 cores: no extra thread
    assert default_predict_threads(shards=1, cpus=1) == 1
    assert default_predict_threads(shards=1, cpus=64) == MAX_DEFAULT_PREDICT_THREADS
    assert default_predict_threads(shards=3, cpus=12) == 4
    assert predict_threads(3, shards=3) == 3  # live.predict_threads set: taken as it is
    assert 1 <= predict_threads(None, shards=1) <= MAX_DEFAULT_PREDICT_THREADS
