"""Report charts drawn with matplotlib's Agg canvas (no display, no pyplot global state), as PNG bytes."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

RUPEES = FuncFormatter(lambda value, _: f"{value:,.0f}")

GREEN, RED, BLUE, GREY = "#1a9850", "#d73027", "#2b6cb0", "#888888"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _figure(width: float = 9.0, height: float = 3.4) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _empty(fig: Figure, message: str) -> bytes:
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, color=GREY)
    ax.set_axis_off()
    return _png(fig)


def _ist(times: pd.Series) -> pd.DatetimeIndex:
    # matplotlib draws naive datetimes as given: show IST wall-clock times, as traders read them.
    return pd.DatetimeIndex(pd.to_datetime(times, utc=True)).tz_convert("Asia/Kolkata").tz_localize(None)


def equity_chart(equity: pd.DataFrame, capital: float) -> bytes:
    fig = _figure()
    if len(equity) < 2:
        return _empty(fig, "no closed trades: the equity curve is flat at the starting capital")
    ax = fig.add_subplot()
    ax.step(_ist(equity["time"]), equity["equity"], where="post", color=BLUE, linewidth=1.6)
    ax.axhline(capital, color=GREY, linewidth=0.8, linestyle="--", label="starting capital")
    ax.set_title("Equity (realized, after each trade)")
    ax.set_ylabel("rupees")
    ax.yaxis.set_major_formatter(RUPEES)
    ax.legend(loc="upper left", frameon=False)
    ax.grid(alpha=0.3)
    return _png(fig)


def sizing_chart(sized: pd.DataFrame, unsized: pd.DataFrame, capital: float) -> bytes:
    """Equity of the meta-sized run and of its unsized companion on one axis."""
    fig = _figure()
    if len(sized) < 2 and len(unsized) < 2:
        return _empty(fig, "no closed trades in either run")
    ax = fig.add_subplot()
    for frame, colour, label in ((unsized, GREY, "unsized"), (sized, BLUE, "meta-sized")):
        if len(frame):
            ax.step(
                _ist(frame["time"]), frame["equity"], where="post", color=colour, linewidth=1.6, label=label
            )
    ax.axhline(capital, color=GREY, linewidth=0.8, linestyle=":", label="starting capital")
    ax.set_title("Equity: meta-label sizing vs unsized (same signals, same prices)")
    ax.set_ylabel("rupees")
    ax.yaxis.set_major_formatter(RUPEES)
    ax.legend(loc="upper left", frameon=False)
    ax.grid(alpha=0.3)
    return _png(fig)


def underwater_chart(equity: pd.DataFrame) -> bytes:
    fig = _figure(height=2.8)
    if len(equity) < 2:
        return _empty(fig, "no drawdown: no closed trades")
    ax = fig.add_subplot()
    x = _ist(equity["time"])
    dd = 100.0 * equity["drawdown"].to_numpy(dtype=np.float64)
    ax.fill_between(x, dd, 0.0, step="post", color=RED, alpha=0.35)
    ax.step(x, dd, where="post", color=RED, linewidth=1.0)
    ax.set_title("Underwater: equity below its running peak")
    ax.set_ylabel("%")
    ax.set_ylim(top=0.0 if dd.min() < 0 else 1.0, bottom=min(dd.min() * 1.1, -0.1))
    ax.grid(alpha=0.3)
    return _png(fig)


def daily_chart(daily: pd.Series) -> bytes:
    fig = _figure()
    values = daily.to_numpy(dtype=np.float64)
    if not np.any(values):
        return _empty(fig, "no trade closed with a profit or a loss")
    ax = fig.add_subplot()
    labels = [str(d) for d in daily.index]
    ax.bar(range(len(values)), values, color=[GREEN if v >= 0 else RED for v in values])
    step = max(1, len(labels) // 12)
    ax.set_xticks(range(0, len(labels), step), labels[::step], rotation=30, ha="right", fontsize=8)
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.set_title("Daily net PnL (per IST session)")
    ax.set_ylabel("rupees")
    ax.yaxis.set_major_formatter(RUPEES)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def monthly_heatmap(monthly: pd.DataFrame) -> bytes:
    fig = _figure(height=1.2 + 0.5 * max(1, len(monthly)))
    if monthly.empty:
        return _empty(fig, "no sessions")
    ax = fig.add_subplot()
    values = 100.0 * monthly.to_numpy(dtype=np.float64)
    finite = values[np.isfinite(values)]
    bound = float(np.abs(finite).max()) if finite.size else 1.0
    bound = bound or 1.0
    image = ax.imshow(np.ma.masked_invalid(values), cmap="RdYlGn", vmin=-bound, vmax=bound, aspect="auto")
    ax.set_xticks(range(12), MONTHS)
    ax.set_yticks(range(len(monthly)), [str(y) for y in monthly.index])
    for (row, col), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(col, row, f"{value:.2f}%", ha="center", va="center", fontsize=8)
    ax.set_title("Monthly return on capital")
    fig.colorbar(image, ax=ax, label="%")
    return _png(fig)


def decile_chart(deciles: Sequence[Mapping[str, float]]) -> bytes:
    fig = _figure(width=9.0, height=3.6)
    if not deciles:
        return _empty(fig, "no trades to group by confidence")
    hit_ax, cal_ax = fig.subplots(1, 2)
    positions = [int(d["decile"]) for d in deciles]
    hit_ax.bar(positions, [100 * d["hit_rate"] for d in deciles], color=BLUE)
    hit_ax.set_xticks(positions, [str(p) for p in positions])
    hit_ax.axhline(50, color=GREY, linewidth=0.8, linestyle="--")
    hit_ax.set_ylim(0, 100)
    hit_ax.set_title("Hit rate (net > 0) by confidence decile")
    hit_ax.set_xlabel("decile (1 = least confident)")
    hit_ax.set_ylabel("%")
    conf = [d["confidence_mean"] for d in deciles]
    cal_ax.plot(
        [0, 1], [0, 1], color=GREY, linewidth=0.8, linestyle="--", label="perfect calibration (y = x)"
    )
    cal_ax.plot(conf, [d["pt_rate"] for d in deciles], marker="o", color=RED, label="profit target hit")
    lo, hi = min(conf), max(conf)
    pad = max(0.05, (hi - lo) * 0.2)
    cal_ax.set_xlim(max(0.0, lo - pad), min(1.0, hi + pad))
    cal_ax.set_ylim(0, 1)
    cal_ax.set_title("Calibration: confidence vs outcome")
    cal_ax.set_xlabel("mean confidence")
    cal_ax.set_ylabel("share of trades")
    cal_ax.legend(loc="upper left", frameon=False, fontsize=8)
    return _png(fig)


def importance_chart(importance: Sequence[tuple[str, float]]) -> bytes:
    fig = _figure(height=0.8 + 0.28 * max(1, len(importance)))
    ax = fig.add_subplot()
    names = [n for n, _ in importance][::-1]
    ax.barh(range(len(names)), [100 * v for _, v in importance][::-1], color=BLUE)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("% of total gain")
    ax.set_title("Feature importance")
    ax.tick_params(axis="y", labelsize=8)
    return _png(fig)


def parity_chart(parity: pd.DataFrame) -> bytes:
    fig = _figure(height=3.0)
    ax = fig.add_subplot()
    labels = [str(d) for d in parity["day"]]
    ax.bar(range(len(labels)), 100 * parity["direction_agree"].to_numpy(dtype=np.float64), color=GREEN)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylim(0, 105)
    ax.set_ylabel("direction agreement %")
    ax.set_title("Live vs historical signals on the same bars")
    ax.tick_params(axis="x", rotation=30, labelsize=8)
    return _png(fig)


def regime_chart(by_regime: pd.DataFrame) -> bytes:
    """Hit rate and net PnL per regime state at entry (0 = calmest filtered HMM state)."""
    fig = _figure(width=9.0, height=3.4)
    if by_regime.empty:
        return _empty(fig, "no trades with a regime state")
    hit_ax, net_ax = fig.subplots(1, 2)
    labels = [str(s) for s in by_regime["regime_state"]]
    positions = list(range(len(labels)))
    hit_ax.bar(positions, 100 * by_regime["hit_rate"].to_numpy(dtype=float), color=BLUE)
    hit_ax.axhline(50, color=GREY, linewidth=0.8, linestyle="--")
    hit_ax.set_xticks(positions, labels)
    hit_ax.set_ylim(0, 100)
    hit_ax.set_title("Hit rate (net > 0) by regime at entry")
    hit_ax.set_xlabel("regime state (0 = calmest)")
    hit_ax.set_ylabel("%")
    for x, n in zip(positions, by_regime["trades"], strict=True):
        hit_ax.annotate(
            f"{int(n)} trade{'' if int(n) == 1 else 's'}", (x, 2), ha="center", fontsize=8, color="white"
        )
    net = by_regime["net"].to_numpy(dtype=float)
    net_ax.bar(positions, net, color=[GREEN if v >= 0 else RED for v in net])
    net_ax.axhline(0, color=GREY, linewidth=0.8)
    net_ax.set_xticks(positions, labels)
    net_ax.set_title("Net PnL by regime at entry")
    net_ax.set_xlabel("regime state (0 = calmest)")
    net_ax.set_ylabel("Rs")
    return _png(fig)
