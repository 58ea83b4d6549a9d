"""database.lifecycle settings -> the adapter's LifecyclePolicy, and the compression layouts (no I/O)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tickwise.adapters.timescale import lifecycle
from tickwise.adapters.timescale.schema import metadata
from tickwise.bootstrap.database import embedded_cluster, lifecycle_policy
from tickwise.config import Settings, load_settings, parse_age
from tickwise.domain.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("12h", timedelta(hours=12)),
        ("2d", timedelta(days=2)),
        ("4w", timedelta(weeks=4)),
        ("10y", timedelta(days=3650)),
    ],
)
def test_ages_are_written_as_hours_days_weeks_or_years(text: str, age: timedelta) -> None:
    assert parse_age(text) == age


@pytest.mark.parametrize("text", ["", "0d", "2 days", "3m", "-1d"])
def test_an_unreadable_age_is_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="positive age"):
        parse_age(text)


def test_the_default_policy_keeps_ticks_weeks_1m_a_year_and_60m_and_1d_ten_years() -> None:
    policy = lifecycle_policy(Settings())
    assert policy.ticks_retention == timedelta(weeks=4)
    assert policy.timeframe_retention["1m"] == timedelta(days=365)
    assert policy.timeframe_retention["60m"] == policy.timeframe_retention["1d"] == timedelta(days=3650)
    assert policy.bar_retention == timedelta(days=3650)
    assert set(policy.compress_after) == set(lifecycle.LIFECYCLE_TABLES)
    assert policy.run_jobs == "tickwise"
    assert policy == lifecycle.DEFAULT_POLICY


def test_lifecycle_settings_come_from_yaml_style_values() -> None:
    settings = Settings.model_validate(
        {
            "database": {
                "server_settings": {"timescaledb.license": "timescale", "jit": False},
                "bindir": "/opt/pg/bin",
                "lifecycle": {
                    "compress_after": {"ticks": "1d"},
                    "retention": {"ticks": "2w", "timeframes": {"1m": "6w", "1d": "20y"}},
                    "run_jobs": "timescaledb",
                },
            }
        }
    )
    policy = lifecycle_policy(settings)
    assert policy.compress_after == {"ticks": timedelta(days=1)}
    assert policy.ticks_retention == timedelta(weeks=2)
    assert policy.timeframe_retention == {"1m": timedelta(weeks=6), "1d": timedelta(days=7300)}
    assert policy.run_jobs == "timescaledb"
    cluster = embedded_cluster(settings)
    assert cluster.server_options == {"timescaledb.license": "timescale", "jit": "off"}
    assert str(cluster.bindir) == "/opt/pg/bin"


def test_compressing_an_unknown_table_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown table"):
        Settings.model_validate({"database": {"lifecycle": {"compress_after": {"models": "1d"}}}})


def test_a_bad_age_in_the_config_files_is_a_config_error_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("database:\n  lifecycle:\n    retention:\n      ticks: soon\n")
    with pytest.raises(ConfigError, match=r"database\.lifecycle\.retention\.ticks"):
        load_settings(tmp_path, environ={})


def test_every_unique_key_column_is_a_segmentby_or_orderby_column() -> None:
    # Otherwise an ON CONFLICT upsert into a compressed chunk cannot find its segment (TimescaleDB warns).
    for table, layout in lifecycle.COMPRESSION.items():
        used = {c.split()[0] for c in (*layout.segmentby, *layout.orderby)}
        keys = [
            {col.name for col in constraint.columns}
            for constraint in metadata.tables[table].constraints
            if constraint.__class__.__name__ == "UniqueConstraint"
        ]
        assert keys, table
        for key in keys:
            assert key <= used, (table, key - used)


def test_ages_read_as_people_write_them() -> None:
    assert lifecycle.age_text(timedelta(weeks=4)) == "4 weeks"
    assert lifecycle.age_text(timedelta(days=30)) == "30 days"
    assert lifecycle.age_text(timedelta(days=3650)) == "3650 days"
    assert lifecycle.age_text(timedelta(hours=12)) == "12 hours"
