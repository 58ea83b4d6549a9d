"""Carried-state numba kernels of the custom features: one ``step`` per closed 1m bar.

The live path calls :func:`step` once per bar; the batch path calls :func:`fold`, a loop over the very
same compiled ``step``, so both perform the identical sequence of floating-point operations and agree
bit for bit. All state lives in three small numpy arrays (picklable):

- ``ist`` (int64): bars seen, current IST day, active bucket start per context timeframe, then the
  context bars closed per timeframe;
- ``fst`` (float64): VWAP accumulators, Kalman state, sliding Welford moments, forming context bars,
  the native TA-Lib replicas' state, and per context timeframe its indicators' state and latest
  outputs (``NATIVE_CONTEXT``);
- ``ring`` (float64[4, R]): the last R bars of log close, close, one-bar log return and volume.

Time is carried as epoch minutes of the bar *open* (Kite's convention); IST = UTC+05:30 with no DST,
so the IST wall clock is plain integer arithmetic: ``(t + 330) % 1440`` minutes after midnight.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from tickwise.core.features.candles import N_STATE as N_CDL_STATE
from tickwise.core.features.candles import PATTERNS as CDL_PATTERNS
from tickwise.core.features.candles import candles as _candles
from tickwise.core.features.derived import apply_derived
from tickwise.core.features.fma import fma
from tickwise.core.features.jit import njit_no_nrt

RING_CHANNELS = 7
CH_LOGCLOSE, CH_CLOSE, CH_RET, CH_VOLUME, CH_HIGH, CH_LOW, CH_OPEN = 0, 1, 2, 3, 4, 5, 6
IST_OFFSET_MINUTES = 330
MINUTES_PER_DAY = 1440

# ist layout
I_COUNT, I_DAY, I_LAST_TIME, I_BUCKET0 = 0, 1, 2, 3
# fst layout: fixed header, then 2 slots per hurst lag, 2 per z-score window (+2 ret, +2 volume),
# then 5 (o, h, l, c, v) per context timeframe.
F_VW_W, F_VW_MEAN, F_VW_S = 0, 1, 2  # volume-weighted Welford of the typical price
F_EQ_W, F_EQ_MEAN, F_EQ_S = 3, 4, 5  # equal-weighted fallback (sessions without volume, e.g. indices)
F_KF_LVL, F_KF_SLOPE, F_KF_P00, F_KF_P01, F_KF_P11 = 6, 7, 8, 9, 10
F_HEADER = 11

# custom output order (index k into ``cslots``)
K_VWAP, K_VWAP_SD, K_KF_PRICE, K_KF_SLOPE, K_HURST, K_SESSION_MINUTE, K_LOGCLOSE, K_FFD = range(8)
K_FIXED = 8

# Simple TA-Lib indicators re-implemented in the step (same operation order as TA-Lib's C code, so the
# values are bit-identical to the Function API on the full history from the anchor). They follow the
# custom outputs in ``cslots``, in this order; the parameters are fixed here and checked against the
# catalog entry of the same name by the layout.
_STOCH: dict[str, float] = {
    "fastk_period": 14, "slowk_period": 3, "slowk_matype": 0, "slowd_period": 3, "slowd_matype": 0,
}  # fmt: skip
_STOCHRSI: dict[str, float] = {"timeperiod": 14, "fastk_period": 5, "fastd_period": 3, "fastd_matype": 0}
_BBANDS: dict[str, float] = {"timeperiod": 20, "nbdevup": 2.0, "nbdevdn": 2.0, "matype": 0}
_INDICATORS: tuple[tuple[str, str, dict[str, float]], ...] = (
    ("sma_20", "SMA", {"timeperiod": 20}),
    ("sma_50", "SMA", {"timeperiod": 50}),
    ("willr_14", "WILLR", {"timeperiod": 14}),
    ("mom_10", "MOM", {"timeperiod": 10}),
    ("roc_10", "ROC", {"timeperiod": 10}),
    ("bop", "BOP", {}),
    ("trange", "TRANGE", {}),
    ("obv", "OBV", {}),
    ("ad", "AD", {}),
    ("volume_sma_20", "SMA", {"timeperiod": 20}),
    ("ema_9", "EMA", {"timeperiod": 9}),
    ("ema_20", "EMA", {"timeperiod": 20}),
    ("ema_50", "EMA", {"timeperiod": 50}),
    ("ema_200", "EMA", {"timeperiod": 200}),
    ("cmo_14", "CMO", {"timeperiod": 14}),
    ("aroon_down_14", "AROON", {"timeperiod": 14}),
    ("aroon_up_14", "AROON", {"timeperiod": 14}),
    ("aroonosc_14", "AROONOSC", {"timeperiod": 14}),
    ("macd_12_26_9", "MACD", {"fastperiod": 12, "slowperiod": 26, "signalperiod": 9}),
    ("macd_signal_12_26_9", "MACD", {"fastperiod": 12, "slowperiod": 26, "signalperiod": 9}),
    ("macd_hist_12_26_9", "MACD", {"fastperiod": 12, "slowperiod": 26, "signalperiod": 9}),
    ("dema_20", "DEMA", {"timeperiod": 20}),
    ("tema_20", "TEMA", {"timeperiod": 20}),
    ("trix_15", "TRIX", {"timeperiod": 15}),
    ("ppo_12_26", "PPO", {"fastperiod": 12, "slowperiod": 26, "matype": 0}),
    ("stoch_k_14_3_3", "STOCH", _STOCH),
    ("stoch_d_14_3_3", "STOCH", _STOCH),
    ("cci_20", "CCI", {"timeperiod": 20}),
    ("ultosc_7_14_28", "ULTOSC", {"timeperiod1": 7, "timeperiod2": 14, "timeperiod3": 28}),
    ("adosc_3_10", "ADOSC", {"fastperiod": 3, "slowperiod": 10}),
    ("rsi_14", "RSI", {"timeperiod": 14}),
    ("rsi_7", "RSI", {"timeperiod": 7}),
    ("adx_14", "ADX", {"timeperiod": 14}),
    ("adxr_14", "ADXR", {"timeperiod": 14}),
    ("plus_di_14", "PLUS_DI", {"timeperiod": 14}),
    ("minus_di_14", "MINUS_DI", {"timeperiod": 14}),
    ("atr_14", "ATR", {"timeperiod": 14}),
    ("natr_14", "NATR", {"timeperiod": 14}),
    ("stochrsi_k_14_5_3", "STOCHRSI", _STOCHRSI),
    ("stochrsi_d_14_5_3", "STOCHRSI", _STOCHRSI),
    ("mfi_14", "MFI", {"timeperiod": 14}),
    ("wma_20", "WMA", {"timeperiod": 20}),
    ("linearreg_slope_14", "LINEARREG_SLOPE", {"timeperiod": 14}),
    ("kama_30", "KAMA", {"timeperiod": 30}),
    ("t3_5", "T3", {"timeperiod": 5, "vfactor": 0.7}),
    ("sar_002_02", "SAR", {"acceleration": 0.02, "maximum": 0.2}),
    ("stddev_20", "STDDEV", {"timeperiod": 20, "nbdev": 1.0}),
    ("bb_upper_20_2", "BBANDS", _BBANDS),
    ("bb_middle_20_2", "BBANDS", _BBANDS),
    ("bb_lower_20_2", "BBANDS", _BBANDS),
)
K_CDL0 = len(_INDICATORS)  # the candle patterns' outputs follow the indicators, in CDL_PATTERNS order
NATIVE_TALIB: tuple[tuple[str, str, dict[str, float]], ...] = (
    *_INDICATORS,
    *((f"cdl_{p.lower()}", f"CDL{p}", {}) for p in CDL_PATTERNS),
)
# Ichimoku (9, 26, 52) as known at the bar (no forward-plotted span): raw price levels written after
# the native TA-Lib outputs, scale-free distances derived from them in the layout. Values are
# (highest high + lowest low) / 2 over the window; the spans plotted at bar t are those computed at
# t - 26 (tenkan/kijun midpoint and the 52-bar midpoint), the chikou level is the close 26 bars back.
_ICHI_TENKAN, _ICHI_KIJUN, _ICHI_SENKOU_B, _ICHI_SHIFT = 9, 26, 52, 26
ICHIMOKU_WARM: dict[str, int] = {
    "ichimoku_tenkan_9": _ICHI_TENKAN - 1,
    "ichimoku_kijun_26": _ICHI_KIJUN - 1,
    "ichimoku_senkou_a_9_26": _ICHI_KIJUN - 1 + _ICHI_SHIFT,
    "ichimoku_senkou_b_52": _ICHI_SENKOU_B - 1 + _ICHI_SHIFT,
    "ichimoku_chikou_26": _ICHI_SHIFT,
}
ICHIMOKU_NAMES = tuple(ICHIMOKU_WARM)
N_ICHIMOKU = len(ICHIMOKU_NAMES)
ICHIMOKU_RING = _ICHI_SENKOU_B + _ICHI_SHIFT + 1  # ring bars read by the longest window
_EMA_PERIODS = (9, 20, 50, 200)
_TA_EPSILON = 0.00000000000001  # ta_utility.h: TA_IS_ZERO(v) is -TA_EPSILON < v < TA_EPSILON
N_NATIVE = len(NATIVE_TALIB)
# fst slots of the native indicators (after the context bars): running sums and accumulators
T_SMA20, T_SMA50, T_VSMA20, T_OBV, T_AD, T_CMO_GAIN, T_CMO_LOSS, T_EMA0 = range(8)
T_MACD_FAST, T_MACD_SLOW, T_MACD_SIG = T_EMA0 + 4, T_EMA0 + 5, T_EMA0 + 6
# DEMA/TEMA(20): the 2nd and 3rd EMA of the chain (the 1st is ema_20); TRIX(15): its 3 EMAs and the
# previous 3rd EMA; PPO(12, 26, SMA): running sums of the slow and the fast SMA
T_DT_E2, T_DT_E3 = T_MACD_SIG + 1, T_MACD_SIG + 2
T_TRIX_E1, T_TRIX_E2, T_TRIX_E3, T_TRIX_PREV = T_DT_E3 + 1, T_DT_E3 + 2, T_DT_E3 + 3, T_DT_E3 + 4
T_PPO_SLOW, T_PPO_FAST = T_TRIX_PREV + 1, T_TRIX_PREV + 2
# STOCH(14, 3 SMA, 3 SMA): running sums of fast %K and slow %K, and their last two values
T_STOCH_FK_SUM, T_STOCH_FK1, T_STOCH_FK2 = T_PPO_FAST + 1, T_PPO_FAST + 2, T_PPO_FAST + 3
T_STOCH_SK_SUM, T_STOCH_SK1, T_STOCH_SK2 = T_PPO_FAST + 4, T_PPO_FAST + 5, T_PPO_FAST + 6
# ULTOSC(7, 14, 28): per period, the running sums of buying pressure and true range
T_ULT_A0 = T_STOCH_SK2 + 1  # A7, A14, A28, then B7, B14, B28
_ULT_PERIODS = (7, 14, 28)
T_ADOSC_FAST, T_ADOSC_SLOW = T_ULT_A0 + 6, T_ULT_A0 + 7  # ADOSC(3, 10): the two EMAs of AD
# RSI(14), RSI(7): Wilder's average gain and loss
T_RSI14_G, T_RSI14_L, T_RSI7_G, T_RSI7_L = (
    T_ADOSC_SLOW + 1,
    T_ADOSC_SLOW + 2,
    T_ADOSC_SLOW + 3,
    T_ADOSC_SLOW + 4,
)
# ADX family (14): smoothed +DM, -DM and true range, the DX sum / ADX, the last 14 ADX values (ADXR)
T_PDM, T_MDM, T_TRS, T_ADX = T_RSI7_L + 1, T_RSI7_L + 2, T_RSI7_L + 3, T_RSI7_L + 4
T_ADXH = T_ADX + 1
_ADX_P = 14
T_ATR = T_ADXH + _ADX_P  # ATR(14): the true-range sum, then the ATR
# STOCHRSI(14, 5, 3 SMA): the last 5 RSI(14) values, the running sum of fast %K and its last two values
T_SRSI_H = T_ATR + 1
T_SRSI_SUM, T_SRSI_K1, T_SRSI_K2 = T_SRSI_H + 5, T_SRSI_H + 6, T_SRSI_H + 7
# MFI(14): positive / negative money-flow sums, the previous typical price, the run of empty bars,
# then the 14-slot rings of positive and negative flows
_MFI_P = 14
T_MFI_PS, T_MFI_NS, T_MFI_PREV, T_MFI_NULL = T_SRSI_K2 + 1, T_SRSI_K2 + 2, T_SRSI_K2 + 3, T_SRSI_K2 + 4
T_MFI_POS0 = T_MFI_NULL + 1
T_MFI_NEG0 = T_MFI_POS0 + _MFI_P
T_WMA_SUM, T_WMA_SUB = T_MFI_NEG0 + _MFI_P, T_MFI_NEG0 + _MFI_P + 1  # WMA(20): weighted and plain sums
_WMA_P = 20
# LINEARREG_SLOPE(14): sum of y, sum of x*y (x = bars back), sum of |y|, bars until the next full re-sum
T_LRS_Y, T_LRS_XY, T_LRS_A, T_LRS_CNT = T_WMA_SUB + 1, T_WMA_SUB + 2, T_WMA_SUB + 3, T_WMA_SUB + 4
_LRS_P = 14
# KAMA(30): the sum of |one-bar changes| over the window and the previous KAMA
T_KAMA_SUM, T_KAMA_PREV = T_LRS_CNT + 1, T_LRS_CNT + 2
_KAMA_P = 30
# T3(5, 0.7): the six chained EMAs e1..e6, then the running sum that seeds the next EMA of the chain
T_T3_E1 = T_KAMA_PREV + 1
T_T3_TEMP = T_T3_E1 + 6
_T3_P, _T3_V = 5, 0.7
# SAR(0.02, 0.2): long (1.0) or short (0.0), acceleration factor, extreme point, the next bar's SAR
T_SAR_LONG, T_SAR_AF, T_SAR_EP, T_SAR = T_T3_TEMP + 1, T_T3_TEMP + 2, T_T3_TEMP + 3, T_T3_TEMP + 4
_SAR_ACC, _SAR_MAX = 0.02, 0.2
# STDDEV(20, 1): ta-lib 0.8's shifted-data TA_VAR: the shift, sum(x - shift), sum((x - shift)^2), and
# bars until the next forced re-seed
T_VAR_SHIFT, T_VAR_S1, T_VAR_S2, T_VAR_CNT = T_SAR + 1, T_SAR + 2, T_SAR + 3, T_SAR + 4
_VAR_P = 20
T_CDL0 = T_VAR_CNT + 1  # the running sums of the candle settings (candles.SUMS) and their ranges
# WILLR(14) and STOCH(14) share one highest high / lowest low (part 1 sweeps it, part 2 reads it)
T_HH14, T_LL14 = T_CDL0 + N_CDL_STATE, T_CDL0 + N_CDL_STATE + 1
# Ichimoku: the 9-, 26- and 52-bar midpoints of the last _ICHI_RING bars (the spans read them 26 back)
_ICHI_RING = 32
T_ICHI9 = T_LL14 + 1
T_ICHI26, T_ICHI52 = T_ICHI9 + _ICHI_RING, T_ICHI9 + 2 * _ICHI_RING
# CCI(20): TA-Lib's circular buffer of typical prices, slot = bar % 20
_CCI_P = 20
T_CCI0 = T_ICHI52 + _ICHI_RING
T_SIZE = T_CCI0 + _CCI_P
# MACD(12, 26, 9): TA-Lib starts BOTH EMAs so that their first values meet at the slow EMA's first
# bar (25): the fast EMA is seeded with the mean of closes 14..25, not from the anchor; the signal
# EMA is seeded with the mean of the first 9 MACD values (25..33), the first output is at bar 33.
_MACD_FAST, _MACD_SLOW, _MACD_SIGNAL = 12, 26, 9


# The context timeframes' indicators (issue 14, fifth session), computed on each context bar as it
# closes with the same replicas as the 1m ones: per timeframe one block of C_SIZE ``fst`` slots after
# the Hurst log-lags (Wilder's gain/loss, the ATR, the EMA, the SMA(20) sum, TA_VAR's four, the latest
# outputs, which the step writes into every 1m row until the next context bar closes, and a ring of the
# context closes), and the count of context bars in ``ist[I_BUCKET0 + n_tf + tf]``. The outputs follow
# the Ichimoku levels in ``cslots``, N_CONTEXT per timeframe in this order; the parameters are checked
# against the catalog's context calls by the layout (ROC's period is 1 here, 10 on the 1m bars).
NATIVE_CONTEXT: tuple[tuple[str, str, dict[str, float]], ...] = (
    ("rsi_14", "RSI", {"timeperiod": 14}),
    ("natr_14", "NATR", {"timeperiod": 14}),
    ("roc_1", "ROC", {"timeperiod": 1}),
    ("atr_14", "ATR", {"timeperiod": 14}),
    ("ema_20", "EMA", {"timeperiod": 20}),
    ("bb_upper_20_2", "BBANDS", _BBANDS),
    ("bb_lower_20_2", "BBANDS", _BBANDS),
)
N_CONTEXT = len(NATIVE_CONTEXT)
_CTX_RSI_P, _CTX_ATR_P, _CTX_EMA_P, _CTX_BB_P = 14, 14, 20, 20
C_RSI_G, C_ATR, C_EMA, C_SMA, C_VAR, C_OUT = 0, 2, 3, 4, 5, 9  # C_RSI_G: gain, loss; C_VAR: 4 slots
C_RING = C_OUT + N_CONTEXT
_CTX_RING = 32  # >= the longest window (20), a power of two
C_SIZE = C_RING + _CTX_RING


def state_sizes(n_lags: int, n_zwin: int, n_tf: int) -> tuple[int, int]:
    """Lengths of ``ist`` and ``fst`` for the given parameter counts."""
    # after the native indicators' T_SIZE slots: log(q) of each Hurst lag (set at bar 0), then the
    # context timeframes' indicator blocks
    n_f = F_HEADER + 2 * n_lags + 2 * (n_zwin + 2) + 5 * n_tf + T_SIZE + n_lags + C_SIZE * n_tf
    return I_BUCKET0 + 2 * n_tf, n_f


_fma: Any = fma  # called from jitted code as _fma(a, b, c)

# The parts, candles.candles and the entries (fold, step_derive, step_many) allocate nothing and are
# compiled without numba's reference counting (``jit.njit_no_nrt``: an atomic increment and decrement
# per array use and bar otherwise).
#
# The one signature of the separately compiled parts of the step (given explicitly, so one
# specialisation is compiled: ``step_derive`` passes the column index as the literal 0, which would
# otherwise compile every part a second time for ``Literal[int](0)``; C-contiguous as every caller's).
_PART_SIG = (
    "void(float64[::1], int64, float64[:, ::1], int64, float64, float64, float64, float64, float64, "
    "float64[:, ::1], int64[::1], int64, int64)"
)


@njit(cache=True, inline="always")
def _sma(fst: np.ndarray, j: int, buf: np.ndarray, off: int, rm: int, n: int, x: float, period: int) -> float:
    """TA-Lib SMA as a running sum from the anchor: add x, emit sum / period, drop the oldest value.

    The series' past values are in the ring ``buf[off + (bar & rm)]`` (a row of ``ring`` for the 1m
    bars, a context timeframe's ring in ``fst`` for its bars), which already holds bar ``n``.
    """
    tot = fst[j] + x
    res = math.nan
    if n >= period - 1:
        res = tot / period
        tot = tot - buf[off + ((n - period + 1) & rm)]
    fst[j] = tot
    return res


@njit(cache=True, inline="always")
def _ema(fst: np.ndarray, j: int, n: int, x: float, period: int) -> float:
    """TA-Lib EMA from the anchor (``fst[j]`` starts at 0): seeded with the sum of the first ``period``
    values / period, then ``fma(x - ema, 2/(period+1), ema)`` (the ``.fma`` clone's form); NaN before."""
    e = fst[j]
    if n < period - 1:
        fst[j] = e + x
        return math.nan
    e = (e + x) / period if n == period - 1 else _fma(x - e, 2.0 / (period + 1), e)
    fst[j] = e
    res: float = e
    return res


@njit(cache=True, inline="always")
def _true_range(h: float, lo: float, pc: float) -> float:
    """The true range of a bar after the close ``pc`` (TA-Lib's comparisons, in ATR's order)."""
    tr = h - lo
    t = abs(h - pc)
    if t > tr:
        tr = t
    t = abs(lo - pc)
    if t > tr:
        tr = t
    return tr


@njit(cache=True, inline="always")
def _atr(fst: np.ndarray, j: int, n: int, tr: float, period: int) -> float:
    """ATR(period) for bar ``n >= 1`` with true range ``tr``; ``fst[j]`` = the sum of the first
    ``period`` true ranges (bars 1..period), then the ATR, updated as ``fma(atr, k, tr * (1 - k))``
    with ``k = (period - 1) / period``: the library's .fma clone (the one run on an FMA CPU)
    contracts the update this way."""
    if n < period:
        fst[j] = fst[j] + tr
        return math.nan
    k1 = (period - 1) / period
    atr = (fst[j] + tr) / period if n == period else _fma(fst[j], k1, tr * (1.0 - k1))
    fst[j] = atr
    res: float = atr
    return res


@njit(cache=True, inline="always")
def _roc(c: float, prev: float) -> float:
    """TA-Lib ROC: ``((c / prev) - 1) * 100``, 0 for a zero previous value."""
    return ((c / prev) - 1.0) * 100.0 if prev != 0.0 else 0.0


@njit(cache=True, inline="always")
def _stddev(var: float, n: int, period: int) -> float:
    """sqrt of ta-lib 0.8's ``TA_VAR`` output: TA_IS_ZERO_OR_NEG (below 1e-14) gives 0, NaN before the
    first window."""
    if n < period - 1:
        return math.nan
    return 0.0 if var < _TA_EPSILON else math.sqrt(var)


@njit(cache=True, inline="always")
def _ema_link(fst: np.ndarray, j: int, n: int, start: int, x: float, period: int) -> float:
    """One EMA of a chain whose input ``x`` starts at bar ``start``: seeded with the mean of its first
    ``period`` inputs (as TA-Lib's INT_EMA), then ``fma(x - ema, 2/(period+1), ema)``; NaN before."""
    if n < start:
        return math.nan
    e = fst[j]
    if n < start + period - 1:
        fst[j] = e + x
        return math.nan
    res: float = (e + x) / period if n == start + period - 1 else _fma(x - e, 2.0 / (period + 1), e)
    fst[j] = res
    return res


@njit(cache=True, inline="always")
def _sweep_extremes(fst: np.ndarray, jt: int, ring: np.ndarray, rm: int, n: int, h: float, lo: float) -> None:
    """One backward sweep over the last 52 bars for every highest high / lowest low the step needs.

    WILLR(14) and STOCH(14) read the 14-bar extremes from ``fst[jt + T_HH14]``, ``fst[jt + T_LL14]``
    (NaN before bar 13); Ichimoku reads the (highest high + lowest low) / 2 midpoints of 9, 26 and 52
    bars from their 32-bar rings in ``fst`` (NaN before the window fills). The bars are visited from
    this one back, as WILLR's loop does, so its extremes are the very same values; max and min are
    exact, so a window's extremes do not depend on the order its bars are visited in (ties of +0 and
    -0 aside, which only an all-zero price could meet). One pass replaces five window scans (9 + 14
    + 14 + 26 + 52 bars at this bar, and 9 + 26 again 26 bars back for the leading span).
    """
    nan = math.nan
    hh = h
    ll = lo
    top = min(n, _ICHI_SENKOU_B - 1)
    m9 = nan
    hl14 = nan
    ll14 = nan
    m26 = nan
    m52 = nan
    stop = min(top, _ICHI_TENKAN - 1)
    for i in range(1, stop + 1):
        k = (n - i) & rm
        hh = max(hh, ring[CH_HIGH, k])
        ll = min(ll, ring[CH_LOW, k])
    if top >= _ICHI_TENKAN - 1:
        m9 = (hh + ll) / 2.0
        stop = min(top, 13)
        for i in range(_ICHI_TENKAN, stop + 1):
            k = (n - i) & rm
            hh = max(hh, ring[CH_HIGH, k])
            ll = min(ll, ring[CH_LOW, k])
        if top >= 13:
            hl14 = hh
            ll14 = ll
            stop = min(top, _ICHI_KIJUN - 1)
            for i in range(14, stop + 1):
                k = (n - i) & rm
                hh = max(hh, ring[CH_HIGH, k])
                ll = min(ll, ring[CH_LOW, k])
            if top >= _ICHI_KIJUN - 1:
                m26 = (hh + ll) / 2.0
                for i in range(_ICHI_KIJUN, top + 1):
                    k = (n - i) & rm
                    hh = max(hh, ring[CH_HIGH, k])
                    ll = min(ll, ring[CH_LOW, k])
                if top >= _ICHI_SENKOU_B - 1:
                    m52 = (hh + ll) / 2.0
    fst[jt + T_HH14] = hl14
    fst[jt + T_LL14] = ll14
    slot = n & (_ICHI_RING - 1)
    fst[jt + T_ICHI9 + slot] = m9
    fst[jt + T_ICHI26 + slot] = m26
    fst[jt + T_ICHI52 + slot] = m52


@njit(cache=True, inline="always")
def _ichimoku(
    fst: np.ndarray, jt: int, ring: np.ndarray, rm: int, n: int, out: np.ndarray, cslots: np.ndarray, k: int,
    col: int,
) -> None:  # fmt: skip
    """The ICHIMOKU_NAMES levels for bar ``n``, NaN before their warm-up (causal: bars <= n only).

    The midpoints come from :func:`_sweep_extremes` (this bar's, and those it stored 26 bars back).
    """
    nan = math.nan
    rs = _ICHI_RING - 1
    slot = n & rs
    out[cslots[k], col] = fst[jt + T_ICHI9 + slot]
    out[cslots[k + 1], col] = fst[jt + T_ICHI26 + slot]
    past = n - _ICHI_SHIFT
    if past >= _ICHI_KIJUN - 1:
        ps = past & rs
        out[cslots[k + 2], col] = (fst[jt + T_ICHI9 + ps] + fst[jt + T_ICHI26 + ps]) / 2.0
    else:
        out[cslots[k + 2], col] = nan
    out[cslots[k + 3], col] = fst[jt + T_ICHI52 + (past & rs)] if past >= _ICHI_SENKOU_B - 1 else nan
    out[cslots[k + 4], col] = ring[CH_CLOSE, past & rm] if past >= 0 else nan


@njit(cache=True, inline="always")
def _rsi(fst: np.ndarray, j: int, n: int, d: float, period: int) -> float:
    """RSI(period) for bar ``n >= 1`` with close change ``d``; ``fst[j], fst[j + 1]`` = gain, loss."""
    g = fst[j]
    ls = fst[j + 1]
    if n > period:
        g *= period - 1
        ls *= period - 1
    if d > 0.0:
        g = g + d
    else:
        ls = (0.0 - d) + ls
    res = math.nan
    if n >= period:
        r = 1.0 / period
        g *= r
        ls *= r
        tot = ls + g
        res = (g / tot) * 100.0 if tot > 0.0 else 0.0
    fst[j] = g
    fst[j + 1] = ls
    return res


@njit(cache=True, inline="always")
def _kama(fst: np.ndarray, j: int, ring: np.ndarray, rm: int, n: int, c: float) -> float:
    """KAMA(30) for bar ``n``; ``fst[j], fst[j + 1]`` = sum of |one-bar changes| over the window, KAMA.

    TA-Lib seeds the KAMA with the previous close at bar 30. The shipped ``.fma`` clone fuses both
    ``er * diff + fastest`` and ``(x - kama) * sc + kama`` (checked: hundreds of differences per 20k
    bars with either left unfused, none with both fused).
    """
    p = _KAMA_P
    if n == 0:
        fst[j] = 0.0
        return math.nan
    tot = fst[j]
    prev_c = ring[CH_CLOSE, (n - 1) & rm]
    if n <= p:
        tot += abs(prev_c - c)
    else:
        tot -= abs(ring[CH_CLOSE, (n - p - 1) & rm] - ring[CH_CLOSE, (n - p) & rm])
        tot += abs(c - prev_c)
    fst[j] = tot
    if n < p:
        return math.nan
    kama = prev_c if n == p else fst[j + 1]
    roc = c - ring[CH_CLOSE, (n - p) & rm]
    er = 1.0 if tot <= roc or -_TA_EPSILON < tot < _TA_EPSILON else abs(roc / tot)
    fastest = 2.0 / (30.0 + 1.0)
    sc = _fma(er, 2.0 / (2.0 + 1.0) - fastest, fastest)
    sc *= sc
    kama = _fma(c - kama, sc, kama)
    fst[j + 1] = kama
    res: float = kama
    return res


@njit(cache=True, inline="always")
def _t3_ema(k: float, omk: float, x: float, e: float) -> float:
    """``k * x + (1 - k) * e`` as the shipped ``.fma`` clone of TA_T3 computes it."""
    res: float = _fma(omk, e, k * x)
    return res


@njit(cache=True, inline="always")
def _t3(fst: np.ndarray, j: int, n: int, c: float) -> float:
    """T3(5, 0.7) for bar ``n``; ``fst[j .. j + 5]`` = e1..e6, ``fst[j + 6]`` = the seeding sum.

    As TA_T3: e1 is seeded with the mean of the first 5 closes, each later EMA with the mean of the
    first 5 values of the one before it (so e_s is seeded at bar ``s * 4``); the first output is at
    bar 24. Fused as the ``.fma`` clone: ``fma(1 - k, e, k * x)`` per EMA and the output as
    ``fma(c4, e3, fma(c3, e4, fma(c1, e6, c2 * e5)))`` (checked: 0 differences per 20k bars, thousands
    for the other groupings).
    """
    p = _T3_P
    t = j + 6
    if n < p:
        tot = fst[t] + c if n > 0 else c
        if n == p - 1:
            tot = tot / p
            fst[j] = tot
        fst[t] = tot
        return math.nan
    k = 2.0 / (p + 1.0)
    omk = 1.0 - k
    last = 6 * (p - 1)
    stage = 6 if n > last else (n - 1) // (p - 1) + 1  # the EMA being seeded (or 6: all running)
    e = _t3_ema(k, omk, c, fst[j])
    fst[j] = e
    for i in range(1, stage - 1 if n <= last else 6):
        e = _t3_ema(k, omk, e, fst[j + i])
        fst[j + i] = e
    if n <= last:
        tot = fst[t] + e
        if n == stage * (p - 1):
            tot = tot / p
            fst[j + stage - 1] = tot
        fst[t] = tot
        if n < last:
            return math.nan
    v = _T3_V
    tt = v * v
    c1 = 0 - tt * v
    c2 = 3.0 * (tt - c1)
    c3 = (0 - 6.0) * tt - 3.0 * (v - c1)
    c4 = 1.0 + 3.0 * v - c1 + 3.0 * tt
    res: float = _fma(c4, fst[j + 2], _fma(c3, fst[j + 3], _fma(c1, fst[j + 5], c2 * fst[j + 4])))
    return res


@njit(cache=True, inline="always")
def _sar(fst: np.ndarray, j: int, ring: np.ndarray, rm: int, n: int, h: float, lo: float) -> float:
    """Parabolic SAR(0.02, 0.2) for bar ``n``; ``fst[j .. j + 3]`` = long?, af, ep, the next SAR.

    As TA_SAR from the anchor: bar 0 is consumed, the direction at bar 1 is long unless its -DM(1) is
    positive, the first SAR is bar 0's low (long) or high (short), and at bar 1 the "previous" bar is
    bar 1 itself. The shipped ``.fma`` clone fuses ``sar + af * (ep - sar)`` (checked: hundreds of
    differences per 20k bars unfused, none fused).
    """
    if n == 0:
        return math.nan
    acc = _SAR_ACC
    mx = _SAR_MAX
    if n == 1:
        h0 = ring[CH_HIGH, 0]
        l0 = ring[CH_LOW, 0]
        diff_p = h - h0
        diff_m = l0 - lo
        minus_dm = diff_m if diff_m > 0.0 and diff_p < diff_m else 0.0
        is_long = not minus_dm > 0.0
        ep = h if is_long else lo
        sar = l0 if is_long else h0
        af = acc
        ph = h
        pl = lo
    else:
        is_long = fst[j] != 0.0
        af = fst[j + 1]
        ep = fst[j + 2]
        sar = fst[j + 3]
        ph = ring[CH_HIGH, (n - 1) & rm]
        pl = ring[CH_LOW, (n - 1) & rm]
    if is_long:
        if lo <= sar:  # switch to short: the SAR jumps to the extreme point
            is_long = False
            sar = max(ep, ph, h)
            res = sar
            af = acc
            ep = lo
            sar = max(_fma(af, ep - sar, sar), ph, h)
        else:
            res = sar
            if h > ep:
                ep = h
                af = min(af + acc, mx)
            sar = min(_fma(af, ep - sar, sar), pl, lo)
    elif h >= sar:  # switch to long
        is_long = True
        sar = min(ep, pl, lo)
        res = sar
        af = acc
        ep = h
        sar = min(_fma(af, ep - sar, sar), pl, lo)
    else:
        res = sar
        if lo < ep:
            ep = lo
            af = min(af + acc, mx)
        sar = max(_fma(af, ep - sar, sar), ph, h)
    fst[j] = 1.0 if is_long else 0.0
    fst[j + 1] = af
    fst[j + 2] = ep
    fst[j + 3] = sar
    out: float = res
    return out


@njit(cache=True, inline="always")
def _var(fst: np.ndarray, j: int, buf: np.ndarray, off: int, rm: int, n: int, c: float) -> float:
    """ta-lib 0.8's TA_VAR(20) for bar ``n`` (NaN before bar 19); ``fst[j .. j + 3]`` = shift,
    sum(x - shift), sum((x - shift)^2), bars until the forced re-seed; the series' past values are in
    the ring ``buf[off + (bar & rm)]`` (see :func:`_sma`).

    The sums are taken against a shift (the anchor's close, later the window mean); after each output
    the window's oldest value is removed, and the shift is re-seeded with a fresh two-pass over the
    window when the variance fell below 1e-6 of the mean square, the removed square dwarfs the sum
    (x 1e6), or every 32 windows. No ``.fma`` clone; ``1/period`` is a multiply, as in the source.
    """
    p = _VAR_P
    inv = 1.0 / p
    if n == 0:
        fst[j] = c
        fst[j + 1] = 0.0
        fst[j + 2] = 0.0
        fst[j + 3] = 32.0 * p
    shift = fst[j]
    t = c - shift
    s1 = fst[j + 1] + t
    t *= t
    s2 = fst[j + 2] + t
    if n < p - 1:
        fst[j + 1] = s1
        fst[j + 2] = s2
        return math.nan
    m = s1 * inv
    var = s2 * inv - m * m
    first = n - p + 1
    t = buf[off + (first & rm)] - shift
    s1 -= t
    t *= t
    s2 -= t
    cnt = fst[j + 3] - 1.0
    if var < 0.000001 * (s2 * inv) or t > 1000000.0 * s2 or cnt <= 0.0:
        cnt = 32.0 * p
        tot = 0.0
        for b in range(first, n + 1):
            tot += buf[off + (b & rm)]
        shift = tot * inv
        s1 = 0.0
        s2 = 0.0
        for b in range(first, n + 1):
            t = buf[off + (b & rm)] - shift
            s1 += t
            t *= t
            s2 += t
        m = s1 * inv
        var = s2 * inv - m * m
        t = buf[off + (first & rm)] - shift
        s1 -= t
        t *= t
        s2 -= t
    fst[j] = shift
    fst[j + 1] = s1
    fst[j + 2] = s2
    fst[j + 3] = cnt
    res: float = var
    return res


@njit(cache=True, inline="always")
def _ult_terms(ring: np.ndarray, rm: int, b: int) -> tuple[float, float]:
    """ULTOSC's buying pressure (close - true low) and true range of bar ``b`` (``b >= 1``, in the ring)."""
    k = b & rm
    lo = ring[CH_LOW, k]
    h = ring[CH_HIGH, k]
    pc = ring[CH_CLOSE, (b - 1) & rm]
    true_low = lo if lo < pc else pc
    bp = ring[CH_CLOSE, k] - true_low
    tr = h - lo
    t = abs(pc - h)
    if t > tr:
        tr = t
    t = abs(pc - lo)
    if t > tr:
        tr = t
    return bp, tr


@njit(cache=True, inline="always")
def _native_talib(
    fst: np.ndarray, jt: int, ring: np.ndarray, n: int, o: float, h: float, lo: float, c: float, v: float,
    out: np.ndarray, cslots: np.ndarray, kt: int, col: int,
) -> None:  # fmt: skip
    """The NATIVE_TALIB indicators for bar ``n`` (the ring already holds this bar).

    Each follows the loop of TA-Lib's C function with the same operations in the same order; values
    before TA-Lib's lookback are NaN (the warm-up mask blanks them anyway).

    Three separately compiled parts, called in turn (the indicators' order is unchanged): numba's type
    inference and LLVM's optimiser grow faster than linearly with a function's size, and one function
    holding all 56 replicas (inlined into ``step``, itself inlined into ``fold`` and ``step_derive``)
    took 84 CPU-s to compile, twice. A call per part and bar costs nanoseconds; IEEE arithmetic
    without fast-math gives the same bits inlined or not (no contraction: the FMAs are explicit).
    """
    _native_talib_1(fst, jt, ring, n, o, h, lo, c, v, out, cslots, kt, col)
    _native_talib_2(fst, jt, ring, n, o, h, lo, c, v, out, cslots, kt, col)
    _native_talib_3(fst, jt, ring, n, o, h, lo, c, v, out, cslots, kt, col)


@njit_no_nrt(_PART_SIG, cache=True, error_model="numpy")
def _native_talib_1(
    fst: np.ndarray, jt: int, ring: np.ndarray, n: int, o: float, h: float, lo: float, c: float, v: float,
    out: np.ndarray, cslots: np.ndarray, kt: int, col: int,
) -> None:  # fmt: skip
    """SMA .. PPO of :func:`_native_talib` (the first of its three compiled parts)."""
    RM = ring.shape[1] - 1
    nan = math.nan
    pc = ring[CH_CLOSE, (n - 1) & RM] if n >= 1 else nan

    closes = ring[CH_CLOSE]
    out[cslots[kt + 0], col] = _sma(fst, jt + T_SMA20, closes, 0, RM, n, c, 20)
    out[cslots[kt + 1], col] = _sma(fst, jt + T_SMA50, closes, 0, RM, n, c, 50)

    # WILLR(14): highest high / lowest low of the window (swept once for STOCH and Ichimoku too)
    _sweep_extremes(fst, jt, ring, RM, n, h, lo)
    p = 14
    if n >= p - 1:
        hh = fst[jt + T_HH14]
        ll = fst[jt + T_LL14]
        diff = hh - ll
        wr = ((hh - c) / diff) * -100.0 if diff != 0.0 else 0.0
        # TA-Lib 0.8 clamps to [-100, 0] (a close outside the bar's own high/low range)
        if wr > 0.0:
            wr = 0.0
        elif wr < -100.0:
            wr = -100.0
        out[cslots[kt + 2], col] = wr
    else:
        out[cslots[kt + 2], col] = nan

    # MOM(10), ROC(10)
    if n >= 10:
        prev = ring[CH_CLOSE, (n - 10) & RM]
        out[cslots[kt + 3], col] = c - prev
        out[cslots[kt + 4], col] = _roc(c, prev)
    else:
        out[cslots[kt + 3], col] = nan
        out[cslots[kt + 4], col] = nan

    # BOP
    rng = h - lo
    out[cslots[kt + 5], col] = (c - o) / rng if rng > 0.0 else 0.0

    # TRANGE
    if n >= 1:
        greatest = h - lo
        val2 = abs(pc - h)
        if val2 > greatest:
            greatest = val2
        val3 = abs(pc - lo)
        if val3 > greatest:
            greatest = val3
        out[cslots[kt + 6], col] = greatest
    else:
        out[cslots[kt + 6], col] = nan

    # OBV from the anchor's volume
    if n == 0:
        obv = v
    else:
        obv = fst[jt + T_OBV]
        if c > pc:
            obv = obv + v
        elif c < pc:
            obv = obv - v
    fst[jt + T_OBV] = obv
    out[cslots[kt + 7], col] = obv

    # AD (Chaikin accumulation/distribution)
    ad = fst[jt + T_AD]
    if rng > 0.0:
        ad = ad + (((c - lo) - (h - c)) / rng) * v
    fst[jt + T_AD] = ad
    out[cslots[kt + 8], col] = ad

    out[cslots[kt + 9], col] = _sma(fst, jt + T_VSMA20, ring[CH_VOLUME], 0, RM, n, v, 20)

    # EMA: seeded with the sum of the first `period` closes / period, then fma(x - ema, k, ema)
    for i in range(4):
        out[cslots[kt + 10 + i], col] = _ema(fst, jt + T_EMA0 + i, n, c, _EMA_PERIODS[i])

    # CMO(14): Wilder-smoothed gains and losses, seeded with their mean over the first 14 changes
    p = 14
    if n == 0:
        out[cslots[kt + 14], col] = nan
    else:
        d = c - pc
        g = fst[jt + T_CMO_GAIN]
        ls = fst[jt + T_CMO_LOSS]
        if n > p:
            ls *= p - 1
            g *= p - 1
        if d < 0:
            ls -= d
        else:
            g += d
        if n >= p:
            ls /= p
            g /= p
            t = g + ls
            out[cslots[kt + 14], col] = 100.0 * ((g - ls) / t) if t != 0.0 else 0.0
        else:
            out[cslots[kt + 14], col] = nan
        fst[jt + T_CMO_GAIN] = g
        fst[jt + T_CMO_LOSS] = ls

    # AROON(14) / AROONOSC(14): bars since the latest lowest low / highest high over the last 15 bars
    p = 14
    if n >= p:
        lo_i = n - p
        hi_i = n - p
        lowest = ring[CH_LOW, lo_i & RM]
        highest = ring[CH_HIGH, hi_i & RM]
        for i in range(n - p + 1, n + 1):
            k = i & RM
            if ring[CH_LOW, k] <= lowest:
                lowest = ring[CH_LOW, k]
                lo_i = i
            if ring[CH_HIGH, k] >= highest:
                highest = ring[CH_HIGH, k]
                hi_i = i
        factor = 100.0 / p
        out[cslots[kt + 15], col] = factor * (p - (n - lo_i))
        out[cslots[kt + 16], col] = factor * (p - (n - hi_i))
        out[cslots[kt + 17], col] = factor * (hi_i - lo_i)
    else:
        out[cslots[kt + 15], col] = nan
        out[cslots[kt + 16], col] = nan
        out[cslots[kt + 17], col] = nan

    # MACD(12, 26, 9)
    fast_start = _MACD_SLOW - 1  # 25: first bar of both EMAs
    sig_start = fast_start + _MACD_SIGNAL - 1  # 33: first MACD output
    if n < fast_start:
        fst[jt + T_MACD_SLOW] = fst[jt + T_MACD_SLOW] + c
        for i in range(3):
            out[cslots[kt + 18 + i], col] = nan
    else:
        if n == fast_start:
            slow = (fst[jt + T_MACD_SLOW] + c) / _MACD_SLOW
            tot = 0.0
            for i in range(n - _MACD_FAST + 1, n + 1):
                tot += ring[CH_CLOSE, i & RM]
            fast = tot / _MACD_FAST
        else:
            slow = _fma(c - fst[jt + T_MACD_SLOW], 2.0 / (_MACD_SLOW + 1), fst[jt + T_MACD_SLOW])
            fast = _fma(c - fst[jt + T_MACD_FAST], 2.0 / (_MACD_FAST + 1), fst[jt + T_MACD_FAST])
        fst[jt + T_MACD_SLOW] = slow
        fst[jt + T_MACD_FAST] = fast
        macd = fast - slow
        sig = fst[jt + T_MACD_SIG]
        if n < sig_start:
            fst[jt + T_MACD_SIG] = sig + macd
            for i in range(3):
                out[cslots[kt + 18 + i], col] = nan
        else:
            sig = (
                (sig + macd) / _MACD_SIGNAL
                if n == sig_start
                else _fma(macd - sig, 2.0 / (_MACD_SIGNAL + 1), sig)
            )
            fst[jt + T_MACD_SIG] = sig
            out[cslots[kt + 18], col] = macd
            out[cslots[kt + 19], col] = sig
            out[cslots[kt + 20], col] = macd - sig

    # DEMA(20) = 2 e1 - e2, TEMA(20) = 3 e1 - 3 e2 + e3 over the EMA chain e1 = ema_20 (from the
    # anchor, first at bar 19), e2 = EMA(e1) (first at 38), e3 = EMA(e2) (first at 57)
    p = 20
    e1 = fst[jt + T_EMA0 + 1] if n >= p - 1 else nan  # ema_20, updated above
    e2 = _ema_link(fst, jt + T_DT_E2, n, p - 1, e1, p)
    e3 = _ema_link(fst, jt + T_DT_E3, n, 2 * (p - 1), e2, p)
    out[cslots[kt + 21], col] = (2.0 * e1) - e2 if n >= 2 * (p - 1) else nan
    out[cslots[kt + 22], col] = (3.0 * e1) - (3.0 * e2) + e3 if n >= 3 * (p - 1) else nan

    # TRIX(15): one-bar rate of change of the third EMA of the chain on close
    p = 15
    t1 = _ema_link(fst, jt + T_TRIX_E1, n, 0, c, p)
    t2 = _ema_link(fst, jt + T_TRIX_E2, n, p - 1, t1, p)
    t3 = _ema_link(fst, jt + T_TRIX_E3, n, 2 * (p - 1), t2, p)
    if n >= 3 * (p - 1) + 1:
        prev_t3 = fst[jt + T_TRIX_PREV]
        out[cslots[kt + 23], col] = ((t3 / prev_t3) - 1.0) * 100.0 if prev_t3 != 0.0 else 0.0
    else:
        out[cslots[kt + 23], col] = nan
    fst[jt + T_TRIX_PREV] = t3

    # PPO(12, 26, SMA): both SMAs as running sums from the anchor (checked: ta-lib 0.8 does not start
    # the fast sum at the slow SMA's first bar, unlike MACD's EMAs)
    slow = _sma(fst, jt + T_PPO_SLOW, closes, 0, RM, n, c, 26)
    fast = _sma(fst, jt + T_PPO_FAST, closes, 0, RM, n, c, 12)
    if n >= 25:
        zero = -_TA_EPSILON < slow < _TA_EPSILON  # TA_IS_ZERO
        out[cslots[kt + 24], col] = 0.0 if zero else ((fast - slow) / slow) * 100.0
    else:
        out[cslots[kt + 24], col] = nan


@njit_no_nrt(_PART_SIG, cache=True, error_model="numpy")
def _native_talib_2(
    fst: np.ndarray, jt: int, ring: np.ndarray, n: int, o: float, h: float, lo: float, c: float, v: float,
    out: np.ndarray, cslots: np.ndarray, kt: int, col: int,
) -> None:  # fmt: skip
    """STOCH .. ATR/NATR of :func:`_native_talib` (the second of its three compiled parts)."""
    RM = ring.shape[1] - 1
    nan = math.nan
    pc = ring[CH_CLOSE, (n - 1) & RM] if n >= 1 else nan
    ad = fst[jt + T_AD]  # written by part 1 for this bar

    # STOCH(14, 3, SMA, 3, SMA): fast %K = ((c - ll) / (hh - ll)) * 100 (0 for a zero range) from bar
    # 13; slow %K = its 3-bar SMA (running sum from bar 13); slow %D = the 3-bar SMA of slow %K (from
    # bar 15); both outputs from bar 17, TA-Lib's lookback
    p = 14
    sk = nan
    sd = nan
    if n >= p - 1:
        hh = fst[jt + T_HH14]  # swept by part 1 for this bar
        ll = fst[jt + T_LL14]
        diff = hh - ll
        fk = ((c - ll) / diff) * 100.0 if diff != 0.0 else 0.0
        tot = fst[jt + T_STOCH_FK_SUM] + fk
        if n >= p + 1:
            sk = tot / 3
            tot = tot - fst[jt + T_STOCH_FK2]
        fst[jt + T_STOCH_FK_SUM] = tot
        fst[jt + T_STOCH_FK2] = fst[jt + T_STOCH_FK1]
        fst[jt + T_STOCH_FK1] = fk
        if n >= p + 1:
            tot = fst[jt + T_STOCH_SK_SUM] + sk
            if n >= p + 3:
                sd = tot / 3
                tot = tot - fst[jt + T_STOCH_SK2]
            fst[jt + T_STOCH_SK_SUM] = tot
            fst[jt + T_STOCH_SK2] = fst[jt + T_STOCH_SK1]
            fst[jt + T_STOCH_SK1] = sk
    out[cslots[kt + 25], col] = sk if n >= p + 3 else nan
    out[cslots[kt + 26], col] = sd

    # CCI(20): TA-Lib keeps the typical prices in a circular buffer indexed by bar % 20 (from the
    # anchor) and sums it in BUFFER order, not time order (time order differs in the last bit), both
    # for the mean and for the mean absolute deviation; so does this replica (``fst[jt + T_CCI0:]``).
    p = _CCI_P
    tp = (h + lo + c) / 3.0
    fst[jt + T_CCI0 + n % p] = tp  # the same buffer, so the sums below run in its order
    if n >= p - 1:
        tot = 0.0
        for j in range(p):
            tot += fst[jt + T_CCI0 + j]
        avg = tot / p
        dev = 0.0
        for j in range(p):
            dev += abs(fst[jt + T_CCI0 + j] - avg)
        x = tp - avg
        # ta-lib 0.8.1 (binary): TA_IS_ZERO_SCALED(v, |avg|) = |v| <= 1e-14 * |avg| on the distance and
        # on the mean deviation, then a guard on the divisor: flat typical prices leave a residue
        # that an exact != 0 test divides into ~1e-11 (found on tick-sized prices)
        md = dev / p
        scale = _TA_EPSILON * abs(avg)
        den = md * 0.015
        if abs(x) <= scale or abs(md) <= scale or den == 0.0:
            out[cslots[kt + 27], col] = 0.0
        else:
            out[cslots[kt + 27], col] = x / den
    else:
        out[cslots[kt + 27], col] = nan

    # ULTOSC(7, 14, 28): each period's sums are primed over the period - 1 bars before bar 28 (not
    # from the anchor), then slide: add this bar, emit, subtract the bar leaving the window
    if n >= 1:
        bp, tr = _ult_terms(ring, RM, n)
        for i in range(3):
            if n >= 28 - _ULT_PERIODS[i] + 1:
                fst[jt + T_ULT_A0 + i] += bp
                fst[jt + T_ULT_A0 + 3 + i] += tr
    if n >= 28:
        o = 0.0
        a = fst[jt + T_ULT_A0]
        b = fst[jt + T_ULT_A0 + 3]
        if b != 0.0:
            o += 4.0 * (a / b)
        a = fst[jt + T_ULT_A0 + 1]
        b = fst[jt + T_ULT_A0 + 4]
        if b != 0.0:
            o += 2.0 * (a / b)
        a = fst[jt + T_ULT_A0 + 2]
        b = fst[jt + T_ULT_A0 + 5]
        if b != 0.0:
            o += a / b
        out[cslots[kt + 28], col] = 100.0 * (o / 7.0)
        for i in range(3):
            bp, tr = _ult_terms(ring, RM, n - _ULT_PERIODS[i] + 1)
            fst[jt + T_ULT_A0 + i] -= bp
            fst[jt + T_ULT_A0 + 3 + i] -= tr
    else:
        out[cslots[kt + 28], col] = nan

    # ADOSC(3, 10): EMAs of AD seeded with the anchor's AD (not a mean), updated as
    # fma(1 - k, ema, k * ad) (the C library's fused form: checked, the unfused one differs)
    fk = 2.0 / (3 + 1)
    sk = 2.0 / (10 + 1)
    if n == 0:
        fe = ad
        se = ad
    else:
        fe = _fma(1.0 - fk, fst[jt + T_ADOSC_FAST], fk * ad)
        se = _fma(1.0 - sk, fst[jt + T_ADOSC_SLOW], sk * ad)
    fst[jt + T_ADOSC_FAST] = fe
    fst[jt + T_ADOSC_SLOW] = se
    out[cslots[kt + 29], col] = fe - se if n >= 9 else nan

    # RSI(14), RSI(7) as ta-lib 0.8.1's binary computes them (the C source divides by the period;
    # the shipped build multiplies by 1/period, adds gains branch-free, and tests sum > 0 exactly)
    rsi14 = nan
    rsi7 = nan
    if n >= 1:
        d = c - pc
        rsi14 = _rsi(fst, jt + T_RSI14_G, n, d, 14)
        rsi7 = _rsi(fst, jt + T_RSI7_G, n, d, 7)
    out[cslots[kt + 30], col] = rsi14
    out[cslots[kt + 31], col] = rsi7

    # STOCHRSI(14, 5, 3 SMA) = STOCHF on the RSI(14) series (first RSI at bar 14): fast %K =
    # ((rsi - lo) / (hi - lo)) * 100 over the last 5 RSI, 0 when TA_IS_ZERO_SCALED(hi - lo, |hi| + |lo|)
    # (the binary's test); fast %D = the 3-bar SMA of %K as a running sum from the first %K (bar 18)
    fk = nan
    fd = nan
    if n >= 14:
        fst[jt + T_SRSI_H + n % 5] = rsi14
    if n >= 18:
        hi = rsi14
        lw = rsi14
        for i in range(5):
            x = fst[jt + T_SRSI_H + i]
            hi = max(hi, x)
            lw = min(lw, x)
        diff = hi - lw
        fk = ((rsi14 - lw) / diff) * 100.0 if abs(diff) > (abs(hi) + abs(lw)) * _TA_EPSILON else 0.0
        tot = fst[jt + T_SRSI_SUM] + fk
        if n >= 20:
            fd = tot / 3
            tot = tot - fst[jt + T_SRSI_K2]
        fst[jt + T_SRSI_SUM] = tot
        fst[jt + T_SRSI_K2] = fst[jt + T_SRSI_K1]
        fst[jt + T_SRSI_K1] = fk
    out[cslots[kt + 38], col] = fk if n >= 20 else nan
    out[cslots[kt + 39], col] = fd

    # ADX / ADXR / +DI / -DI (14): Wilder-smoothed DM and TR (x - x/14 + new), DI = (DM/TR) * 100
    # (0 unless TR > 0), DX = (|-DI - +DI| / (-DI + +DI)) * 100 (0 unless the sum > 0), ADX = the mean
    # of the first 14 DX, then (adx * 13 + dx) / 14; ADXR = (adx + adx 13 bars earlier) / 2
    p = _ADX_P
    pdi = nan
    mdi = nan
    adx = nan
    adxr = nan
    atr = nan
    if n >= 1:
        dp = h - ring[CH_HIGH, (n - 1) & RM]
        dm = ring[CH_LOW, (n - 1) & RM] - lo
        tr = _true_range(h, lo, pc)
        pdm = fst[jt + T_PDM]
        mdm = fst[jt + T_MDM]
        trs = fst[jt + T_TRS]
        if n >= p:
            pdm = pdm - pdm / p
            mdm = mdm - mdm / p
        if dm > 0.0 and dp < dm:
            mdm = mdm + dm
        elif dp > 0.0 and dp > dm:
            pdm = pdm + dp
        trs = (trs - trs / p) + tr if n >= p else trs + tr
        fst[jt + T_PDM] = pdm
        fst[jt + T_MDM] = mdm
        fst[jt + T_TRS] = trs
        if n >= p:
            if trs > 0.0:
                pdi = (pdm / trs) * 100.0
                mdi = (mdm / trs) * 100.0
            else:
                pdi = 0.0
                mdi = 0.0
            tot = mdi + pdi
            dx = (abs(mdi - pdi) / tot) * 100.0 if tot > 0.0 else 0.0
            acc = fst[jt + T_ADX]
            if n < 2 * p - 1:
                fst[jt + T_ADX] = acc + dx
            else:
                adx = (acc + dx) / p if n == 2 * p - 1 else ((acc * (p - 1)) + dx) / p
                fst[jt + T_ADX] = adx
                slot = jt + T_ADXH + n % p
                if n >= 3 * p - 2:
                    adxr = (adx + fst[jt + T_ADXH + (n + 1) % p]) / 2.0
                fst[slot] = adx
        atr = _atr(fst, jt + T_ATR, n, tr, p)  # ATR(14): the mean of the first 14 TRs, then fused
    out[cslots[kt + 32], col] = adx
    out[cslots[kt + 33], col] = adxr
    out[cslots[kt + 34], col] = pdi
    out[cslots[kt + 35], col] = mdi
    out[cslots[kt + 36], col] = atr
    out[cslots[kt + 37], col] = (atr / c) * 100.0  # close > 0 is validated at the input


@njit_no_nrt(_PART_SIG, cache=True, error_model="numpy")
def _native_talib_3(
    fst: np.ndarray, jt: int, ring: np.ndarray, n: int, o: float, h: float, lo: float, c: float, v: float,
    out: np.ndarray, cslots: np.ndarray, kt: int, col: int,
) -> None:  # fmt: skip
    """MFI .. BBANDS, Ichimoku and the candle patterns of :func:`_native_talib` (its third part)."""
    RM = ring.shape[1] - 1
    nan = math.nan

    # MFI(14), ta-lib 0.8.1's loop: the flow of a bar whose typical price moved by no more than
    # 1e-14 * (|tp| + |prev tp|) is 0; a run of 14 empty bars resets both sums to exactly 0 (they
    # carry rounding residue otherwise); the positive sum is clamped into [0, total]
    tp = ((h + lo) + c) / 3.0
    mfi = nan
    if n >= 1:
        p = _MFI_P
        slot = (n - 1) % p
        ps = fst[jt + T_MFI_PS]
        ns = fst[jt + T_MFI_NS]
        if n > p:
            ps -= fst[jt + T_MFI_POS0 + slot]
            ns -= fst[jt + T_MFI_NEG0 + slot]
        prev = fst[jt + T_MFI_PREV]
        d = tp - prev
        mf = 0.0 if abs(d) <= _TA_EPSILON * (abs(tp) + abs(prev)) else tp * v
        pf = 0.0 if d < 0.0 else mf
        nf = mf if d < 0.0 else 0.0
        fst[jt + T_MFI_POS0 + slot] = pf
        fst[jt + T_MFI_NEG0 + slot] = nf
        ps += pf
        ns += nf
        run = fst[jt + T_MFI_NULL] + 1.0 if mf == 0.0 else 0.0
        if run >= p:
            run = float(p)
            ps = 0.0
            ns = 0.0
        fst[jt + T_MFI_NULL] = run
        fst[jt + T_MFI_PS] = ps
        fst[jt + T_MFI_NS] = ns
        if n >= p:
            tot = ps + ns
            pcl = 0.0 if ps < 0.0 else (tot if ps > tot else ps)
            mfi = 0.0 if tot <= 0.0 else 100.0 * (pcl / tot)
    fst[jt + T_MFI_PREV] = tp
    out[cslots[kt + 40], col] = mfi

    # WMA(20), ta-lib 0.8.1's binary: the published running sums (add x * 20 to the weighted sum, emit
    # it / 210, subtract the plain sum), but every 8 * 20 bars from the first output the window is
    # summed afresh (weights 1..20, oldest first) to shed the drift: the source's loop alone differs
    # in the last bit from bar 178 on
    p = _WMA_P
    wsum = fst[jt + T_WMA_SUM]
    psub = fst[jt + T_WMA_SUB]
    wma = nan
    if n < p - 1:
        psub = psub + c
        wsum = wsum + c * (n + 1)
    else:
        if (n - (p - 1)) % (8 * p) == 8 * p - 1:
            psub = 0.0
            wsum = 0.0
            for i in range(1, p + 1):
                x = ring[CH_CLOSE, (n - p + i) & RM]
                psub = psub + x
                wsum = wsum + x * i
        else:
            psub = psub + c
            if n >= p:
                psub = psub - ring[CH_CLOSE, (n - p) & RM]
            wsum = c * p + wsum
        wma = wsum / ((float(p + 1) * float(p)) * 0.5)
        wsum = wsum - psub
    fst[jt + T_WMA_SUM] = wsum
    fst[jt + T_WMA_SUB] = psub
    out[cslots[kt + 41], col] = wma

    # LINEARREG_SLOPE(14), ta-lib 0.8.1's binary: O(1) sliding sums (every weight + 1: add sum y; the
    # leaving bar goes with weight 14), summed afresh every 32 * 14 bars after the first output and
    # whenever |14 * y_old| > 100 * sum |y| (a drift guard); slope = (14 sxy - sy sx) / divisor
    p = _LRS_P
    lrs = nan
    if n >= p - 1:
        sx = 0.5 * float((p - 1) * p)
        div = sx * sx - ((float(2 * p - 1) * float((p - 1) * p)) / 6.0) * p
        sy = fst[jt + T_LRS_Y]
        sxy = fst[jt + T_LRS_XY]
        sa = fst[jt + T_LRS_A]
        cnt = fst[jt + T_LRS_CNT]
        fresh = n == p - 1
        if not fresh:
            cnt -= 1.0
            old = ring[CH_CLOSE, (n - p) & RM]
            if cnt == 0.0:
                fresh = True
            else:
                sa = (sa - abs(old)) + abs(c)
                if abs(p * old) > sa * 100.0:
                    fresh = True
                else:
                    sxy = sxy + sy
                    sy = sy - old
                    sxy = sxy - p * old
                    sy = sy + c
        if fresh:
            sy = 0.0
            sxy = 0.0
            sa = 0.0
            w = float(p - 1)
            for i in range(n - p + 1, n + 1):
                x = ring[CH_CLOSE, i & RM]
                sy += x
                sa += abs(x)
                sxy += x * w
                w -= 1.0
            cnt = float(32 * p)
        fst[jt + T_LRS_Y] = sy
        fst[jt + T_LRS_XY] = sxy
        fst[jt + T_LRS_A] = sa
        fst[jt + T_LRS_CNT] = cnt
        lrs = (p * sxy - sy * sx) / div
    out[cslots[kt + 42], col] = lrs

    out[cslots[kt + 43], col] = _kama(fst, jt + T_KAMA_SUM, ring, RM, n, c)
    out[cslots[kt + 44], col] = _t3(fst, jt + T_T3_E1, n, c)
    out[cslots[kt + 45], col] = _sar(fst, jt + T_SAR_LONG, ring, RM, n, h, lo)
    sd = _stddev(_var(fst, jt + T_VAR_SHIFT, ring[CH_CLOSE], 0, RM, n, c), n, _VAR_P)
    out[cslots[kt + 46], col] = sd
    # BBANDS(20, 2, 2, SMA): ta-lib 0.8's SMA fast path runs the same running sum as SMA(20) and the
    # same shifted-data variance as STDDEV(20) in one pass (nothing of it fused in the .fma clone:
    # checked, 0 differences unfused, 26 per 30k bars with the seeding squares fused), then
    # middle +/- sd * 2 (the product is exact, so the clone's fusing cannot change it).
    mid = out[cslots[kt + 0], col]
    dev = sd * 2.0
    out[cslots[kt + 47], col] = mid + dev
    out[cslots[kt + 48], col] = mid
    out[cslots[kt + 49], col] = mid - dev

    _ichimoku(fst, jt, ring, RM, n, out, cslots, kt + N_NATIVE, col)

    # the 13 candle patterns (their own module: TA-Lib's candle-settings sums)
    _candles(
        fst,
        jt + T_CDL0,
        ring[CH_OPEN],
        ring[CH_HIGH],
        ring[CH_LOW],
        ring[CH_CLOSE],
        RM,
        n,
        out,
        cslots,
        kt + K_CDL0,
        col,
    )


@njit_no_nrt("void(float64[::1], int64, int64, float64, float64, float64)", cache=True, error_model="numpy")
def _context_bar(fst: np.ndarray, j: int, nc: int, h: float, lo: float, c: float) -> None:
    """Fold context bar ``nc`` (its high, low and close) into the NATIVE_CONTEXT indicators of the
    block at ``fst[j:]`` and store their outputs at ``fst[j + C_OUT:]``.

    The very replicas of the 1m indicators (the same helpers, the same operations), run over the
    context bar series: bit-identical to TA-Lib's Function API on that series from its first bar.
    Compiled on its own (once per closed context bar, not per 1m bar), so the step grows little.
    """
    nan = math.nan
    rm = _CTX_RING - 1
    ring = j + C_RING
    fst[ring + (nc & rm)] = c
    rsi = nan
    atr = nan
    roc = nan
    if nc >= 1:
        pc = fst[ring + ((nc - 1) & rm)]
        rsi = _rsi(fst, j + C_RSI_G, nc, c - pc, _CTX_RSI_P)
        atr = _atr(fst, j + C_ATR, nc, _true_range(h, lo, pc), _CTX_ATR_P)
        roc = _roc(c, pc)
    ema = _ema(fst, j + C_EMA, nc, c, _CTX_EMA_P)
    mid = _sma(fst, j + C_SMA, fst, ring, rm, nc, c, _CTX_BB_P)
    dev = _stddev(_var(fst, j + C_VAR, fst, ring, rm, nc, c), nc, _CTX_BB_P) * 2.0
    out = j + C_OUT
    fst[out] = rsi
    fst[out + 1] = (atr / c) * 100.0  # NATR; close > 0 is validated at the input
    fst[out + 2] = roc
    fst[out + 3] = atr
    fst[out + 4] = ema
    fst[out + 5] = mid + dev
    fst[out + 6] = mid - dev


@njit(cache=True, inline="always")
def _welford_slide(fst: np.ndarray, j: int, x_new: float, x_old: float, count: int, window: int) -> float:
    """Push ``x_new`` into a sliding window of ``window`` values (``x_old`` leaves once full).

    ``count`` is the number of values pushed so far including ``x_new``. Returns the z-score of
    ``x_new`` against the window (population std) once the window is full, else NaN. The sliding
    Welford update avoids the cancellation of running sums of squares.
    """
    mean = fst[j]
    m2 = fst[j + 1]
    if count <= window:
        d = x_new - mean
        mean = mean + d / count
        m2 = m2 + d * (x_new - mean)
    else:
        delta = x_new - x_old
        old_mean = mean
        mean = old_mean + delta / window
        m2 = m2 + delta * (x_new - mean + x_old - old_mean)
    fst[j] = mean
    fst[j + 1] = m2
    if count < window or m2 <= 0.0:
        return math.nan
    z: float = (x_new - mean) / math.sqrt(m2 / window)
    return z


@njit(cache=True, inline="always")
def _weighted_welford(fst: np.ndarray, j: int, w: float, x: float) -> None:
    total = fst[j] + w
    if total <= 0.0:
        return
    d = x - fst[j + 1]
    fst[j + 1] = fst[j + 1] + (w / total) * d
    fst[j + 2] = fst[j + 2] + w * d * (x - fst[j + 1])
    fst[j] = total


@njit(cache=True, error_model="numpy", inline="always")
def step(
    ist: np.ndarray,
    fst: np.ndarray,
    ring: np.ndarray,
    t_min: int,
    o: float,
    h: float,
    lo: float,
    c: float,
    v: float,
    hurst_window: int,
    hurst_lags: np.ndarray,
    zwins: np.ndarray,
    zshort: int,
    horizons: np.ndarray,
    rlags: np.ndarray,
    tfs: np.ndarray,
    kalman: np.ndarray,
    session: np.ndarray,
    ffd_w: np.ndarray,
    do_ffd: bool,
    cslots: np.ndarray,
    out: np.ndarray,
    col: int,
    fin_bars: np.ndarray,
    fin_count: np.ndarray,
) -> int:
    """Advance the state by one closed 1m bar opened at epoch minute ``t_min``; write its outputs.

    Outputs go to ``out[cslots[k], col]``. Context bars finalised by this bar are written to
    ``fin_bars[tf_index, j, :] = (o, h, l, c, v)`` with ``fin_count[tf_index]`` of them (0, 1 or 2).
    FFD is written only when ``do_ffd`` (batch computes it in a vectorised pass with the same order).
    Returns the number of context bars finalised by this bar (all timeframes).
    """
    RM = ring.shape[1] - 1  # the ring length is a power of two: index with a mask, not a division
    n = ist[I_COUNT]  # index of this bar
    pos = n & RM
    lc = math.log(c)
    local = t_min + IST_OFFSET_MINUTES
    day = local // MINUTES_PER_DAY
    minute = local - day * MINUTES_PER_DAY

    # ---- session VWAP (reset at each IST date) ----
    if n == 0 or day != ist[I_DAY]:
        for j in range(6):
            fst[j] = 0.0
        ist[I_DAY] = day
    tp = (h + lo + c) / 3.0
    _weighted_welford(fst, F_VW_W, v, tp)
    _weighted_welford(fst, F_EQ_W, 1.0, tp)
    base = F_VW_W if fst[F_VW_W] > 0.0 else F_EQ_W
    out[cslots[K_VWAP], col] = fst[base + 1]
    var = fst[base + 2] / fst[base]
    out[cslots[K_VWAP_SD], col] = math.sqrt(var) if var > 0.0 else 0.0

    # ---- Kalman local linear trend on log close ----
    q_lvl = kalman[0]
    q_slope = kalman[1]
    r = kalman[2]
    if n == 0:
        fst[F_KF_LVL] = lc
        fst[F_KF_SLOPE] = 0.0
        fst[F_KF_P00] = r
        fst[F_KF_P01] = 0.0
        fst[F_KF_P11] = r
    else:
        p00 = fst[F_KF_P00]
        p01 = fst[F_KF_P01]
        p11 = fst[F_KF_P11]
        lvl_p = fst[F_KF_LVL] + fst[F_KF_SLOPE]
        p00p = p00 + 2.0 * p01 + p11 + q_lvl
        p01p = p01 + p11
        p11p = p11 + q_slope
        s = p00p + r
        k0 = p00p / s
        k1 = p01p / s
        y = lc - lvl_p
        fst[F_KF_LVL] = lvl_p + k0 * y
        fst[F_KF_SLOPE] = fst[F_KF_SLOPE] + k1 * y
        fst[F_KF_P00] = (1.0 - k0) * p00p
        fst[F_KF_P01] = (1.0 - k0) * p01p
        fst[F_KF_P11] = p11p - k1 * p01p
    out[cslots[K_KF_PRICE], col] = math.exp(fst[F_KF_LVL])
    out[cslots[K_KF_SLOPE], col] = fst[F_KF_SLOPE]

    # ---- ring buffer ----
    ring[CH_LOGCLOSE, pos] = lc
    ring[CH_CLOSE, pos] = c
    ring[CH_OPEN, pos] = o
    ring[CH_VOLUME, pos] = v
    ring[CH_HIGH, pos] = h
    ring[CH_LOW, pos] = lo
    ret1 = lc - ring[CH_LOGCLOSE, (n - 1) & RM] if n >= 1 else np.nan
    ring[CH_RET, pos] = ret1

    # ---- Hurst: slope of log sd(q-lag differences) on log q, sliding windows of hurst_window ----
    n_lags = hurst_lags.shape[0]
    # log q of each lag, computed once at bar 0 and kept in fst (the same libm call, once per lag)
    jq = F_HEADER + 2 * n_lags + 2 * (zwins.shape[0] + 2) + 5 * tfs.shape[0] + T_SIZE
    if n == 0:
        for i in range(n_lags):
            fst[jq + i] = math.log(hurst_lags[i])
    all_full = True
    sx = 0.0
    sy = 0.0
    sxx = 0.0
    sxy = 0.0
    for i in range(n_lags):
        q = hurst_lags[i]
        j = F_HEADER + 2 * i
        if n >= q:
            count = n - q + 1
            d_new = lc - ring[CH_LOGCLOSE, (n - q) & RM]
            d_old = 0.0
            if count > hurst_window:
                m = n - hurst_window
                d_old = ring[CH_LOGCLOSE, m & RM] - ring[CH_LOGCLOSE, (m - q) & RM]
            _welford_slide(fst, j, d_new, d_old, count, hurst_window)
            if count < hurst_window or fst[j + 1] <= 0.0:
                all_full = False
            else:
                x = fst[jq + i]
                yv = 0.5 * math.log(fst[j + 1] / hurst_window)
                sx += x
                sy += yv
                sxx += x * x
                sxy += x * yv
        else:
            all_full = False
    if all_full:
        denom = n_lags * sxx - sx * sx
        out[cslots[K_HURST], col] = (n_lags * sxy - sx * sy) / denom
    else:
        out[cslots[K_HURST], col] = np.nan

    out[cslots[K_SESSION_MINUTE], col] = float(minute - session[0])
    out[cslots[K_LOGCLOSE], col] = lc

    # ---- FFD (window-pure FIR on log close; same summation order as the batch kernel) ----
    if do_ffd:
        L = ffd_w.shape[0]
        if n >= L - 1:
            acc = 0.0
            for k in range(L):
                acc += ffd_w[k] * ring[CH_LOGCLOSE, (n - k) & RM]
            out[cslots[K_FFD], col] = acc
        else:
            out[cslots[K_FFD], col] = np.nan

    # ---- rolling z-scores (sliding Welford) ----
    kz = K_FIXED
    jz = F_HEADER + 2 * n_lags
    for i in range(zwins.shape[0]):
        w = zwins[i]
        old = ring[CH_CLOSE, (n - w) & RM] if n >= w else 0.0
        out[cslots[kz + i], col] = _welford_slide(fst, jz + 2 * i, c, old, n + 1, w)
    kz += zwins.shape[0]
    jz += 2 * zwins.shape[0]
    if n >= 1:
        old = ring[CH_RET, (n - zshort) & RM] if n > zshort else 0.0
        out[cslots[kz], col] = _welford_slide(fst, jz, ret1, old, n, zshort)
    else:
        out[cslots[kz], col] = np.nan
    old = ring[CH_VOLUME, (n - zshort) & RM] if n >= zshort else 0.0
    out[cslots[kz + 1], col] = _welford_slide(fst, jz + 2, v, old, n + 1, zshort)
    kz += 2

    # ---- returns and lags ----
    for i in range(horizons.shape[0]):
        hz = horizons[i]
        out[cslots[kz + i], col] = lc - ring[CH_LOGCLOSE, (n - hz) & RM] if n >= hz else np.nan
    kz += horizons.shape[0]
    for i in range(rlags.shape[0]):
        lg = rlags[i]
        out[cslots[kz + i], col] = ring[CH_RET, (n - lg) & RM] if n >= lg + 1 else np.nan
    kz += rlags.shape[0]

    # ---- session-aligned context bars (5/15/60m ...) and their indicators ----
    jb = F_HEADER + 2 * n_lags + 2 * (zwins.shape[0] + 2)
    day_start = t_min - minute
    s_open = day_start + session[0]
    s_close = day_start + session[1]
    n_tf = tfs.shape[0]
    jc = jq + n_lags
    kx = kz + N_NATIVE + N_ICHIMOKU
    if n == 0:  # no context bar has closed yet: its outputs are NaN
        for i in range(n_tf):
            for k in range(N_CONTEXT):
                fst[jc + C_SIZE * i + C_OUT + k] = math.nan
    for i in range(n_tf):
        m = tfs[i]
        fin_count[i] = 0
        bstart = s_open + ((t_min - s_open) // m) * m
        bend = bstart + m
        if bstart < s_close < bend:
            bend = s_close  # the last bar of the session is partial (e.g. 15:15-15:30 for 60m)
        jf = jb + 5 * i
        cur = ist[I_BUCKET0 + i]
        if cur != -1 and cur != bstart:
            _emit(fst, jf, fin_bars, fin_count, i)
            cur = -1
        if cur == -1:
            fst[jf] = o
            fst[jf + 1] = h
            fst[jf + 2] = lo
            fst[jf + 3] = c
            fst[jf + 4] = v
            cur = bstart
        else:
            fst[jf + 1] = max(fst[jf + 1], h)
            fst[jf + 2] = min(fst[jf + 2], lo)
            fst[jf + 3] = c
            fst[jf + 4] = fst[jf + 4] + v
        if t_min + 1 >= bend:  # this 1m bar closes at the bucket's end: the context bar is closed
            _emit(fst, jf, fin_bars, fin_count, i)
            cur = -1
        ist[I_BUCKET0 + i] = cur
        # the closed context bars (0, 1 or 2) in order, then the latest values into this 1m row: a
        # context value holds from the 1m bar that closes its context bar until the next one closes
        jci = jc + C_SIZE * i
        for e in range(fin_count[i]):
            nc = ist[I_BUCKET0 + n_tf + i]
            _context_bar(fst, jci, nc, fin_bars[i, e, 1], fin_bars[i, e, 2], fin_bars[i, e, 3])
            ist[I_BUCKET0 + n_tf + i] = nc + 1
        for k in range(N_CONTEXT):
            out[cslots[kx + N_CONTEXT * i + k], col] = fst[jci + C_OUT + k]

    # ---- simple TA-Lib indicators (NATIVE_TALIB) ----
    _native_talib(fst, jb + 5 * tfs.shape[0], ring, n, o, h, lo, c, v, out, cslots, kz, col)

    ist[I_COUNT] = n + 1
    ist[I_LAST_TIME] = t_min
    total = 0
    for i in range(tfs.shape[0]):
        total += fin_count[i]
    return total


def fold_scratch(n_tf: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``fin_bars`` / ``fin_count`` scratch :func:`fold` takes, for ``n_tf`` context timeframes."""
    return np.empty((n_tf, 2, 5)), np.zeros(n_tf, dtype=np.int64)


@njit(cache=True, inline="always")
def _emit(fst: np.ndarray, jf: int, fin_bars: np.ndarray, fin_count: np.ndarray, i: int) -> None:
    k = fin_count[i]
    for f in range(5):
        fin_bars[i, k, f] = fst[jf + f]
    fin_count[i] = k + 1


@njit_no_nrt(cache=True, error_model="numpy")
def fold(
    ist: np.ndarray,
    fst: np.ndarray,
    ring: np.ndarray,
    t_min: np.ndarray,
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    v: np.ndarray,
    hurst_window: int,
    hurst_lags: np.ndarray,
    zwins: np.ndarray,
    zshort: int,
    horizons: np.ndarray,
    rlags: np.ndarray,
    tfs: np.ndarray,
    kalman: np.ndarray,
    session: np.ndarray,
    ffd_w: np.ndarray,
    cslots: np.ndarray,
    out: np.ndarray,
    htf_bars: np.ndarray,
    htf_rows: np.ndarray,
    htf_n: np.ndarray,
    fin_bars: np.ndarray,
    fin_count: np.ndarray,
) -> None:
    """Run :func:`step` over every bar (FFD excluded); collect finalised context bars.

    ``htf_bars[tf, k, :]`` is the k-th finalised context bar of timeframe ``tf`` and ``htf_rows[tf, k]``
    the input row at which it closed (became usable); ``htf_n[tf]`` counts them. ``fin_bars``
    (``(n_tf, 2, 5)``) and ``fin_count`` (``(n_tf,)`` int64) are scratch for one bar's finalised
    context bars, passed in so the fold allocates nothing (see :func:`fold_scratch`).
    """
    n_tf = tfs.shape[0]
    for r in range(t_min.shape[0]):
        step(
            ist,
            fst,
            ring,
            t_min[r],
            o[r],
            h[r],
            lo[r],
            c[r],
            v[r],
            hurst_window,
            hurst_lags,
            zwins,
            zshort,
            horizons,
            rlags,
            tfs,
            kalman,
            session,
            ffd_w,
            False,
            cslots,
            out,
            r,
            fin_bars,
            fin_count,
        )
        for i in range(n_tf):
            for j in range(fin_count[i]):
                k = htf_n[i]
                for f in range(5):
                    htf_bars[i, k, f] = fin_bars[i, j, f]
                htf_rows[i, k] = r
                htf_n[i] = k + 1


@njit_no_nrt(cache=True, error_model="numpy")
def step_derive(
    ist: np.ndarray,
    fst: np.ndarray,
    ring: np.ndarray,
    t_min: int,
    o: float,
    h: float,
    lo: float,
    c: float,
    v: float,
    hurst_window: int,
    hurst_lags: np.ndarray,
    zwins: np.ndarray,
    zshort: int,
    horizons: np.ndarray,
    rlags: np.ndarray,
    tfs: np.ndarray,
    kalman: np.ndarray,
    session: np.ndarray,
    ffd_w: np.ndarray,
    cslots: np.ndarray,
    col: np.ndarray,
    fin_bars: np.ndarray,
    fin_count: np.ndarray,
    ops: np.ndarray,
    consts: np.ndarray,
    warm: np.ndarray,
    whole: bool,
    defer: bool,
) -> int:
    """Live: :func:`step` (with FFD) on column 0 of ``col``, then the derived features and warm-up mask
    (:func:`derived.apply_derived`) in the same native call.

    One dispatch from Python per bar instead of two. With ``defer`` (a layout with context calls left to
    TA-Lib handles, none with the default catalog), a bar that finalised context bars (return value
    > 0) skips the derived kernel: the caller first updates the context TA-Lib handles, then applies
    it. With ``whole`` False only the step without FFD runs: :func:`step_many` computes FFD and the
    derived features for all its instruments afterwards.
    """
    bar_index = ist[I_COUNT]
    n_fin = step(
        ist, fst, ring, t_min, o, h, lo, c, v, hurst_window, hurst_lags, zwins, zshort, horizons, rlags,
        tfs, kalman, session, ffd_w, whole, cslots, col, 0, fin_bars, fin_count,
    )  # fmt: skip
    if whole and (n_fin == 0 or not defer):
        apply_derived(col, ops, consts, warm, bar_index)
    return n_fin


@njit(cache=True, inline="always")
def _ffd_at(w: np.ndarray, ring: np.ndarray, n: int, rm: int) -> float:
    """FFD of bar ``n`` from the ring (NaN before the window fills), summed k = 0 first as in :func:`step`."""
    L = w.shape[0]
    if n < L - 1:
        return math.nan
    acc = 0.0
    for k in range(L):
        acc += w[k] * ring[CH_LOGCLOSE, (n - k) & rm]
    return acc


@njit(cache=True, inline="always")
def _ffd_many(
    rows: np.ndarray, ist: np.ndarray, ring: np.ndarray, w: np.ndarray, col: np.ndarray, slot: int
) -> None:
    """FFD of the bar just folded into each bank row ``rows[j]``, four rows side by side.

    One row's sum is a chain of dependent additions (282 terms with the default spec), bound by the
    adder's latency; four independent chains interleave in the pipeline. Each still adds its own terms
    in the order k = 0, 1, ... of :func:`step`'s loop, so the values are the same bits.
    """
    L = w.shape[0]
    rm = ring.shape[2] - 1
    k = rows.shape[0]
    j = 0
    while j + 4 <= k:
        i0, i1, i2, i3 = rows[j], rows[j + 1], rows[j + 2], rows[j + 3]
        n0, n1, n2, n3 = (
            ist[i0, I_COUNT] - 1,
            ist[i1, I_COUNT] - 1,
            ist[i2, I_COUNT] - 1,
            ist[i3, I_COUNT] - 1,
        )
        if min(n0, n1, n2, n3) >= L - 1:
            a0 = a1 = a2 = a3 = 0.0
            for t in range(L):
                wt = w[t]
                a0 += wt * ring[i0, CH_LOGCLOSE, (n0 - t) & rm]
                a1 += wt * ring[i1, CH_LOGCLOSE, (n1 - t) & rm]
                a2 += wt * ring[i2, CH_LOGCLOSE, (n2 - t) & rm]
                a3 += wt * ring[i3, CH_LOGCLOSE, (n3 - t) & rm]
            col[i0, slot, 0] = a0
            col[i1, slot, 0] = a1
            col[i2, slot, 0] = a2
            col[i3, slot, 0] = a3
        else:
            for i in (i0, i1, i2, i3):
                col[i, slot, 0] = _ffd_at(w, ring[i], ist[i, I_COUNT] - 1, rm)
        j += 4
    while j < k:
        i = rows[j]
        col[i, slot, 0] = _ffd_at(w, ring[i], ist[i, I_COUNT] - 1, rm)
        j += 1


# No GIL: the bank steps a minute's rows in contiguous blocks on several threads (FeatureBank.run_on).
@njit_no_nrt(cache=True, error_model="numpy", nogil=True)
def step_many(
    rows: np.ndarray, t_min: np.ndarray, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray,
    v: np.ndarray, hurst_window: int, hurst_lags: np.ndarray, zwins: np.ndarray, zshort: int,
    horizons: np.ndarray, rlags: np.ndarray, tfs: np.ndarray, kalman: np.ndarray, session: np.ndarray,
    ffd_w: np.ndarray, cslots: np.ndarray, ist: np.ndarray, fst: np.ndarray, ring: np.ndarray,
    col: np.ndarray, fin_bars: np.ndarray, fin_count: np.ndarray, ops: np.ndarray, consts: np.ndarray,
    warm: np.ndarray, n_fin: np.ndarray, defer: bool,
) -> None:  # fmt: skip
    """:func:`step_derive` for bank row ``rows[j]`` with bar ``j``, for every ``j`` (the FeatureBank).

    It lives here, next to ``step``, on purpose: numba's on-disk cache of a function is invalidated by
    changes to ITS source file only, so a caller compiled in another module would keep running an
    old, inlined ``step`` after this file changed.

    Several threads may run it at once on disjoint ``rows`` (the bank's blocks): row ``rows[j]`` and
    ``n_fin[j]`` are the only state a ``j`` writes (:func:`_ffd_many` and the derived pass included:
    they visit the call's own rows), every other array is read only.
    """
    # The step without FFD for every row, then FFD for all rows together (:func:`_ffd_many`), then
    # the derived features and warm-up mask of the rows (with ``defer``: of those that closed no context
    # bar, as step_derive): the same values as step_derive row by row (FFD's slot is not a derived input; its warm-up equals its own NaN run).
    # ``whole`` is False, computed rather than written as a constant: a literal False would type as
    # Literal[bool] and compile a second specialisation of step_derive.
    whole = rows.shape[0] < 0
    for j in range(rows.shape[0]):
        i = rows[j]
        n_fin[j] = step_derive(
            ist[i], fst[i], ring[i], t_min[j], o[j], h[j], lo[j], c[j], v[j], hurst_window, hurst_lags,
            zwins, zshort, horizons, rlags, tfs, kalman, session, ffd_w, cslots, col[i], fin_bars[i],
            fin_count[i], ops, consts, warm, whole, defer,
        )  # fmt: skip
    _ffd_many(rows, ist, ring, ffd_w, col, cslots[K_FFD])
    for j in range(rows.shape[0]):
        if n_fin[j] == 0 or not defer:
            i = rows[j]
            apply_derived(col[i], ops, consts, warm, ist[i, I_COUNT] - 1)
