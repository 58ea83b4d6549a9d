"""tickwise: a TimescaleDB-centric intraday signal platform for NSE (Zerodha Kite Connect)."""

__version__ = "0.1.0"
