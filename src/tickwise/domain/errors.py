"""The exception hierarchy shared by every layer.

TickwiseError
 +-- ConfigError          wrong configuration value (exit code 2)
 +-- DataValidationError  rows that violate an invariant (NaN price, high < low, unknown timeframe)
 +-- StorageError         the database is unreachable or refused an operation
 +-- BrokerError          the broker (Kite or the simulator) failed; adapters subclass it
 +-- ModelError           no model, or a model whose feature set does not match
"""

from __future__ import annotations


class TickwiseError(Exception):
    """Base of every error tickwise raises on purpose; its message is shown to the user as is."""

    exit_code = 1


class ConfigError(TickwiseError):
    exit_code = 2


class DataValidationError(TickwiseError):
    pass


class StorageError(TickwiseError):
    pass


class BrokerError(TickwiseError):
    pass


class ModelError(TickwiseError):
    pass
