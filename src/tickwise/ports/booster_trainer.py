"""Where one side's LightGBM booster is trained: in this process, or data-parallel on a cluster.

The pipelines describe a fit (``core.side_fit.SideFit``: the training set, the side, the rows, the
parameters, the rounds and where the rows came from) and hand it to a ``BoosterTrainer``; the
composition root picks the implementation (``model_training.distributed``, docs/scaling.md). The port
is generic in the request so that it names no ``core`` type (ports import ``domain`` only).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, TypeVar

import lightgbm as lgb

__all__ = ["BoosterTrainer", "TrainerProvenance"]

Request = TypeVar("Request", contravariant=True)

# What a model artifact records about its trainer: empty in process (so existing model versions and
# artifacts stay as they were), e.g. {"trainer": "dask", "trainer_workers": 2} on a cluster.
TrainerProvenance = Mapping[str, str | int]


class BoosterTrainer(Protocol[Request]):
    @property
    def provenance(self) -> TrainerProvenance:
        """How this trainer trains, recorded in the artifact's params and (when not empty) the model's
        fingerprint: a distributed model is a different model from a single-machine one."""
        ...

    def fit(self, request: Request) -> lgb.Booster:
        """Train the booster ``request`` describes and return it, local to this process; a fit that
        cannot train (no rows, one label class) raises ``ModelError``."""
        ...
