"""The report page: one HTML file with every chart embedded as a data URI (it opens anywhere, offline,
with no script), plus the same charts as PNG files next to it."""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from tickwise.adapters.report import charts
from tickwise.domain.time import IST
from tickwise.ports.reports import ReportData, ReportFiles

METRICS: tuple[tuple[str, str, str], ...] = (
    ("net_pnl", "Net PnL", "inr"),
    ("return_on_capital", "Return on capital", "pct"),
    ("gross_pnl", "Gross PnL", "inr"),
    ("charges", "Charges (brokerage, STT, exchange, SEBI, stamp, GST)", "inr"),
    ("slippage", "Slippage", "inr"),
    ("costs_share_of_gross", "Costs as share of gross", "pct"),
    ("trades", "Trades", "int"),
    ("trades_per_day", "Trades per session", "num"),
    ("sessions", "Sessions", "int"),
    ("hit_rate", "Hit rate (net > 0)", "pct"),
    ("avg_win", "Average win", "inr"),
    ("avg_loss", "Average loss", "inr"),
    ("profit_factor", "Profit factor", "num"),
    ("sharpe", "Sharpe (daily, annualised)", "num"),
    ("sortino", "Sortino (daily, annualised)", "num"),
    ("max_drawdown", "Max drawdown", "pct"),
    ("max_drawdown_sessions", "Longest drawdown (sessions)", "int"),
    ("exposure", "Exposure (time with a position)", "pct"),
    ("turnover", "Turnover", "inr"),
)

IN_SAMPLE_WARNING = {
    "IN-SAMPLE": "These numbers are IN-SAMPLE.",
    "partly in-sample": "These numbers are partly IN-SAMPLE.",
}
EXIT_ORDER = ("pt", "sl", "horizon", "square_off", "risk")

CSS = """
body { font-family: -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif; margin: 0;
       color: #1a202c; background: #f7f8fa; }
header { background: #1a365d; color: white; padding: 18px 32px; }
header h1 { margin: 0 0 6px 0; font-size: 22px; }
header p { margin: 2px 0; opacity: 0.9; }
main { max-width: 1000px; margin: 0 auto; padding: 12px 24px 40px; }
section { background: white; border-radius: 6px; padding: 14px 20px; margin: 16px 0;
          box-shadow: 0 1px 3px rgba(0,0,0,0.08); }
h2 { font-size: 17px; margin: 4px 0 10px; }
img { max-width: 100%; display: block; }
table { border-collapse: collapse; font-size: 13px; }
td, th { padding: 4px 10px; border-bottom: 1px solid #e2e8f0; text-align: right; }
td:first-child, th:first-child { text-align: left; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 10px; font-weight: 600; font-size: 13px; }
.in-sample { background: #fed7d7; color: #9b2c2c; }
.oos { background: #c6f6d5; color: #22543d; }
.unknown { background: #fefcbf; color: #744210; }
.note { color: #4a5568; font-size: 13px; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 0 28px; }
"""


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "n/a"
    if kind == "inr":
        return f"Rs {float(value):,.2f}"
    if kind == "pct":
        return f"{100 * float(value):.2f} %"
    if kind == "int":
        return f"{int(value):,}"
    return f"{float(value):.3f}"


