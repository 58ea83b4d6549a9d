"""SIGHUP in a live session: the signal threshold and alert routing change at once, the rest is named
as needing a restart, a broken configuration changes nothing. A real SIGHUP reaches the handler."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from tickwise.bootstrap.alerts import make_alerts
from tickwise.bootstrap.reload import SighupReloader, changed_keys, reload_live_settings
from tickwise.config import Settings, load_settings
from tickwise.core.signals import SignalGenerator
from tickwise.domain.errors import ConfigError


def settings(tmp_path: Path, **env: str) -> Settings:
    return load_settings(environ={"TICKWISE__SYSTEM__DATA_DIR": str(tmp_path), **env})


class GeneratorSlot:
    """Where the live signal step keeps its generator (``SignalStep.set_generator``)."""

    def __init__(self) -> None:
        self.generator: SignalGenerator | None = None

    def set(self, generator: SignalGenerator) -> None:
        self.generator = generator


def make_generator(s: Settings) -> SignalGenerator:
    mt = s.model_training
    return SignalGenerator(
        threshold=mt.signal_threshold, kelly_fraction=mt.kelly_fraction, max_position=mt.max_position
    )


def test_a_new_threshold_is_applied_and_a_database_change_needs_a_restart(tmp_path: Path) -> None:
    old = settings(tmp_path)
    new = settings(
        tmp_path,
        TICKWISE__MODEL_TRAINING__SIGNAL_THRESHOLD="0.7",
        TICKWISE__MONITORING__ALERTS__THROTTLE_S="5",
        TICKWISE__DATABASE__POOL_MAX_SIZE="3",
        TICKWISE__BACKTEST__DAILY_LOSS_LIMIT="0.05",
    )
    slot = GeneratorSlot()
    lines = reload_live_settings(
        old, new, set_generator=slot.set, make_generator=make_generator, alerts=make_alerts(old)
    )
    assert slot.generator is not None and slot.generator.threshold == 0.7
    assert "model_training.signal_threshold: 0.55 -> 0.7 (applied)" in lines
    assert any("throttle" in line and "(alerts)" in line for line in lines)
    assert any(line.startswith("database.pool_max_size changed: restart") for line in lines)
    assert any("backtest.daily_loss_limit" in line and "next `tickwise backtest`" in line for line in lines)


def test_nothing_changed_reports_nothing_and_keeps_the_generator(tmp_path: Path) -> None:
    slot = GeneratorSlot()
    s = settings(tmp_path)
    assert (
        reload_live_settings(
            s, s, set_generator=slot.set, make_generator=make_generator, alerts=make_alerts(s)
        )
        == []
    )
    assert slot.generator is None


def test_changed_keys_name_leaves_and_never_values(tmp_path: Path) -> None:
    old = settings(tmp_path)
    new = settings(tmp_path, KITE_API_SECRET="s3cret-value", KITE_API_KEY="k")
    keys = list(changed_keys(old.model_dump(), new.model_dump()))
    assert keys == ["broker.api_key", "broker.api_secret"]


def test_a_broken_configuration_on_sighup_keeps_the_running_settings(tmp_path: Path) -> None:
    old = settings(tmp_path)
    slot = GeneratorSlot()

    def broken() -> Settings:
        raise ConfigError("invalid configuration: model_training.signal_threshold = 2")

    reloader = SighupReloader(old, broken, lambda a, b: [])
    assert reloader() == [] and reloader.current is old and reloader.reloads == 0
    assert slot.generator is None


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this platform")
async def test_a_real_sighup_reloads_the_configuration_in_the_running_loop(tmp_path: Path) -> None:
    old = settings(tmp_path)
    new = settings(tmp_path, TICKWISE__MODEL_TRAINING__SIGNAL_THRESHOLD="0.65")
    slot = GeneratorSlot()
    alerts = make_alerts(old)
    done = asyncio.Event()

    def apply(a: Settings, b: Settings) -> list[str]:
        lines = reload_live_settings(
            a, b, set_generator=slot.set, make_generator=make_generator, alerts=alerts
        )
        done.set()
        return lines

    reloader = SighupReloader(old, lambda: new, apply)
    loop = asyncio.get_running_loop()
    assert reloader.install(loop)
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        await asyncio.wait_for(done.wait(), timeout=5)
    finally:
        SighupReloader.uninstall(loop)
    assert reloader.reloads == 1 and reloader.current is new
    assert slot.generator is not None and slot.generator.threshold == 0.65
