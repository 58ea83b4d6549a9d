"""The feature layout: every slot (feature or auxiliary input), its warm-up and how it is produced.

Slots are rows of one float64 matrix ``(n_slots, n_bars)``: the public features first (in ``names``
order), auxiliary values after them (price copies, log close, intermediate context values). Batch fills
all columns; live fills one column per bar with the same producers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tickwise.core.features import kernels
from tickwise.core.features.derived import OP_AXPY, OP_DIV, OP_POS, OP_SUBDIV, Derived
from tickwise.core.features.ffd import ffd_weights
from tickwise.core.features.spec import FeatureSpec
from tickwise.core.features.talib_catalog import ONE_MINUTE, TALIB_VERSION, TalibCall, context_calls

# Bump when a kernel's definition changes: it is part of the feature_set id.
ENGINE_VERSION = 1
INPUT_SLOTS = ("open", "high", "low", "close", "volume")


def _derived_one_minute() -> list[Derived]:
    return [
        Derived("ema_dist_20_atr_14", OP_SUBDIV, "close", "ema_20", "atr_14"),
        Derived("ema_dist_50_atr_14", OP_SUBDIV, "close", "ema_50", "atr_14"),
        Derived("ema_dist_200_atr_14", OP_SUBDIV, "close", "ema_200", "atr_14"),
        Derived("kama_dist_30_atr_14", OP_SUBDIV, "close", "kama_30", "atr_14"),
        Derived("sar_dist_002_02_atr_14", OP_SUBDIV, "close", "sar_002_02", "atr_14"),
        Derived("macd_hist_atr_12_26_9", OP_DIV, "macd_hist_12_26_9", "atr_14"),
        Derived("bb_width_20_2", OP_SUBDIV, "bb_upper_20_2", "bb_lower_20_2", "bb_middle_20_2"),
        Derived("bb_pctb_20_2", OP_POS, "close", "bb_lower_20_2", "bb_upper_20_2"),
        Derived("stddev_norm_20", OP_DIV, "stddev_20", "close"),
        Derived("volume_ratio_20", OP_DIV, "volume", "volume_sma_20"),
        Derived("range_atr_14", OP_SUBDIV, "high", "low", "atr_14"),
        Derived("body_atr_14", OP_SUBDIV, "close", "open", "atr_14"),
        Derived("vwap_upper_2", OP_AXPY, "vwap", "vwap_sd", k=2.0),
        Derived("vwap_lower_2", OP_AXPY, "vwap", "vwap_sd", k=-2.0),
        Derived("vwap_dist_atr_14", OP_SUBDIV, "close", "vwap", "atr_14"),
        Derived("vwap_sd_atr_14", OP_DIV, "vwap_sd", "atr_14"),
        Derived("kalman_dist_atr_14", OP_SUBDIV, "close", "kalman_price", "atr_14"),
        *_derived_ichimoku(),
    ]


def _derived_ichimoku() -> list[Derived]:
    """Ichimoku as distances of the close to each line in ATR(14) (the raw levels are aux slots)."""
    return [
        Derived("ichimoku_tenkan_dist_9_atr_14", OP_SUBDIV, "close", "ichimoku_tenkan_9", "atr_14"),
        Derived("ichimoku_kijun_dist_26_atr_14", OP_SUBDIV, "close", "ichimoku_kijun_26", "atr_14"),
        Derived("ichimoku_senkou_a_dist_9_26_atr_14", OP_SUBDIV, "close", "ichimoku_senkou_a_9_26", "atr_14"),
        Derived("ichimoku_senkou_b_dist_52_atr_14", OP_SUBDIV, "close", "ichimoku_senkou_b_52", "atr_14"),
        Derived("ichimoku_chikou_dist_26_atr_14", OP_SUBDIV, "close", "ichimoku_chikou_26", "atr_14"),
    ]


def _derived_context(tf: int) -> list[Derived]:
    s = f"_{tf}m"
    return [
        Derived(f"ema_dist_20_atr_14{s}", OP_SUBDIV, "close", f"ema_20{s}", f"atr_14{s}"),
        Derived(f"bb_pctb_20_2{s}", OP_POS, "close", f"bb_lower_20_2{s}", f"bb_upper_20_2{s}"),
    ]


# Context slots that only feed derived features (price levels of the context bars).
_CONTEXT_AUX = ("atr_14", "ema_20", "bb_upper_20_2", "bb_lower_20_2")


@dataclass(frozen=True)
class Layout:
    """Everything the engine needs to produce the slot matrix for one :class:`FeatureSpec`."""

    spec: FeatureSpec
    names: tuple[str, ...]
    slots: dict[str, int]
    warm: np.ndarray  # int64 per feature: first bar (from the anchor) that may be non-NaN
    talib_1m: tuple[TalibCall, ...]
    # (minutes, the context calls left to TA-Lib) per timeframe: none with the default catalog, whose
    # context indicators run in the step (kernels.NATIVE_CONTEXT, written through ``cslots``)
    context: tuple[tuple[int, tuple[TalibCall, ...]], ...]
    ops: np.ndarray  # int64 (n_ops, 5): op, dst, a, b, c
    consts: np.ndarray
    custom_names: tuple[str, ...]
    cslots: np.ndarray
    ffd_w: np.ndarray
    ring_size: int
    feature_set: str

    @property
    def n_slots(self) -> int:
        return len(self.slots)

    @property
    def warmup(self) -> int:
        return int(self.warm.max())

    def warm_of(self, name: str) -> int:
        return int(self.warm[self.slots[name]])

    @property
    def context_talib(self) -> bool:
        """Whether any context call is left to TA-Lib (handles live, the Function API in batch)."""
        return any(calls for _, calls in self.context)


def custom_names(spec: FeatureSpec) -> tuple[str, ...]:
    """Slot names written by :func:`kernels.step`, in its output order."""
    fixed = (
        "vwap",
        "vwap_sd",
        "kalman_price",
        "kalman_slope",
        f"hurst_{spec.hurst_window}",
        "session_minute",
        "logclose",
        f"ffd_{round(spec.ffd_d * 100)}",
    )
    z = tuple(f"zscore_close_{w}" for w in spec.zscore_windows)
    z += (f"zscore_ret_{spec.zscore_short}", f"zscore_volume_{spec.zscore_short}")
    rets = tuple(f"ret_{h}" for h in spec.return_horizons)
    lags = tuple(f"ret_1_lag_{k}" for k in spec.return_lags)
    native = tuple(name for name, _, _ in kernels.NATIVE_TALIB)
    return fixed + z + rets + lags + native + kernels.ICHIMOKU_NAMES


def _split_native(calls: tuple[TalibCall, ...]) -> tuple[TalibCall, ...]:
    """The 1m calls left to TA-Lib: those not re-implemented in :func:`kernels.step`.

    A native output must match its catalog call exactly (function, parameters, all outputs native), so
    the catalog stays the one description of every TA-Lib feature.
    """
    by_name = {name: call for call in calls for name, _ in call.outputs}
    for name, func, params in kernels.NATIVE_TALIB:
        call = by_name.get(name)
        if call is None or call.func != func or call.params != params:
            raise ValueError(f"native indicator {name} ({func} {params}) does not match the catalog: {call}")
    native = {name for name, _, _ in kernels.NATIVE_TALIB}
    partial = [c for c in calls if 0 < sum(n in native for n, _ in c.outputs) < len(c.outputs)]
    if partial:
        raise ValueError(f"a TA-Lib call must be native for all its outputs or none: {partial}")
    return tuple(c for c in calls if c.outputs[0][0] not in native)


def context_native_names(tf: int) -> tuple[str, ...]:
    """The slot names of the context indicators the step computes for the ``tf``-minute bars, in the
    order it writes them (``cslots`` after the Ichimoku levels)."""
    return tuple(f"{name}_{tf}m" for name, _, _ in kernels.NATIVE_CONTEXT)


def _split_native_context(tf: int, calls: tuple[TalibCall, ...]) -> tuple[TalibCall, ...]:
    """The ``tf``-minute context calls left to TA-Lib: those not computed by the step.

    As for the 1m calls, a native output must match its catalog call (function and parameters) and a
    call is native for all its outputs or none; any other call (a custom catalog's) stays a TA-Lib call.
    """
    by_name = {name: call for call in calls for name, _ in call.outputs}
    for (_, func, params), slot in zip(kernels.NATIVE_CONTEXT, context_native_names(tf), strict=True):
        call = by_name.get(slot)
        if call is None or call.func != func or call.params != params:
            raise ValueError(
                f"native context indicator {slot} ({func} {params}) does not match the catalog: {call}"
            )
    native = set(context_native_names(tf))
    partial = [c for c in calls if 0 < sum(n in native for n, _ in c.outputs) < len(c.outputs)]
    if partial:
        raise ValueError(f"a context TA-Lib call must be native for all its outputs or none: {partial}")
    return tuple(c for c in calls if c.outputs[0][0] not in native)


def _custom_warm(spec: FeatureSpec, n_ffd: int) -> dict[str, int]:
    warm = {
        "vwap": 0,
        "vwap_sd": 0,
        "kalman_price": spec.kalman_warmup,
        "kalman_slope": spec.kalman_warmup,
        f"hurst_{spec.hurst_window}": spec.hurst_window + max(spec.hurst_lags) - 1,
        "session_minute": 0,
        "logclose": 0,
        f"ffd_{round(spec.ffd_d * 100)}": n_ffd - 1,
        f"zscore_ret_{spec.zscore_short}": spec.zscore_short,
        f"zscore_volume_{spec.zscore_short}": spec.zscore_short - 1,
    }
    warm.update({f"zscore_close_{w}": w - 1 for w in spec.zscore_windows})
    warm.update({f"ret_{h}": h for h in spec.return_horizons})
    warm.update({f"ret_1_lag_{k}": k + 1 for k in spec.return_lags})
    warm.update(kernels.ICHIMOKU_WARM)
    return warm


def build_layout(
    spec: FeatureSpec,
    one_minute: tuple[TalibCall, ...] = ONE_MINUTE,
    context_catalog: Callable[[int], tuple[TalibCall, ...]] = context_calls,
) -> Layout:
    """Resolve names, slots, warm-ups, derived ops and the feature_set id for ``spec``.

    ``one_minute`` / ``context_catalog``: the TA-Lib catalog (the default one unless a test or a
    research build adds calls); calls without a compiled replica run through TA-Lib.
    """
    warm: dict[str, int] = dict.fromkeys(INPUT_SLOTS, 0)
    warm["obi_5"] = 0
    features: list[str] = []
    aux: list[str] = list(INPUT_SLOTS)

    for call in one_minute:
        lb = call.lookback()
        for name, _ in call.outputs:
            warm[name] = lb
            features.append(name)

    ffd_w = ffd_weights(spec.ffd_d, spec.ffd_tau)
    cnames = custom_names(spec)
    cwarm = _custom_warm(spec, len(ffd_w))
    warm.update(cwarm)
    aux_custom = {"vwap_sd", "logclose", *kernels.ICHIMOKU_NAMES}
    features.append("obi_5")
    native = {name for name, _, _ in kernels.NATIVE_TALIB}
    features.extend(n for n in cnames if n not in aux_custom and n not in native)
    aux.extend(n for n in cnames if n in aux_custom)

    context: list[tuple[int, tuple[TalibCall, ...]]] = []
    derived = _derived_one_minute()
    for tf in spec.timeframes:
        calls = context_catalog(tf)
        context.append((tf, calls))
        for call in calls:
            lb = call.lookback()
            for name, _ in call.outputs:
                # A context bar closes at the latest on the last 1m bar of its bucket, so bar k of the
                # context series is usable from 1m bar (k + 1) * tf - 1 (fewer with partial buckets).
                warm[name] = (lb + 1) * tf - 1
                if name.removesuffix(f"_{tf}m") in _CONTEXT_AUX:
                    aux.append(name)
                else:
                    features.append(name)
        derived.extend(_derived_context(tf))

    for d in derived:
        warm[d.name] = max(warm[i] for i in d.inputs)
        if d.name not in ("vwap_upper_2", "vwap_lower_2"):
            features.append(d.name)
        else:
            features.insert(features.index("vwap") + 1, d.name)

    names = tuple(features)
    order = list(names) + aux
    if len(set(order)) != len(order):
        raise ValueError("duplicate slot names in the feature layout")
    slots = {name: i for i, name in enumerate(order)}
    ops = np.array(
        [[d.op, slots[d.name], slots[d.a], slots[d.b], slots[d.c] if d.c else slots[d.b]] for d in derived],
        dtype=np.int64,
    ).reshape(-1, 5)
    consts = np.array([d.k for d in derived], dtype=np.float64)
    warm_arr = np.array([warm[n] for n in names], dtype=np.int64)
    need = max(len(ffd_w), spec.hurst_window + max(spec.hurst_lags) + 1, *spec.zscore_windows)
    need = max(need, spec.zscore_short + 1, max(spec.return_horizons) + 1, max(spec.return_lags) + 2)
    need = max(need, 32)  # the native TA-Lib windows (AROON 15, MACD fast seed 12) read the ring too
    need = max(need, kernels.ICHIMOKU_RING)
    ring_size = 1 << int(need).bit_length()

    payload = json.dumps(
        {
            "engine": ENGINE_VERSION,
            "spec": spec.to_dict(),
            "names": names,
            "talib": TALIB_VERSION,
            "calls": [repr(c) for c in one_minute] + [repr(c) for _, cs in context for c in cs],
            "derived": [repr(d) for d in derived],
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(payload.encode()).hexdigest()[:8]
    return Layout(
        spec=spec,
        names=names,
        slots=slots,
        warm=warm_arr,
        talib_1m=_split_native(one_minute),
        context=tuple((tf, _split_native_context(tf, calls)) for tf, calls in context),
        ops=ops,
        consts=consts,
        custom_names=cnames,
        # the step's outputs: the custom ones, then the context indicators of each timeframe
        cslots=np.array(
            [slots[n] for n in cnames]
            + [slots[n] for tf in spec.timeframes for n in context_native_names(tf)],
            dtype=np.int64,
        ),
        ffd_w=ffd_w,
        ring_size=ring_size,
        feature_set=f"fs{ENGINE_VERSION}-{digest}",
    )


def new_state(layout: Layout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fresh ``(ist, fst, ring)`` for :func:`kernels.step` (no bar seen yet)."""
    spec = layout.spec
    n_i, n_f = kernels.state_sizes(len(spec.hurst_lags), len(spec.zscore_windows), len(spec.timeframes))
    ist = np.zeros(n_i, dtype=np.int64)
    ist[kernels.I_BUCKET0 : kernels.I_BUCKET0 + len(spec.timeframes)] = -1  # no bucket open; 0 bars
    return ist, np.zeros(n_f), np.zeros((kernels.RING_CHANNELS, layout.ring_size))
