"""Separate worlds without a database: which world the configuration names, where its data lives, and
the one line that refuses to mix two worlds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tickwise.bootstrap.world import (
    KITE_PORT_OFFSET,
    configured_world,
    mismatch_message,
    world_root,
    world_settings,
    worlds_on_disk,
)
from tickwise.config import Settings, load_settings
from tickwise.domain.world import World


def settings(tmp_path: Path, **env: str) -> Settings:
    base = {
        "TICKWISE__SYSTEM__DATA_DIR": str(tmp_path),
        "TICKWISE__LIVE__SPILL_DIR": str(tmp_path / "spill"),
        "TICKWISE__BROKER__TOKEN_FILE": str(tmp_path / "kite_token.json"),
    }
    return load_settings(environ={**base, **env})


def test_without_credentials_the_world_is_the_simulator_with_its_seed(tmp_path: Path) -> None:
    world = configured_world(settings(tmp_path, TICKWISE__BROKER__SIMULATOR__SEED="7"))
    assert world == World("simulator", seed=7)
    assert world.name == "simulator" and "seed 7" in world.describe()


def test_an_api_key_names_a_kite_world_and_a_stored_login_adds_its_user_id(tmp_path: Path) -> None:
    assert configured_world(settings(tmp_path, KITE_API_KEY="x")) == World("kite", api_key="x")
    now = datetime.now(UTC)
    (tmp_path / "kite_token.json").write_text(
        json.dumps(
            {"api_key": "x", "access_token": "t", "user_id": "AB1234", "login_time": now.isoformat(),
             "expires_at": (now + timedelta(hours=3)).isoformat(), "simulated": False}
        )
    )  # fmt: skip
    world = configured_world(settings(tmp_path))
    assert world == World("kite", api_key="x", user_id="AB1234")
    assert world.name == "kite-x" and "AB1234" in world.describe()


def test_the_simulator_keeps_the_data_dir_and_a_kite_world_gets_its_own_dir_and_port(tmp_path: Path) -> None:
    sim = settings(tmp_path)
    assert world_settings(sim) is sim
    kite = world_settings(settings(tmp_path, KITE_API_KEY="x"))
    assert Path(kite.system.data_dir) == tmp_path / "kite-x"
    assert Path(kite.live.spill_dir) == tmp_path / "kite-x" / "spill"
    assert kite.database.port == sim.database.port + KITE_PORT_OFFSET
    assert world_root(kite) == tmp_path
    assert world_settings(kite) is kite  # applying it twice changes nothing


def test_an_external_database_keeps_the_data_dir_and_relies_on_the_guard(tmp_path: Path) -> None:
    external = settings(tmp_path, KITE_API_KEY="x", DATABASE_URL="postgresql://u@127.0.0.1:1/db")
    assert world_settings(external) is external


def test_worlds_on_disk_lists_the_simulator_root_and_each_kite_directory(tmp_path: Path) -> None:
    (tmp_path / "pg").mkdir()
    (tmp_path / "pg" / "PG_VERSION").write_text("17")
    (tmp_path / "kite-x").mkdir()
    found = {w.name: w.has_database for w in worlds_on_disk(settings(tmp_path, KITE_API_KEY="x"))}
    assert found == {"simulator": True, "kite-x": False}


def test_worlds_of_one_market_match_and_others_do_not() -> None:
    assert World("simulator", seed=42).same_market(World("simulator", seed=42))
    assert not World("simulator", seed=42).same_market(World("simulator", seed=7))
    assert not World("simulator", seed=42).same_market(World("kite", api_key="x"))
    assert World("kite", api_key="x").same_market(World("kite", api_key="x", user_id="AB1234"))
    assert not World("kite", api_key="x", user_id="AB1").same_market(
        World("kite", api_key="x", user_id="CD2")
    )
    assert not World("kite", api_key="x").same_market(World("kite", api_key="y"))


def test_the_refusal_is_one_line_naming_both_worlds_and_the_fix() -> None:
    message = mismatch_message(World("simulator", seed=42), World("kite", api_key="x"), external=True)
    assert "\n" not in message
    assert "the simulator (seed 42)" in message and "api_key x" in message
    assert "DATABASE_URL" in message and "unset KITE_API_KEY" in message
    seed = mismatch_message(World("simulator", seed=42), World("simulator", seed=7), external=False)
    assert "TICKWISE__BROKER__SIMULATOR__SEED" in seed and "42" in seed
