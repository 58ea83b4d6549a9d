"""The TA-Lib-backed features: which function, on which inputs, with which parameters.

Every entry is one TA-Lib call; its outputs become slots named ``<indicator>_<params>``. Batch calls the
Function API (``talib.X``) on the full history from the anchor; live opens ``talib.stream.X`` on the
same history and ``update``s it once per closed bar, which TA-Lib 0.8 guarantees bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import talib as _talib
from talib import abstract as _abstract

# The talib stubs do not declare these attributes; go through Any once instead of ignoring each use.
talib: Any = _talib
abstract: Any = _abstract

if not str(talib.__version__).startswith("0.8") or not talib.__ta_version__.startswith(b"0.8"):
    raise ImportError(
        f"tickwise features need ta-lib 0.8.x (stream handles, fixed unstable-period table); "
        f"found {talib.__version__} / C {talib.__ta_version__!r}"
    )

TALIB_VERSION = f"{talib.__version__}/{talib.__ta_version__.decode().split(' ')[0]}"

OHLC = ("open", "high", "low", "close")
HLC = ("high", "low", "close")
HLCV = ("high", "low", "close", "volume")
C = ("close",)


@dataclass(frozen=True, slots=True)
class TalibCall:
    """One TA-Lib function call; ``outputs`` pairs each slot name with the output index it takes."""

    func: str
    inputs: tuple[str, ...]
    outputs: tuple[tuple[str, int], ...]
    params: dict[str, Any] = field(default_factory=dict)

    def lookback(self) -> int:
        """Bars TA-Lib leaves empty at the start (first value at this index)."""
        fn = abstract.Function(self.func)
        if self.params:
            fn.set_parameters(self.params)
        return int(fn.lookback)


def _one(name: str, func: str, inputs: tuple[str, ...], **params: Any) -> TalibCall:
    return TalibCall(func, inputs, ((name, 0),), params)


def _cdl(pattern: str) -> TalibCall:
    return _one(f"cdl_{pattern.lower()}", f"CDL{pattern}", OHLC)


TREND: tuple[TalibCall, ...] = (
    _one("sma_20", "SMA", C, timeperiod=20),
    _one("sma_50", "SMA", C, timeperiod=50),
    _one("ema_9", "EMA", C, timeperiod=9),
    _one("ema_20", "EMA", C, timeperiod=20),
    _one("ema_50", "EMA", C, timeperiod=50),
    _one("ema_200", "EMA", C, timeperiod=200),
    _one("dema_20", "DEMA", C, timeperiod=20),
    _one("tema_20", "TEMA", C, timeperiod=20),
    _one("kama_30", "KAMA", C, timeperiod=30),
    _one("t3_5", "T3", C, timeperiod=5, vfactor=0.7),
    _one("wma_20", "WMA", C, timeperiod=20),
    _one("sar_002_02", "SAR", ("high", "low"), acceleration=0.02, maximum=0.2),
    _one("linearreg_slope_14", "LINEARREG_SLOPE", C, timeperiod=14),
    _one("adx_14", "ADX", HLC, timeperiod=14),
    _one("adxr_14", "ADXR", HLC, timeperiod=14),
    _one("plus_di_14", "PLUS_DI", HLC, timeperiod=14),
    _one("minus_di_14", "MINUS_DI", HLC, timeperiod=14),
    TalibCall("AROON", ("high", "low"), (("aroon_down_14", 0), ("aroon_up_14", 1)), {"timeperiod": 14}),
    _one("aroonosc_14", "AROONOSC", ("high", "low"), timeperiod=14),
    TalibCall(
        "MACD",
        C,
        (("macd_12_26_9", 0), ("macd_signal_12_26_9", 1), ("macd_hist_12_26_9", 2)),
        {"fastperiod": 12, "slowperiod": 26, "signalperiod": 9},
    ),
)

MOMENTUM: tuple[TalibCall, ...] = (
    _one("rsi_14", "RSI", C, timeperiod=14),
    _one("rsi_7", "RSI", C, timeperiod=7),
    TalibCall(
        "STOCH",
        HLC,
        (("stoch_k_14_3_3", 0), ("stoch_d_14_3_3", 1)),
        {"fastk_period": 14, "slowk_period": 3, "slowk_matype": 0, "slowd_period": 3, "slowd_matype": 0},
    ),
    TalibCall(
        "STOCHRSI",
        C,
        (("stochrsi_k_14_5_3", 0), ("stochrsi_d_14_5_3", 1)),
        {"timeperiod": 14, "fastk_period": 5, "fastd_period": 3, "fastd_matype": 0},
    ),
    _one("willr_14", "WILLR", HLC, timeperiod=14),
    _one("cci_20", "CCI", HLC, timeperiod=20),
    _one("cmo_14", "CMO", C, timeperiod=14),
    _one("mom_10", "MOM", C, timeperiod=10),
    _one("roc_10", "ROC", C, timeperiod=10),
    _one("ppo_12_26", "PPO", C, fastperiod=12, slowperiod=26, matype=0),
    _one("trix_15", "TRIX", C, timeperiod=15),
    _one("ultosc_7_14_28", "ULTOSC", HLC, timeperiod1=7, timeperiod2=14, timeperiod3=28),
    _one("bop", "BOP", OHLC),
    _one("mfi_14", "MFI", HLCV, timeperiod=14),
)

VOLATILITY: tuple[TalibCall, ...] = (
    _one("atr_14", "ATR", HLC, timeperiod=14),
    _one("natr_14", "NATR", HLC, timeperiod=14),
    _one("trange", "TRANGE", HLC),
    _one("stddev_20", "STDDEV", C, timeperiod=20, nbdev=1.0),
    TalibCall(
        "BBANDS",
        C,
        (("bb_upper_20_2", 0), ("bb_middle_20_2", 1), ("bb_lower_20_2", 2)),
        {"timeperiod": 20, "nbdevup": 2.0, "nbdevdn": 2.0, "matype": 0},
    ),
)

VOLUME: tuple[TalibCall, ...] = (
    _one("obv", "OBV", ("close", "volume")),
    _one("ad", "AD", HLCV),
    _one("adosc_3_10", "ADOSC", HLCV, fastperiod=3, slowperiod=10),
    _one("volume_sma_20", "SMA", ("volume",), timeperiod=20),
)

PATTERN: tuple[TalibCall, ...] = tuple(
    _cdl(p)
    for p in (
        "DOJI",
        "HAMMER",
        "SHOOTINGSTAR",
        "ENGULFING",
        "HARAMI",
        "MORNINGSTAR",
        "EVENINGSTAR",
        "3WHITESOLDIERS",
        "3BLACKCROWS",
        "MARUBOZU",
        "SPINNINGTOP",
        "PIERCING",
        "DARKCLOUDCOVER",
    )
)

ONE_MINUTE: tuple[TalibCall, ...] = TREND + MOMENTUM + VOLATILITY + VOLUME + PATTERN


def context_calls(tf: int) -> tuple[TalibCall, ...]:
    """TA-Lib calls on the session-aligned ``tf``-minute context bars (slot names end in ``_<tf>m``)."""
    s = f"_{tf}m"
    return (
        _one(f"rsi_14{s}", "RSI", C, timeperiod=14),
        _one(f"natr_14{s}", "NATR", HLC, timeperiod=14),
        _one(f"roc_1{s}", "ROC", C, timeperiod=1),
        _one(f"atr_14{s}", "ATR", HLC, timeperiod=14),
        _one(f"ema_20{s}", "EMA", C, timeperiod=20),
        TalibCall(
            "BBANDS",
            C,
            ((f"bb_upper_20_2{s}", 0), (f"bb_lower_20_2{s}", 2)),
            {"timeperiod": 20, "nbdevup": 2.0, "nbdevdn": 2.0, "matype": 0},
        ),
    )
