"""Adapters: TimescaleDB, Kite Connect (and its simulator), MLflow, local files."""
