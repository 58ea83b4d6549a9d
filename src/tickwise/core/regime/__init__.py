"""Regimes: a Gaussian-HMM forward filter and Bayesian online change-point detection, one compiled
recursion shared by batch and live scoring (see ``layer.py`` and ``kernels.py``)."""

from tickwise.core.regime.layer import (
    REGIME_INPUTS,
    ChangePointSpec,
    GaussianHmm,
    RegimeLayer,
    RegimeSpec,
    RegimeState,
    fit_regime_layer,
    layer_of,
    session_day,
    session_days,
)

__all__ = [
    "REGIME_INPUTS",
    "ChangePointSpec",
    "GaussianHmm",
    "RegimeLayer",
    "RegimeSpec",
    "RegimeState",
    "fit_regime_layer",
    "layer_of",
    "session_day",
    "session_days",
]
