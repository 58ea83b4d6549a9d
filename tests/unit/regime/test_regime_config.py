"""Configuration of the regime layer and the regime filter, and the layer saved in the model bundle."""

from __future__ import annotations

import numpy as np
import pytest
from regime_data import regime_rows

from tickwise.bootstrap.historical import historical_options, regime_spec_of, signal_options_of
from tickwise.config import load_settings
from tickwise.core.model import REGIME_FILE, ModelArtifact, fit_booster, lgb_params
from tickwise.core.regime import RegimeLayer, RegimeSpec, fit_regime_layer, layer_of
from tickwise.core.signals import RegimeRule, StateRule, model_signal_generator
from tickwise.domain.errors import ConfigError, ModelError
from tickwise.pipelines.models import SignalOptions, signal_generator


def test_by_default_models_get_a_regime_layer_and_the_regime_filter_is_off() -> None:
    settings = load_settings(environ={}, environment="test")
    spec = regime_spec_of(settings)
    assert spec is not None and spec.n_states == 3
    assert historical_options(settings).regime == spec
    options = signal_options_of(settings)
    assert options.suppress_states == () and options.max_change_prob is None
    generator = model_signal_generator({}, threshold=0.55, kelly_fraction=0.25, max_position=0.1)
    assert generator.regime_features == ("natr_14",)


def test_the_regime_filter_settings_become_rules_on_the_layers_columns() -> None:
    env = {
        "TICKWISE__SIGNALS__REGIME_FILTER__SUPPRESS_STATES": "[2, 2, 1]",
        "TICKWISE__SIGNALS__REGIME_FILTER__MAX_CHANGE_PROB": "0.4",
        "TICKWISE__REGIMES__ENABLED": "false",
    }
    settings = load_settings(environ=env, environment="test")
    assert regime_spec_of(settings) is None
    options = signal_options_of(settings)
    generator = model_signal_generator(
        {},
        threshold=0.55,
        kelly_fraction=0.25,
        max_position=0.1,
        suppress_states=options.suppress_states,
        max_change_prob=options.max_change_prob,
    )
    rules = generator.regime[1:]
    assert rules == (StateRule("regime_state", (1, 2)), RegimeRule("cp_prob", high=0.4))
    values = np.array([0.0, 1.0, 2.0, np.nan])
    assert rules[0].allows(values).tolist() == [True, False, False, False]


def test_impossible_regime_settings_are_a_config_error() -> None:
    with pytest.raises(ConfigError):
        load_settings(
            environ={"TICKWISE__SIGNALS__REGIME_FILTER__MAX_CHANGE_PROB": "1.5"}, environment="test"
        )
    with pytest.raises(ConfigError):
        load_settings(
            environ={
                "TICKWISE__REGIMES__CHANGE_POINT__MAX_RUN_LENGTH": "10",
                "TICKWISE__REGIMES__CHANGE_POINT__CHANGE_WINDOW": "20",
            },
            environment="test",
        )


def _artifact(regime: dict[str, object] | None) -> ModelArtifact:
    x = np.random.default_rng(2).normal(size=(100, 1))
    params = lgb_params({"num_leaves": 4}, 1)
    boosters = {
        s: fit_booster(
            x, (x[:, 0] > 0).astype(np.int8), params=params, num_boost_round=2, feature_names=["ret_1"]
        )
        for s in (1, -1)
    }
    return ModelArtifact("m-r", boosters, ("ret_1",), "fs", regime=regime)


def test_the_regime_layer_round_trips_through_the_model_bundle_bit_for_bit() -> None:
    rows = regime_rows(sessions=3)
    layer = fit_regime_layer(rows, RegimeSpec(n_states=2, n_iter=10))
    files = _artifact(layer.to_dict()).to_files()
    assert REGIME_FILE in files
    loaded = layer_of(ModelArtifact.from_files(files).regime)
    assert isinstance(loaded, RegimeLayer)
    assert loaded.frame(rows).to_numpy().tobytes() == layer.frame(rows).to_numpy().tobytes()
    assert REGIME_FILE not in _artifact(None).to_files()
    assert ModelArtifact.from_files(_artifact(None).to_files()).regime is None
    broken = dict(files)
    del broken[REGIME_FILE]
    with pytest.raises(ModelError, match=r"regime\.json"):
        ModelArtifact.from_files(broken)


def test_a_filter_on_regimes_needs_a_model_with_a_regime_layer() -> None:
    from tickwise.core.predictor import Predictor
    from tickwise.core.signal_model import SignalModel

    options = SignalOptions(suppress_states=(2,))
    artifact = _artifact(None)
    with pytest.raises(ModelError, match="no regime layer"):
        SignalModel(Predictor(artifact), signal_generator(options, artifact), None)


def test_sighup_applies_a_changed_regime_filter_to_the_live_generator() -> None:
    from tickwise.bootstrap.alerts import make_alerts
    from tickwise.bootstrap.reload import reload_live_settings
    from tickwise.core.signals import SignalGenerator

    old = load_settings(environ={}, environment="test")
    new = load_settings(
        environ={"TICKWISE__SIGNALS__REGIME_FILTER__SUPPRESS_STATES": "[2]"}, environment="test"
    )
    applied: list[SignalGenerator] = []

    def make(s: object) -> SignalGenerator:
        options = signal_options_of(new if s is new else old)
        return model_signal_generator(
            {},
            threshold=options.threshold,
            kelly_fraction=options.kelly_fraction,
            max_position=options.max_position,
            suppress_states=options.suppress_states,
            max_change_prob=options.max_change_prob,
        )

    lines = reload_live_settings(
        old, new, set_generator=applied.append, make_generator=make, alerts=make_alerts(old)
    )
    assert len(applied) == 1 and StateRule("regime_state", (2,)) in applied[0].regime
    assert any(line.startswith("signals.regime_filter:") and line.endswith("(applied)") for line in lines)
    assert not any("restart" in line for line in lines)
