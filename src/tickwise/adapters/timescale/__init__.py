"""TimescaleDB adapter: embedded cluster, schema, asyncpg pool and one repository per aggregate."""

from tickwise.adapters.timescale.backfill_log_repository import TimescaleBackfillLogRepository
from tickwise.adapters.timescale.candle_repository import TimescaleCandleRepository
from tickwise.adapters.timescale.cluster import ClusterStatus, EmbeddedCluster
from tickwise.adapters.timescale.feature_repository import TimescaleFeatureRepository
from tickwise.adapters.timescale.instrument_repository import TimescaleInstrumentRepository
from tickwise.adapters.timescale.label_repository import TimescaleLabelRepository
from tickwise.adapters.timescale.model_repository import TimescaleModelRepository
from tickwise.adapters.timescale.pool import open_pool, redact_url
from tickwise.adapters.timescale.signal_repository import TimescaleSignalRepository
from tickwise.adapters.timescale.tick_repository import TimescaleTickRepository

__all__ = [
    "ClusterStatus",
    "EmbeddedCluster",
    "TimescaleBackfillLogRepository",
    "TimescaleCandleRepository",
    "TimescaleFeatureRepository",
    "TimescaleInstrumentRepository",
    "TimescaleLabelRepository",
    "TimescaleModelRepository",
    "TimescaleSignalRepository",
    "TimescaleTickRepository",
    "open_pool",
    "redact_url",
]
