"""The backtest report as files: matplotlib charts (PNG) and one self-contained HTML page."""

from tickwise.adapters.report.page import HtmlReportRenderer

__all__ = ["HtmlReportRenderer"]
