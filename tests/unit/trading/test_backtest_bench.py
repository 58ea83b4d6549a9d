"""`tickwise bench backtest` measures a real engine run over the synthetic market it describes."""

from tickwise.bench.backtest import run_backtest_bench


def test_the_backtest_benchmark_trades_the_synthetic_market_and_reports_rates() -> None:
    figures = run_backtest_bench(instruments=2, sessions=2, signal_share=0.05)
    assert figures["bars"] == 2 * 2 * 375
    assert 0 < figures["trades"] <= figures["signals"]
    assert figures["trades_per_second"] > 0 and figures["signals_per_second"] > 0
