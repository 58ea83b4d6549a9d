"""Roles the core and pipelines depend on, as typing.Protocol classes (one module per role family).

- ``repositories``: storage of instruments, candles, features, labels, signals, models, backfill log;
- ``historical_source``: the broker's historical candles and instrument dump;
- ``model_store``: model bundles as named files; ``experiment_tracker``: training runs (MLflow);
- ``clock``: where "now" comes from; ``hooks``: what pipelines report (metrics).

Adapters implement them; ``tests/fakes.py`` holds in-memory fakes of each (see docs/architecture.md).
"""