def _table(rows: Iterable[Iterable[Any]], head: Iterable[str] | None = None) -> str:
    out = ["<table>"]
    if head is not None:
        out.append("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in head) + "</tr>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _flatten(prefix: str, value: Any) -> Iterable[tuple[str, str]]:
    if isinstance(value, Mapping):
        for key, inner in value.items():
            yield from _flatten(f"{prefix}.{key}" if prefix else str(key), inner)
    else:
        yield prefix, str(value)


SIZING_ROWS: tuple[tuple[str, str, str], ...] = tuple(
    (key, label, kind)
    for key, label, kind in METRICS
    if key
    in (
        "net_pnl",
        "return_on_capital",
        "sharpe",
        "hit_rate",
        "trades",
        "profit_factor",
        "max_drawdown",
        "turnover",
    )
)


class HtmlReportRenderer:
    """ReportRenderer: ``out_dir/index.html`` (self-contained) and ``out_dir/*.png``."""

    def render(self, data: ReportData, out_dir: Path) -> ReportFiles:
        out_dir.mkdir(parents=True, exist_ok=True)
        capital = float(data.params.get("capital", 0.0))
        drawn: list[tuple[str, str, Callable[[], bytes]]] = [
            ("equity", "Equity curve", lambda: charts.equity_chart(data.equity, capital)),
            ("drawdown", "Underwater drawdown", lambda: charts.underwater_chart(data.equity)),
            ("daily_pnl", "Daily PnL", lambda: charts.daily_chart(data.daily)),
            ("monthly_returns", "Monthly returns", lambda: charts.monthly_heatmap(data.monthly)),
            (
                "confidence",
                "Hit rate and calibration by confidence decile",
                lambda: charts.decile_chart(data.deciles),
            ),
        ]
        if data.importance:
            ranked = data.importance
            drawn.append(
                ("feature_importance", "Feature importance", lambda: charts.importance_chart(ranked))
            )
        if data.regimes is not None:
            by_regime = data.regimes
            drawn.append(
                ("regimes", "Performance by regime at entry", lambda: charts.regime_chart(by_regime))
            )
        if data.parity is not None:
            parity = data.parity
            drawn.append(("parity", "Live vs historical parity", lambda: charts.parity_chart(parity)))
        if data.sizing is not None:
            cmp = data.sizing
            drawn.append(
                (
                    "sizing",
                    "Meta-label sizing vs unsized",
                    lambda: charts.sizing_chart(cmp.sized_equity, cmp.unsized_equity, capital),
                )
            )
        images: dict[str, bytes] = {}
        paths = []
        for name, _, draw in drawn:
            png = draw()
            images[name] = png
            path = out_dir / f"{name}.png"
            path.write_bytes(png)
            paths.append(path)
        page = out_dir / "index.html"
        page.write_text(self._page(data, images), encoding="utf-8")
        return ReportFiles(html=page, images=tuple(paths))

    @staticmethod
    def _sizing(data: ReportData, image: str) -> str:
        """The sized-vs-unsized section: both equity curves and the compared figures side by side."""
        assert data.sizing is not None
        cmp = data.sizing
        rows = [
            (label, _fmt(cmp.sized.get(key), kind), _fmt(cmp.unsized.get(key), kind))
            for key, label, kind in SIZING_ROWS
            if key in cmp.sized
        ]
        scope = "out of sample" if data.sample == "out-of-sample" else html.escape(data.sample)
        return (
            "<section><h2>Meta-label sizing: sized vs unsized</h2>"
            f"{image}"
            + _table(rows, ("metric", "meta-sized", f"unsized ({cmp.unsized_run_id})"))
            + f'<p class="note">The same {cmp.meta_sized_signals} meta-sized signals and the same prices, '
            f"traded twice: each position scaled by its signal's meta-label size (the meta model's "
            f"probability that the trade clears costs, AFML bet sizing) and unscaled. Every figure is {scope}, "
            "net of charges and slippage.</p></section>"
        )

    def _page(self, data: ReportData, images: Mapping[str, bytes]) -> str:
        def img(name: str, alt: str) -> str:
            encoded = base64.b64encode(images[name]).decode("ascii")
            return f'<img src="data:image/png;base64,{encoded}" alt="{html.escape(alt)}">'

        badge = {"out-of-sample": "oos", "IN-SAMPLE": "in-sample", "partly in-sample": "in-sample"}.get(
            data.sample, "unknown"
        )
        m = data.metrics
        title = f"Backtest {data.run_id}"
        metrics_rows = [(label, _fmt(m.get(key), kind)) for key, label, kind in METRICS]
        exits = m.get("exit_reasons") or {}
        skipped = m.get("skipped") or {}
        params = sorted(_flatten("", dict(data.params)))
        deciles = [
            (
                int(d["decile"]),
                int(d["trades"]),
                f"{d['confidence_min']:.3f} .. {d['confidence_max']:.3f}",
                f"{100 * d['hit_rate']:.1f} %",
                f"{100 * d['pt_rate']:.1f} %",
                f"Rs {d['net']:,.2f}",
            )
            for d in data.deciles
        ]
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
            f"<header><h1>{html.escape(title)}</h1>",
            f"<p>model <b>{html.escape(data.model_version)}</b> · "
            f"{data.start.astimezone(IST):%Y-%m-%d %H:%M} .. {data.end.astimezone(IST):%Y-%m-%d %H:%M} IST · "
            f'<span class="badge {badge}">{html.escape(data.sample)}</span></p>',
            f"<p>{html.escape(data.sample_note)}</p></header><main>",
            '<section><h2>Summary</h2><div class="grid"><div>',
            _table(metrics_rows[: (len(metrics_rows) + 1) // 2]),
            "</div><div>",
            _table(metrics_rows[(len(metrics_rows) + 1) // 2 :]),
            "</div></div>",
            f'<p class="note">Figures are net of Zerodha intraday charges and slippage. '
            f"{IN_SAMPLE_WARNING.get(data.sample, '')}"
            + (" Positions are scaled by their meta-label size (compared below)." if data.sizing else "")
            + "</p>",
        ]
        if exits:
            parts += [
                "<h2>Exits</h2>",
                _table(
                    sorted(
                        exits.items(), key=lambda kv: EXIT_ORDER.index(kv[0]) if kv[0] in EXIT_ORDER else 99
                    ),
                    ("exit reason", "trades"),
                ),
            ]
        if skipped:
            parts += [
                "<h2>Signals not traded</h2>",
                _table(sorted(skipped.items()), ("reason", "signals")),
            ]
        parts.append("</section>")
        if data.sizing is not None and "sizing" in images:
            parts.append(self._sizing(data, img("sizing", "meta-sized vs unsized equity")))
        for name, heading in (
            ("equity", "Equity curve"),
            ("drawdown", "Underwater drawdown"),
            ("daily_pnl", "Daily net PnL"),
            ("monthly_returns", "Monthly returns"),
        ):
            parts.append(f"<section><h2>{heading}</h2>{img(name, heading)}</section>")
        parts.append(
            "<section><h2>Hit rate and calibration by confidence decile</h2>"
            f"{img('confidence', 'confidence deciles')}"
            + (
                _table(deciles, ("decile", "trades", "confidence", "hit rate", "profit target", "net"))
                if deciles
                else ""
            )
            + "</section>"
        )
        parts.append("<section><h2>Performance by regime at entry</h2>")
        if "regimes" in images and data.regimes is not None:
            parts.append(img("regimes", "performance by regime"))
            parts.append(
                _table(
                    (
                        (
                            str(r.regime_state),
                            int(r.trades),
                            f"{100 * r.hit_rate:.1f} %",
                            f"Rs {r.net:,.2f}",
                            f"Rs {r.net_per_trade:,.2f}",
                        )
                        for r in data.regimes.itertuples()
                    ),
                    ("regime state", "trades", "hit rate", "net", "net per trade"),
                )
            )
        parts.append(f'<p class="note">{html.escape(data.regimes_note)}</p></section>')
        parts.append("<section><h2>Feature importance</h2>")
        if "feature_importance" in images:
            parts.append(img("feature_importance", "feature importance"))
        parts.append(f'<p class="note">{html.escape(data.importance_note)}</p></section>')
        parts.append("<section><h2>Live vs historical parity</h2>")
        if "parity" in images and data.parity is not None:
            parts.append(img("parity", "parity"))
            parts.append(
                _table(
                    (
                        (
                            str(r.day),
                            int(r.pairs),
                            f"{100 * r.direction_agree:.2f} %",
                            f"{r.max_confidence_diff:.2e}",
                        )
                        for r in data.parity.itertuples()
                    ),
                    ("IST day", "bars in both modes", "direction agreement", "max |confidence diff|"),
                )
            )
        parts.append(f'<p class="note">{html.escape(data.parity_note)}</p></section>')
        parts += [
            "<section><h2>Parameters</h2>",
            _table(params, ("parameter", "value")),
            "</section></main></body></html>",
        ]
        return "\n".join(parts)
